"""Checkpoints of a resumable stage: numbered folders, each published whole or not at all.

A stage that declares ``resumable=True`` (core.stages.StageSpec) gets ``ctx.checkpoints``, over
``<run>/checkpoints/``, which survives a kill, a cancel and a restart. It saves with::

    with ctx.checkpoints.writing(step) as folder:   # a temporary folder
        torch.save(state, folder / "model.pt")      # anything, any number of files
    # on leaving the block the folder is fsynced and renamed to step-000000123

and resumes with ``latest = ctx.checkpoints.latest()`` (``None`` on a first attempt), whose
``step`` and ``folder`` say where to continue. A checkpoint killed half-way is never seen: only
complete, renamed folders count; stale temporary folders are swept on the next attempt.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.fsio import atomic_write_json, publish_dir

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d{9})$")
_TEMP_PREFIX = ".writing-"
STATE_FILE = "state.json"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    folder: Path

    def read_json(self, name: str = STATE_FILE) -> Any:
        return json.loads((self.folder / name).read_text())


class Checkpoints:
    """The checkpoint folders of one run; keeps the newest ``keep`` of them."""

    def __init__(self, root: Path, keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = max(1, keep)

    def sweep_partial(self) -> None:
        """Remove checkpoints a killed attempt left half-written (only the run's own stage calls this)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f"{_TEMP_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)

    def all(self) -> list[Checkpoint]:
        found = []
        for path in self.root.iterdir() if self.root.is_dir() else ():
            match = _NAME.match(path.name)
            if match and path.is_dir():
                found.append(Checkpoint(int(match.group(1)), path))
        return sorted(found, key=lambda c: c.step)

    def latest(self) -> Checkpoint | None:
        found = self.all()
        return found[-1] if found else None

    @contextlib.contextmanager
    def writing(self, step: int) -> Iterator[Path]:
        """A temporary folder to fill; published as checkpoint ``step`` when the block ends well."""
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 10**9:
            raise ConfigError(f"a checkpoint step must be an integer 0..999999999, got {step!r}",
                              "checkpoint")
        final = self.root / f"step-{step:09d}"
        temp = self.root / f"{_TEMP_PREFIX}{step:09d}"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
        try:
            yield temp
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        if final.exists():  # the same step saved again (resumed just before it): replace it
            shutil.rmtree(final)
        publish_dir(temp, final)
        for old in self.all()[:-self.keep]:
            shutil.rmtree(old.folder, ignore_errors=True)

    def save_json(self, step: int, state: Any, name: str = STATE_FILE) -> Checkpoint:
        """A checkpoint holding one JSON file (small states; tests)."""
        with self.writing(step) as folder:
            atomic_write_json(folder / name, state)
        return Checkpoint(step, self.root / f"step-{step:09d}")
