"""Progress and results for the CLI, fed by progress events: a bar per stage on a terminal, plain
lines in a log, or JSON lines for scripts.

A bar rewrites its line with carriage returns, which fills a log file or a CI transcript with
garbage; when stderr is not a terminal, each stage prints a plain line at every tenth of its
progress instead. Commands that run work share --json and --quiet (``add_output_options``,
``command_progress``, ``report_result``; core.cli reports errors through ``report_error``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any, TextIO

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


# The output conventions of commands that run work (import, poses, process, demo): progress on
# stderr for people; with --json, one JSON object per line on stdout (progress, metric and log
# events, then one result or error object); with --quiet, no progress, only the result or errors.


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """Add --json and --quiet to a command's parser."""
    parser.add_argument("--json", action="store_true",
                        help="write one JSON object per line on stdout: progress, metric and log events "
                             '({"event": "progress", ...}), then {"event": "result", ...} or '
                             '{"event": "error", "exit_code": N, ...}')
    parser.add_argument("--quiet", action="store_true",
                        help="no progress; print only the result, warnings and errors")


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def json_line(obj: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Write ``obj`` as one line of JSON (NaN and infinities become null, paths strings)."""
    print(json.dumps(_plain(obj), allow_nan=False, separators=(",", ":")), file=stream or sys.stdout,
          flush=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def json_progress(stream: TextIO | None = None, quiet: bool = False) -> Sink:
    """A sink writing each progress, metric and preview event, and warning and error logs, as
    ``{"event": KIND, ...}`` lines; with ``quiet`` only the warnings and errors."""

    def show(event: ProgressEvent) -> None:
        if event.kind == "log" and event.level not in ("warning", "error"):
            return
        if quiet and event.kind != "log":
            return
        fields = {k: v for k, v in event.to_json().items() if k != "kind" and v not in (None, "")}
        json_line({"event": event.kind, **fields}, stream)

    return show


@contextlib.contextmanager
def command_progress(args: argparse.Namespace, leave: bool = True) -> Iterator[Sink]:
    """The progress sink a command's --json and --quiet ask for."""
    quiet = bool(getattr(args, "quiet", False))
    if wants_json(args):
        yield json_progress(sys.stdout, quiet=quiet)
        return
    with progress_bar(leave=leave, quiet=quiet) as show:
        yield show


def report_result(args: argparse.Namespace, result: Mapping[str, Any], lines: list[str]) -> int:
    """Print a finished command's result: ``lines`` for people, or with --json one
    ``{"event": "result", "exit_code": 0, ...result}`` line. Returns the exit code, 0."""
    if wants_json(args):
        json_line({"event": "result", "exit_code": 0, **result})
    else:
        for line in lines:
            print(line)
    return 0


def report_error(error: BaseException, code: int, as_json: bool) -> None:
    """One line for a failure: ``error: ...`` on stderr, or with --json a JSON object on stdout."""
    if not as_json:
        print(f"error: {error}", file=sys.stderr)
        return
    json_line({"event": "error", "exit_code": code, "error": type(error).__name__,
               "message": str(error), "where": getattr(error, "where", None)})
