"""Where the trainer keeps its checkpoints: core's checkpoints of a resumable run (numbered
folders, each published whole), one nerfstudio checkpoint file in each."""

from __future__ import annotations

from core.checkpoints import Checkpoints

CHECKPOINT_FILE = "nerfstudio.ckpt"
CheckpointStore = Checkpoints
