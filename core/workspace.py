"""The workspace: a folder that holds captures, the job database and settings."""

from __future__ import annotations

import contextlib
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

        If the body raises, the staging folder is removed and the workspace is as before.
        """
        final = self.captures_dir / capture_id
        if final.exists():
            raise InputError("a capture with this id already exists", capture_id)
        staging = self.captures_dir / f".staging-{capture_id}"
        staging.mkdir(parents=True)
        try:
            yield CaptureFolder(staging)
            publish_dir(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def clean_stale_staging(self) -> list[Path]:
        """Remove staging folders left by a crash; returns what was removed."""
        removed = []
        for p in self.captures_dir.glob(".staging-*"):
            if p.is_symlink() or not p.is_dir():
                p.unlink(missing_ok=True)  # a link goes, never what it points to
            else:
                shutil.rmtree(p, ignore_errors=True)
            if not os.path.lexists(p):
                removed.append(p)
        return removed
