"""LiveSessions in a child process (``python -m desktop.live_process``). open3d holds the GIL
while it integrates a frame or extracts a mesh (up to seconds on a busy machine), which would
freeze the GUI if it ran on a thread of the app; in a child process it only costs CPU. The
process starts once (importing open3d takes seconds) and serves one stream after another.
Qt-free; ``open`` and ``step`` block (call them off the GUI thread).

The two pipes carry pickles (multiprocessing's Connection framing) between the app and its own
child: requests are ("open", capture folder), ("step", final) or None (stop); replies ("ok",
LiveUpdate or None) or ("error", reason, where).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from core.errors import ReconstructionError, ScanBridgeError
from desktop.live_session import PREVIEW_VOXEL_M, LiveUpdate

STOP_WAIT_S = 5.0


class LiveFusionProcess:
    """Starts the child; ``open(folder)`` starts a stream's preview, ``step(final)`` returns its
    next LiveUpdate."""

    def __init__(self, voxel_size_m: float = PREVIEW_VOXEL_M) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as core.runner: spinning OpenMP starves 2 cores
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "desktop.live_process", "--voxel", str(voxel_size_m),
                 "--fds", str(to_child_r), str(from_child_w)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(to_child_r, from_child_w),
                env=env,
            )
        except OSError as e:
            os.close(to_child_w)
            os.close(from_child_r)
            raise ReconstructionError(f"cannot start the live preview process: {e}", "live preview") from None
        finally:  # the child's ends: it holds its own copies now
            os.close(to_child_r)
            os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)

    def _ask(self, request: tuple[str, object]) -> object:
        try:
            self._send.send(request)
            reply = self._recv.recv()
        except (EOFError, OSError):
            raise ReconstructionError("the live preview process stopped", "live preview") from None
        if reply[0] == "error":
            raise ReconstructionError(reply[1], reply[2] or "live preview")
        return reply[1]

    def open(self, capture_root: Path) -> None:
        """Start over on a new stream's capture folder."""
        self._ask(("open", str(capture_root)))

    def step(self, final: bool = False) -> LiveUpdate:
        update = self._ask(("step", bool(final)))
        assert isinstance(update, LiveUpdate)
        return update

    def close(self) -> None:
        """Ask the child to end; kill it if it does not within a few seconds."""
        try:
            self._send.send(None)
        except OSError:
            pass
        try:
            self._proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def kill(self) -> None:
        """End the child now (the app is closing)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(STOP_WAIT_S)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for conn in (self._send, self._recv):
            if not conn.closed:
                conn.close()

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None


def serve(voxel_size_m: float, requests: Connection, replies: Connection) -> None:
    """The child's loop: one request after another until None or the pipe closes."""
    from core.capture import CaptureFolder
    from desktop.live_session import LiveSession

    session: LiveSession | None = None
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        try:
            kind, arg = request
            if kind == "open":
                session = LiveSession(CaptureFolder(Path(arg)), voxel_size_m)
                replies.send(("ok", None))
            elif session is None:
                replies.send(("error", "no stream opened yet", "live preview"))
            else:
                replies.send(("ok", session.catch_up(final=bool(arg))))
        except ScanBridgeError as e:
            replies.send(("error", e.reason, str(e.where or "")))
        except Exception as e:  # any other failure is reported, not left as a silent child
            replies.send(("error", f"{type(e).__name__}: {e}", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desktop.live_process")
    parser.add_argument("--voxel", type=float, default=PREVIEW_VOXEL_M)
    parser.add_argument("--fds", type=int, nargs=2, required=True, metavar=("READ", "WRITE"))
    args = parser.parse_args(argv)
    serve(args.voxel, Connection(args.fds[0], writable=False),
          Connection(args.fds[1], readable=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
