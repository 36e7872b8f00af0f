"""The workspace: a folder that holds captures, the job database and settings."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from core.capture import CaptureFolder
from core.errors import InputError, NotFoundError
from core.fsio import publish_dir

ENV_VAR = "SCANBRIDGE_WORKSPACE"
STAGING_PREFIX = ".staging-"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def default_workspace_root() -> Path:
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / "ScanBridge"


def slugify(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return s[:40] or "capture"


class Workspace:
    """``<root>/captures/<id>/``, ``<root>/jobs.sqlite``, ``<root>/settings.json``."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root else default_workspace_root()
        self.captures_dir.mkdir(parents=True, exist_ok=True)

    @property
    def captures_dir(self) -> Path:
        return self.root / "captures"

    @property
    def jobs_db(self) -> Path:
        return self.root / "jobs.sqlite"

    @property
    def settings_path(self) -> Path:
        return self.root / "settings.json"

    def new_capture_id(self, name: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return f"{slugify(name)}-{stamp}-{secrets.token_hex(3)}"

    def capture(self, capture_id: str) -> CaptureFolder:
        if not _ID_RE.match(capture_id):
            raise InputError("not a valid capture id", capture_id)
        root = self.captures_dir / capture_id
        if not (root / "capture.json").is_file():
            raise NotFoundError("no such capture in the workspace", capture_id)
        return CaptureFolder(root)

    def has_capture(self, capture_id: str) -> bool:
        return bool(_ID_RE.match(capture_id)) and (self.captures_dir / capture_id / "capture.json").is_file()

    def captures(self) -> list[CaptureFolder]:
        return sorted(
            (CaptureFolder(p) for p in self.captures_dir.iterdir()
             if not p.name.startswith(".") and (p / "capture.json").is_file()),
            key=lambda c: c.id,
        )

    @contextlib.contextmanager
    def staged_capture(self, capture_id: str) -> Iterator[CaptureFolder]:
        """A capture folder written under a hidden staging name and published on success.

        If the body raises, the staging folder is removed and the workspace is as before. While
        it is being written the folder is locked, so ``clean_stale_staging`` (run by any other
        import or server start) leaves it alone; a killed writer's lock goes with its process.
        """
        final = self.captures_dir / capture_id
        if final.exists():
            raise InputError("a capture with this id already exists", capture_id)
        staging = self.captures_dir / f"{STAGING_PREFIX}{capture_id}"
        staging.mkdir(parents=True)
        lock = _lock_staging(staging)
        try:
            yield CaptureFolder(staging)
            publish_dir(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            os.close(lock)

    def clean_stale_staging(self) -> list[Path]:
        """Remove staging folders left by a killed or crashed writer; returns what was removed.

        A folder that a live writer holds (in this process or another) is kept.
        """
        removed = []
        for p in sorted(self.captures_dir.glob(f"{STAGING_PREFIX}*")):
            if p.is_symlink() or not p.is_dir():
                p.unlink(missing_ok=True)  # a link goes, never what it points to
            elif not _remove_unless_held(p):
                continue
            if not os.path.lexists(p):
                removed.append(p)
        return removed


def _remove_unless_held(folder: Path) -> bool:
    """Remove the staging ``folder`` unless a live writer holds its lock; whether it was tried."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(fd)
    return True


def _lock_staging(staging: Path) -> int:
    """Hold an exclusive lock on the new folder ``staging``; returns the descriptor to close.

    A cleaner may have taken the lock between mkdir and here and removed the folder: then this
    writer's folder is gone, which is an error rather than a silent write into nothing.
    """
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        same = os.stat(staging).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        raise InputError("its staging folder was removed while it was being made", staging.name)
    return fd
