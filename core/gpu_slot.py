"""One machine-wide GPU slot: only one GPU-declared stage runs at a time, whichever process (the
CLI, the server, the app) and whichever workspace started it.

The slot is an exclusive ``flock`` on a lock file in the user's runtime folder
(``$XDG_RUNTIME_DIR/scanbridge/gpu.lock``, else ``<tmp>/scanbridge-<uid>/gpu.lock``;
``$SCANBRIDGE_GPU_LOCK`` names another file). The kernel drops it when its process ends, even by
SIGKILL, so a crashed stage never leaves the GPU held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from core.progress import CancelToken

LOCK_ENV = "SCANBRIDGE_GPU_LOCK"


def gpu_lock_path() -> Path:
    if os.environ.get(LOCK_ENV):
        return Path(os.environ[LOCK_ENV])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "scanbridge" / "gpu.lock"
    folder = Path(tempfile.gettempdir()) / f"scanbridge-{os.getuid()}"
    return folder / "gpu.lock"


@contextlib.contextmanager
def gpu_slot(cancel: CancelToken, on_wait: Callable[[str], None] | None = None,
             poll_s: float = 0.1, path: Path | None = None) -> Iterator[None]:
    """Hold the GPU slot for the block; wait (checking ``cancel``) while another process holds it."""
    path = path or gpu_lock_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(f"waiting for the GPU (in use by {_holder(fd)})")
                    told = True
                cancel.check()
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"
