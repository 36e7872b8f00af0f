"""Progress for the CLI, fed by progress events: a bar per stage on a terminal, plain lines in a log.

A bar rewrites its line with carriage returns, which fills a log file or a CI transcript with
garbage; when stderr is not a terminal, each stage prints a plain line at every tenth of its
progress instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from core.progress import ProgressEvent, Sink


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


PLAIN_LINE_STEP = 0.1  # a plain progress line at every tenth of a stage


def plain_progress(stream: TextIO, logs_only: bool = False) -> Sink:
    """A sink that writes a line per warning or error and, unless ``logs_only``, per stage start
    and per tenth of a stage's progress."""
    last: dict[str, int] = {}

    def show(event: ProgressEvent) -> None:
        if event.kind == "log":
            if event.level in ("warning", "error"):
                print(f"{event.level}: [{event.stage}] {event.message}", file=stream, flush=True)
            return
        if logs_only or event.fraction is None:
            return
        tenth = int(min(max(event.fraction, 0.0), 1.0) / PLAIN_LINE_STEP + 1e-9)
        if last.get(event.stage) == tenth:
            return
        last[event.stage] = tenth
        print(f"[{event.stage}] {event.fraction:4.0%}  ETA {format_eta(event.eta_s)}  {event.message[:60]}",
              file=stream, flush=True)

    return show


@contextlib.contextmanager
def progress_bar(leave: bool = True, quiet: bool = False) -> Iterator[Sink]:
    """A sink that draws a tqdm bar per stage on stderr and prints warnings and errors above it;
    plain lines when stderr is not a terminal; only warnings and errors when ``quiet``."""
    if quiet or not sys.stderr.isatty():
        yield plain_progress(sys.stderr, logs_only=quiet)
        return
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
