"""A splat training stopped and resumed from its checkpoint is the same training as one that
never stopped: the optimiser's moments and the densification statistics are rebuilt at the
checkpoint's (densified) size, and only the remaining steps run. Small: 24 px views, CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import Cancelled
from core.progress import CancelToken, Progress
from recon.sample.scene import render_orbit
from recon.splat.gaussians import PARAM_NAMES, init_params
from recon.splat.raster import rasterize
from recon.splat.train import TrainConfig, Trainer, latest_checkpoint, train
from recon.splat.views import TrainView

STEPS, STOP_AT = 40, 23  # densification at steps 10 and 20 (before the stop) and 30 (after it)
CONFIG = TrainConfig(steps=STEPS, max_splats=5000, densify_from=10, densify_every=10,
                     densify_until_fraction=0.8, grad_threshold=1e-3, checkpoint_every=1000, eval_every=20,
                     ssim_weight=0.2)


@pytest.fixture(scope="module")
def views():
    rendered = render_orbit(6, (24, 18), elevations_deg=(25.0,), radius_m=0.5)
    return [TrainView(f"v{i}", v.rgb.astype(np.float32) / 255.0, v.camera, v.c2w)
            for i, v in enumerate(rendered)]


def _trainer(views):
    rng = np.random.default_rng(3)
    points = rng.uniform([-0.08, 0.0, -0.06], [0.08, 0.25, 0.06], size=(150, 3))
    params = init_params(points, rng.uniform(0, 1, size=(150, 3)), sh_degree=1, seed=0)
    return Trainer(params, torch.full((3,), 0.5), views, CONFIG, rasterize, extent=0.6)


def test_stopped_and_resumed_training_equals_an_uninterrupted_one(views, tmp_path):
    torch.set_num_threads(1)
    whole = train(_trainer(views), views[:1], tmp_path / "whole", Progress("splat"), CancelToken())

    token, steps_first = CancelToken(), []

    def stop(event):
        if event.kind == "metric":
            steps_first.append(event.step)
            if event.step == STOP_AT:
                token.cancel()

    with pytest.raises(Cancelled):
        train(_trainer(views), views[:1], tmp_path / "parts", Progress("splat", stop), token)
    checkpoint = latest_checkpoint(tmp_path / "parts")
    assert checkpoint.name == f"step-{STOP_AT:07d}.pt"

    steps_second = []
    resumed_trainer = _trainer(views)  # built like a fresh attempt: initial size, new optimiser
    calls = {"n": 0}
    real_step = resumed_trainer.train_step

    def counted_step():
        calls["n"] += 1
        return real_step()

    resumed_trainer.train_step = counted_step
    resumed = train(resumed_trainer, views[:1], tmp_path / "parts",
                    Progress("splat", lambda e: steps_second.append(e.step) if e.kind == "metric" else None),
                    CancelToken(), resume_from=checkpoint)
    assert calls["n"] == STEPS - STOP_AT  # only the remaining steps ran
    assert resumed.resumed_from == STOP_AT and resumed.step == STEPS
    assert steps_first[-1] == STOP_AT and min(steps_second) == STOP_AT + 1 and max(steps_second) == STEPS
    # Densification happened on both sides of the stop, so the count changed after the restart.
    assert whole.params["means"].shape[0] > 300
    assert resumed.params["means"].shape == whole.params["means"].shape
    for name in PARAM_NAMES:
        torch.testing.assert_close(resumed.params[name], whole.params[name], rtol=1e-4, atol=1e-5)
    assert [s for s, _ in resumed.heldout_psnr] == [s for s, _ in whole.heldout_psnr] == [0, 20, 40]
    assert [p for _, p in resumed.heldout_psnr] == pytest.approx([p for _, p in whole.heldout_psnr], abs=1e-4)
