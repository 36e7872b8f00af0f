"""The executor seam: where a job's stage runs. A worker submits a StageRequest, reads the
execution's events, cancels it when asked and takes its result; the queue keeps only the
execution's opaque ``handle`` (so a recovering worker can stop what a dead one left).

``LocalExecutor`` is today's implementation: a child process on this machine (core.runner), its
handle ``local:<host>:<pid>``. Another executor (a cluster, a remote GPU box) implements the same
two protocols and its own ``stop_orphan`` for its handles.
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.progress import CancelToken, ProgressEvent
from core.runner import Runner
from core.stages import StageOutcome

LOCAL_PREFIX = "local"


@dataclass(frozen=True)
class StageRequest:
    capture_root: Path
    stage: str  # a registered stage name or a module:ATTR path
    config: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Path] = field(default_factory=dict)  # the job's earlier runs, by stage name
    wiring: Mapping[str, str] = field(default_factory=dict)  # port -> earlier stage name
    settings_path: Path | None = None


class StageExecution(Protocol):
    """One submitted stage run."""

    @property
    def handle(self) -> str | None: ...  # opaque; None until it has started somewhere

    def events(self, timeout_s: float) -> list[ProgressEvent]: ...  # what it reported since last asked

    def done(self) -> bool: ...

    def cancel(self) -> None: ...  # ask it to stop (it ends with Cancelled)

    def result(self) -> StageOutcome: ...  # wait for the end; raises the stage's own error


class Executor(Protocol):
    def submit(self, request: StageRequest,
               on_handle: Callable[[str], None] | None = None) -> StageExecution: ...


def local_handle(pid: int, host: str | None = None) -> str:
    return f"{LOCAL_PREFIX}:{host or socket.gethostname()}:{pid}"


def node_of_handle(handle: str | None) -> str | None:
    """The machine an execution runs on, from its handle ``kind:<node>:<id>`` (None if not one)."""
    kind, _, rest = (handle or "").partition(":")
    node, _, ident = rest.rpartition(":")
    return node if kind and node and ident else None


def parse_local_handle(handle: str | None) -> tuple[str, int] | None:
    """(host, pid) of a local handle, else None."""
    kind, _, rest = (handle or "").partition(":")
    host, _, pid = rest.rpartition(":")
    return (host, int(pid)) if kind == LOCAL_PREFIX and host and pid.isdigit() else None


class LocalExecutor:
    """Runs each stage in a child process of this one (core.runner), from a thread per execution."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner = runner or Runner()

    def submit(self, request: StageRequest,
               on_handle: Callable[[str], None] | None = None) -> _LocalExecution:
        return _LocalExecution(self.runner, request, on_handle)


class _LocalExecution:
    def __init__(self, runner: Runner, request: StageRequest,
                 on_handle: Callable[[str], None] | None) -> None:
        self._events: queue.Queue[ProgressEvent] = queue.Queue()
        self._token = CancelToken()
        self._handle: str | None = None
        self._outcome: StageOutcome | None = None
        self._error: BaseException | None = None
        self._on_handle = on_handle
        self._thread = threading.Thread(target=self._run, args=(runner, request), daemon=True,
                                        name=f"stage-{request.stage}")
        self._thread.start()

    def _spawned(self, pid: int) -> None:
        self._handle = local_handle(pid)
        if self._on_handle is not None:
            self._on_handle(self._handle)

    def _run(self, runner: Runner, request: StageRequest) -> None:
        try:
            self._outcome = runner.run_stage(
                request.capture_root, request.stage, request.config, request.inputs,
                sink=self._events.put, cancel=self._token, on_spawn=self._spawned,
                wiring=request.wiring, settings_path=request.settings_path,
            )
        except BaseException as e:  # handed to whoever takes the result
            self._error = e

    @property
    def handle(self) -> str | None:
        return self._handle

    def events(self, timeout_s: float) -> list[ProgressEvent]:
        out = []
        try:
            out.append(self._events.get(timeout=timeout_s) if timeout_s > 0 else self._events.get_nowait())
            while True:
                out.append(self._events.get_nowait())
        except queue.Empty:
            return out

    def done(self) -> bool:
        return not self._thread.is_alive()

    def cancel(self) -> None:
        self._token.cancel()

    def result(self) -> StageOutcome:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome
