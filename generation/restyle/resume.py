"""Per-keyframe resume for the restyle stage: finished keyframes kept in the run's checkpoint folder.

After each pipeline call the stage publishes a checkpoint (core.checkpoints) holding every keyframe
finished so far as a lossless PNG, plus state.json naming the frames they belong to. Keyframes an
earlier checkpoint already holds are hard-linked from it rather than written again. A resumed run
reads the newest checkpoint and restyles only the keyframes it lacks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from core.checkpoints import STATE_FILE, Checkpoints
from core.fsio import atomic_write_json


def _name(index: int) -> str:
    return f"key-{index:06d}.png"


def load_keyframes(checkpoints: Checkpoints | None, frame_ids: Sequence[str]) -> dict[int, np.ndarray]:
    """The keyframes the newest checkpoint holds, when it was made for these same frames; else none."""
    latest = checkpoints.latest() if checkpoints is not None else None
    if latest is None:
        return {}
    try:
        state = latest.read_json()
        if state.get("frames") != list(frame_ids):
            return {}
        keys = [int(i) for i in state["keyframes"]]
        return {i: np.asarray(Image.open(latest.folder / _name(i)).convert("RGB")) for i in keys}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # an unreadable checkpoint: start over rather than fail


class KeyframeSaver:
    """``on_keyframes`` for restyle_frames: one checkpoint per pipeline call, numbered by keyframes done."""

    def __init__(self, checkpoints: Checkpoints, frame_ids: Sequence[str]) -> None:
        self.checkpoints = checkpoints
        self.frame_ids = list(frame_ids)

    def __call__(self, keyframes: dict[int, np.ndarray]) -> None:
        previous = self.checkpoints.latest()
        with self.checkpoints.writing(len(keyframes)) as folder:
            for index, image in sorted(keyframes.items()):
                if previous is None or not _link(previous.folder / _name(index), folder / _name(index)):
                    Image.fromarray(image).save(folder / _name(index), format="PNG")
            atomic_write_json(folder / STATE_FILE, {"frames": self.frame_ids, "keyframes": sorted(keyframes)})


def _link(source: Path, target: Path) -> bool:
    try:
        os.link(source, target)
        return True
    except OSError:
        return False
