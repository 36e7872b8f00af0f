"""Run one stage in a child process (``python -m core.worker stage``) and bring back what it says.

The child gets its request on stdin and writes JSON lines to a pipe of its own (fd passed as
``--fd``): ``start`` (the stage's name), ``event`` (a ProgressEvent), then ``result`` or
``error``. Its stdout and stderr (native libraries print there) become debug log events. It
runs in its own process group, so a GPU fault or the OOM killer takes only the child, and a
terminal's Ctrl-C reaches only the parent, which then cancels the child.

Cancel: SIGTERM to the child's group (the child turns it into ``CancelToken.cancel()``), then
SIGKILL after ``grace_s``. A child that dies without a result gives a StageError that says how
("stage poses crashed: killed by signal 9").
"""

from __future__ import annotations

import collections
import json
import os
import queue
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import core.errors
from core.errors import Cancelled, ScanBridgeError, StageError
from core.progress import CancelToken, ProgressEvent, Sink
from core.stages import StageOutcome

CRASH_TAIL_LINES = 5


def error_from_record(record: Mapping[str, Any], stage: str) -> ScanBridgeError:
    """Rebuild a child's error as the nearest core.errors class, with the same message."""
    for name in record.get("classes", []):
        cls = getattr(core.errors, name, None)
        if isinstance(cls, type) and issubclass(cls, ScanBridgeError):
            return cls(record.get("reason", ""), record.get("where"))
    return StageError(f"stage {stage} failed: {record.get('message', 'unknown error')}")


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Runner:
    """Runs stages in child processes, one at a time per call; safe to share between threads."""

    def __init__(
        self,
        *,
        grace_s: float = 5.0,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        poll_s: float = 0.05,
    ) -> None:
        self.grace_s = grace_s
        self.python = python
        self.env = dict(env) if env is not None else None
        self.poll_s = poll_s

    def run_stage(
        self,
        capture_root: Path,
        stage: str,
        config: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Path] | None = None,
        *,
        sink: Sink | None = None,
        cancel: CancelToken | None = None,
        on_spawn: Callable[[int], None] | None = None,
        wiring: Mapping[str, str] | None = None,
        settings_path: Path | None = None,
    ) -> StageOutcome:
        """Run ``stage`` over the capture at ``capture_root`` in a child; return its outcome.

        Raises the child's error (same core.errors class and message), Cancelled when ``cancel``
        stopped it, or StageError when the child died without saying why.
        """
        request = {
            "capture": str(capture_root),
            "stage": stage,
            "config": dict(config or {}),
            "inputs": {k: str(v) for k, v in (inputs or {}).items()},
            "wiring": dict(wiring or {}),
            "settings": None if settings_path is None else str(settings_path),
            "parent_pid": os.getpid(),
            "grace_s": self.grace_s,
        }
        read_fd, write_fd = os.pipe()
        env = dict(os.environ if self.env is None else self.env, PYTHONUNBUFFERED="1")
        # OpenMP threads that spin while waiting starve each other on a busy 2-core machine
        # (open3d's TSDF integration ran 5x slower); a user's own setting wins.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "core.worker", "stage", "--fd", str(write_fd)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,), start_new_session=True, env=env,
            )
        except OSError as e:
            os.close(read_fd)
            raise StageError(f"cannot start a worker process: {e}", stage) from None
        finally:
            os.close(write_fd)
        try:
            return _ChildSession(self, proc, read_fd, stage, sink, cancel, on_spawn, request).run()
        finally:
            os.close(read_fd)


class _ChildSession:
    """The parent's side of one child: feed the request, pump records, stop it when asked."""

    def __init__(self, runner: Runner, proc: subprocess.Popen, read_fd: int, stage: str,
                 sink: Sink | None, cancel: CancelToken | None,
                 on_spawn: Callable[[int], None] | None, request: dict[str, Any]) -> None:
        self.runner, self.proc, self.read_fd = runner, proc, read_fd
        self.stage = stage  # replaced by the stage's own name once the child says it
        self.sink, self.cancel, self.on_spawn = sink, cancel, on_spawn
        self.request = request
        self.output: queue.Queue[str] = queue.Queue()
        self.tail: collections.deque[str] = collections.deque(maxlen=CRASH_TAIL_LINES)
        self.final: dict[str, Any] | None = None
        self.term_sent_at: float | None = None

    def run(self) -> StageOutcome:
        proc = self.proc
        reader = threading.Thread(target=self._read_output, args=(proc.stdout,), daemon=True)
        reader.start()
        try:
            if self.on_spawn is not None:
                self.on_spawn(proc.pid)
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(self.request).encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass  # it died at once; its exit status says why
            self._pump()
            proc.wait()
        finally:
            if proc.poll() is None:  # we are leaving early (an exception here, Ctrl-C)
                self._stop_child()
            reader.join(timeout=2.0)
            self._drain_output()
        return self._outcome()

    def _pump(self) -> None:
        """Read records until the child closes its pipe (it exited) or is gone."""
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.read_fd, selectors.EVENT_READ)
            while True:
                self._check_cancel()
                self._drain_output()
                if sel.select(timeout=self.runner.poll_s):
                    chunk = os.read(self.read_fd, 1 << 16)
                    if not chunk:
                        break
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        self._handle(line)
                elif self.proc.poll() is not None and not sel.select(timeout=0):
                    break  # exited, and a grandchild may hold the pipe open: stop waiting
        if buffer.strip():
            self._handle(buffer)

    def _handle(self, line: bytes) -> None:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return
        kind = record.get("type")
        if kind == "start":
            self.stage = record.get("stage", self.stage)
        elif kind == "event" and self.sink is not None:
            self.sink(ProgressEvent.from_json(record["event"]))
        elif kind in ("result", "error"):
            self.final = record

    def _check_cancel(self) -> None:
        if self.cancel is None or not self.cancel.cancelled:
            return
        now = time.monotonic()
        if self.term_sent_at is None:
            self.term_sent_at = now
            self._signal(signal.SIGTERM)
        elif now - self.term_sent_at > self.runner.grace_s:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _stop_child(self) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.runner.grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait()

    def _read_output(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.output.put(raw.decode("utf-8", "replace").rstrip())
        stream.close()

    def _drain_output(self) -> None:
        while True:
            try:
                line = self.output.get_nowait()
            except queue.Empty:
                return
            if not line:
                continue
            self.tail.append(line)
            if self.sink is not None:
                self.sink(ProgressEvent("log", self.stage, message=line, level="debug", time=time.time()))

    def _outcome(self) -> StageOutcome:
        final = self.final
        if final is not None and final["type"] == "result":
            return StageOutcome(final["stage"], Path(final["run_dir"]), final.get("result") or {},
                                bool(final.get("reused")))
        if final is not None:
            raise error_from_record(final, self.stage)
        if self.term_sent_at is not None:
            raise Cancelled(f"cancelled by the user; stage {self.stage} was stopped")
        how = _describe_exit(self.proc.returncode)
        last = f" (last output: {self.tail[-1]})" if self.tail and self.proc.returncode > 0 else ""
        raise StageError(f"stage {self.stage} crashed: {how}{last}")
