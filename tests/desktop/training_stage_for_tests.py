"""A stage for the desktop's training view, imported by stage child processes as
``training_stage_for_tests`` (tests/desktop is put on their PYTHONPATH): it reports a rising
PSNR as metric events and writes preview renders through recon.training_preview, like the
neural stages, then waits while ``hold_file`` exists before reporting the rest."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.stages import StageContext, StageSpec
from recon.training_preview import write_preview


@dataclass(frozen=True)
class FakeTrainingConfig:
    steps: int = 20
    hold_at: int = 10  # wait at this step while hold_file exists
    hold_file: str = ""
    preview_every: int = 5


def psnr_at(step: int) -> float:
    return 10.0 + 0.5 * step


def preview_color(step: int) -> tuple[int, int, int]:
    return (10 * step % 256, 200, 255 - 10 * step % 256)


def _run(ctx: StageContext, cfg: FakeTrainingConfig) -> dict:
    for step in range(1, cfg.steps + 1):
        ctx.cancel.check()
        ctx.progress.update(step / cfg.steps, f"step {step}/{cfg.steps}")
        ctx.progress.metric(step, loss=1.0 / step, psnr=psnr_at(step))
        if step % cfg.preview_every == 0:
            image = np.zeros((24, 32, 3), np.uint8)
            image[:] = preview_color(step)
            write_preview(ctx.out_dir, "train", step, image, ctx.progress)
        if step == cfg.hold_at:
            while cfg.hold_file and Path(cfg.hold_file).exists():
                ctx.cancel.check()
                time.sleep(0.05)
    return {"steps": cfg.steps}


TRAIN = StageSpec(name="fake_train", config_cls=FakeTrainingConfig, run=_run)
