"""The processes behind a job's lease: is a worker alive, and stopping a stage child it left behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_orphan_stage(pid: int) -> None:
    """SIGKILL the process group of a stage child left by a dead worker, if it is still ours."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return  # gone (or not Linux: the child stops itself when it sees its parent die)
    if b"core.worker" not in cmdline or b"stage" not in cmdline:
        return  # the pid was reused by something else
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for _ in range(100):
        if not pid_alive(pid):
            return
        time.sleep(0.02)

