"""nerfacto training through nerfstudio's Trainer, with our progress, metrics, cancel and checkpoints.

``train(data_dir, out_dir, settings, store, progress, cancel)`` resumes from ``store.latest()``
when there is one and then runs only the remaining steps (nerfstudio would run its full
``max_num_iterations`` again from the checkpoint's step). A cancel stops after the current
iteration and leaves a checkpoint of the last step that ran; Cancelled is raised after it.
Checkpoints are our own files, loaded with ``weights_only=False`` (nerfstudio's hold numpy
scalars, which torch >= 2.6 refuses by default).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import Cancelled, StageError
from core.progress import CancelToken, Progress
from recon.nerf.checkpoints import CHECKPOINT_FILE, CheckpointStore
from recon.nerf.nsconfig import TrainSettings, no_lpips_download, trainer_config, use_threads
from recon.training_preview import preview_every, write_preview

REPORT_EVERY = 10  # steps between metric reports (each reads loss and PSNR off the device)
ETA_WINDOW = 50  # steps in the moving average of step time
PREVIEW_SIDE = 64  # pixels, the longer side of the training preview render


@dataclass(frozen=True)
class TrainResult:
    first_step: int  # the step this attempt started at (0, or the checkpoint's + 1)
    last_step: int  # the last step that ran (settings.steps - 1 when complete)
    steps_run: int  # iterations this attempt ran
    resumed_from: int | None  # the checkpoint step resumed from
    psnr: float | None  # training-batch PSNR at the last report
    loss: float | None
    base_dir: Path  # nerfstudio's run folder (dataparser_transforms.json)
    checkpoint: Path


def load_checkpoint_file(path: Path) -> dict[str, Any]:
    """A checkpoint we wrote (numpy scalars included, hence not weights-only)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _trainer_class() -> type:
    from nerfstudio.engine.trainer import Trainer

    class ScanTrainer(Trainer):
        """Trainer that saves through our store, remembers loss/metrics, and stops on cancel."""

        store: CheckpointStore
        resume_path: Path | None = None
        last_done: int | None = None
        last_output: tuple[Any, Any, Any] | None = None
        iterations_run = 0

        def _load_checkpoint(self) -> None:
            if self.resume_path is None:
                return
            state = load_checkpoint_file(self.resume_path)
            self._start_step = state["step"] + 1
            self.pipeline.load_pipeline(state["pipeline"], state["step"])
            self.optimizers.load_optimizers(state["optimizers"])
            if "schedulers" in state:
                self.optimizers.load_schedulers(state["schedulers"])
            self.grad_scaler.load_state_dict(state["scalers"])

        def save_checkpoint(self, step: int) -> None:
            state = {
                "step": step, "pipeline": self.pipeline.state_dict(),
                "optimizers": {k: v.state_dict() for k, v in self.optimizers.optimizers.items()},
                "schedulers": {k: v.state_dict() for k, v in self.optimizers.schedulers.items()},
                "scalers": self.grad_scaler.state_dict(),
            }
            with self.store.writing(step) as folder:
                torch.save(state, folder / CHECKPOINT_FILE)

        def train_iteration(self, step: int) -> Any:
            out = super().train_iteration(step)
            self.last_output = out
            self.last_done = step
            self.iterations_run += 1
            return out

        def _after_train(self) -> None:
            # A stop is seen at the top of the next iteration, after self.step moved past the
            # last one that ran: the checkpoint must carry the step that really ran.
            if self.last_done is not None:
                self.step = self.last_done
            super()._after_train()

    return ScanTrainer


class _Reporter:
    """The callback after every iteration: progress with ETA, metrics, and the cancel check."""

    def __init__(self, trainer: Any, total: int, first: int, progress: Progress, cancel: CancelToken,
                 preview_dir: Path | None = None) -> None:
        self.trainer, self.total, self.first = trainer, total, first
        self.progress, self.cancel = progress, cancel
        self.preview_dir, self.preview_every = preview_dir, preview_every(total)
        self.times: deque[float] = deque(maxlen=ETA_WINDOW)
        self.last_time = time.monotonic()
        self.psnr: float | None = None
        self.loss: float | None = None

    def __call__(self, step: int) -> None:
        now = time.monotonic()
        self.times.append(now - self.last_time)
        self.last_time = now
        if self.cancel.cancelled:
            self.trainer.stop_training = True
        done = step + 1
        if self.preview_dir is not None and (done % self.preview_every == 0 or done == self.total):
            self._preview(done)
        if done % REPORT_EVERY and done != self.total and not self.cancel.cancelled:
            return
        loss, _, metrics = self.trainer.last_output
        self.loss = float(loss.detach().item())
        psnr = metrics.get("psnr")
        self.psnr = float(psnr.item()) if psnr is not None else None
        eta = (self.total - done) * float(np.mean(self.times))
        text = f"step {done}/{self.total}  loss {self.loss:.4f}"
        if self.psnr is not None and math.isfinite(self.psnr):
            text += f"  PSNR {self.psnr:.2f} dB"
        text += f"  ETA {_duration(eta)}"
        self.progress.update(done / self.total, text)
        values = {"loss": self.loss, "eta_s": eta}
        if self.psnr is not None and math.isfinite(self.psnr):
            values["psnr"] = self.psnr
        self.progress.metric(done, values)


    def _preview(self, done: int) -> None:
        """Render the first training view, small, and report it."""
        pipeline = self.trainer.pipeline
        camera = pipeline.datamanager.train_dataset.cameras[0:1]
        size = float(max(int(camera.width[0, 0]), int(camera.height[0, 0])))
        if size > PREVIEW_SIDE:
            camera.rescale_output_resolution(PREVIEW_SIDE / size)
        pipeline.eval()
        try:
            out = pipeline.model.get_outputs_for_camera(camera.to(pipeline.device))
        finally:
            pipeline.train()
        write_preview(self.preview_dir, "nerf", done, out["rgb"].clamp(0, 1).cpu().numpy(), self.progress)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def train(data_dir: Path, out_dir: Path, settings: TrainSettings, store: CheckpointStore,
          progress: Progress, cancel: CancelToken, preview_dir: Path | None = None) -> TrainResult:
    """Train (or resume) nerfacto on ``data_dir``/transforms.json up to ``settings.steps``; with
    ``preview_dir`` (the run folder), about ten small renders of a training view are reported."""
    from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation

    latest = store.latest()
    resume_path = latest.folder / CHECKPOINT_FILE if latest is not None else None
    first = latest.step + 1 if latest is not None else 0
    checkpoint = resume_path
    if first >= settings.steps:
        assert resume_path is not None
        progress.log(f"the checkpoint at step {latest.step} already ends the training")
        return TrainResult(first, latest.step, 0, latest.step, None, None,
                           trainer_config(data_dir, out_dir, settings).get_base_dir(), resume_path)
    use_threads(settings)
    _seed(settings.seed + first)
    cfg = trainer_config(data_dir, out_dir, settings)
    cfg.max_num_iterations = settings.steps - first  # the loop runs first .. first + this - 1
    trainer_cls = _trainer_class()
    trainer = trainer_cls(cfg, local_rank=0, world_size=1)
    trainer.store, trainer.resume_path = store, resume_path
    with no_lpips_download():
        trainer.setup()
    if trainer._start_step != first:
        raise StageError(f"the checkpoint says step {trainer._start_step - 1}, expected {first - 1}",
                         resume_path)
    if latest is not None:
        progress.log(f"resuming nerfacto from step {latest.step}: {settings.steps - first} steps left")
    reporter = _Reporter(trainer, settings.steps, first, progress, cancel, preview_dir)
    trainer.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], reporter))
    trainer.train()
    saved = store.latest()
    checkpoint = saved.folder / CHECKPOINT_FILE if saved is not None else checkpoint
    last = trainer.last_done if trainer.last_done is not None else first - 1
    if cancel.cancelled and last < settings.steps - 1:
        raise Cancelled(f"cancelled at step {last + 1} of {settings.steps}; the checkpoint resumes it")
    assert checkpoint is not None
    return TrainResult(first, last, trainer.iterations_run, latest.step if latest else None,
                       reporter.psnr, reporter.loss, cfg.get_base_dir(), checkpoint)
