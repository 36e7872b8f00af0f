"""Where the trainer keeps its checkpoints: numbered folders, each published whole.

The stage uses core's ``ctx.checkpoints`` when core gives resumable stages one (same interface:
``latest()`` with ``.step`` and ``.folder``, and ``writing(step)``); otherwise this store over
``<run>/checkpoints`` does the same inside one run, and is the seam a caller passes to resume.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.fsio import fsync_dir

CHECKPOINT_FILE = "nerfstudio.ckpt"
_NAME = re.compile(r"^step-(\d{9})$")


class CheckpointLike(Protocol):
    step: int
    folder: Path


class CheckpointStore(Protocol):
    def latest(self) -> CheckpointLike | None: ...

    def writing(self, step: int) -> contextlib.AbstractContextManager[Path]: ...


@dataclass(frozen=True)
class FolderCheckpoint:
    step: int
    folder: Path


class FolderCheckpoints:
    """Checkpoints under ``root``: step-000000123/ folders; the newest ``keep`` are kept."""

    def __init__(self, root: Path, keep: int = 1) -> None:
        self.root = Path(root)
        self.keep = max(1, keep)

    def all(self) -> list[FolderCheckpoint]:
        found = []
        for path in self.root.iterdir() if self.root.is_dir() else ():
            match = _NAME.match(path.name)
            if match and path.is_dir():
                found.append(FolderCheckpoint(int(match.group(1)), path))
        return sorted(found, key=lambda c: c.step)

    def latest(self) -> FolderCheckpoint | None:
        found = self.all()
        return found[-1] if found else None

    @contextlib.contextmanager
    def writing(self, step: int) -> Iterator[Path]:
        final = self.root / f"step-{step:09d}"
        temp = self.root / f".writing-{step:09d}"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
        try:
            yield temp
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        for path in temp.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(temp, final)
        fsync_dir(self.root)
        for old in self.all()[:-self.keep]:
            shutil.rmtree(old.folder, ignore_errors=True)
