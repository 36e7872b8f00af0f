"""A terminal progress bar fed by progress events: one bar per stage, with ETA and message."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from core.progress import ProgressEvent, Sink


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


@contextlib.contextmanager
def progress_bar(leave: bool = True) -> Iterator[Sink]:
    """A sink that draws a tqdm bar per stage on stderr and prints warnings and errors above it."""
    from tqdm import tqdm

    state: dict[str, object] = {"bar": None, "stage": None}

    def close() -> None:
        bar = state["bar"]
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]
        state["bar"] = None

    def show(event: ProgressEvent) -> None:
        if event.kind == "log":
            if event.level in ("warning", "error"):
                tqdm.write(f"{event.level}: [{event.stage}] {event.message}", file=sys.stderr)
            return
        if event.fraction is None:
            return
        if event.stage != state["stage"]:
            close()
            state["stage"] = event.stage
            state["bar"] = tqdm(total=100, desc=event.stage, file=sys.stderr, leave=leave)
        bar = state["bar"]
        tail = f"ETA {format_eta(event.eta_s)} {event.message[:48]}".replace("{", "{{").replace("}", "}}")
        bar.bar_format = "{desc}: {percentage:3.0f}%|{bar}| " + tail  # type: ignore[attr-defined]
        bar.n = round(100 * event.fraction, 1)  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]

    try:
        yield show
    finally:
        close()
