"""nerfacto on a tiny synthetic scene on the CPU: it learns (held-out PSNR rises), a cancel leaves a
checkpoint of the last step that ran, and the resumed run ends at the planned step running only
the remainder. Held-out views are rendered by recon.sample, never shown to the trainer."""

from __future__ import annotations

import numpy as np
import pytest

from core.checkpoints import Checkpoints
from core.errors import Cancelled
from core.fsio import atomic_write_bytes, atomic_write_json
from core.progress import CancelToken, Progress
from recon.nerf.data import TrainingView, _png, transforms_for
from recon.nerf.model import TrainedNerf, psnr
from recon.nerf.nsconfig import TrainSettings
from recon.nerf.training import train
from recon.sample import render_orbit

STEPS = 150  # held-out PSNR rose 9.3 -> 16.3 dB in 150 steps here (seeded, one torch thread)
MIN_RISE_DB = 6.0  # the done-when, in the default suite
CANCEL_AT = 40  # the sink cancels when it sees this step reported
SIZE = (64, 48)


def _settings(steps):
    return TrainSettings(steps=steps, rays_per_batch=256, device="cpu", small_model=True, cpu_threads=1,
                         checkpoint_every=10_000)


def _train_cancel_resume(out, steps, cancel_at):
    """Train 1 step (the "first" model), then to ``steps`` cancelled at ``cancel_at``, then resume."""
    data = out / "data"
    (data / "images").mkdir(parents=True)
    views = []
    for i, v in enumerate(render_orbit(16, SIZE)):
        name = f"frame_{i:05d}.png"
        atomic_write_bytes(data / "images" / name, _png(v.rgb))
        views.append(TrainingView(name, v.camera, v.c2w))
    atomic_write_json(data / "transforms.json", transforms_for(views))
    held_out = render_orbit(4, SIZE, elevations_deg=(25.0,))  # other heights and azimuths
    store = Checkpoints(out / "checkpoints")

    def held_out_psnr(result, steps):
        model = TrainedNerf(out, _settings(steps), result.checkpoint, result.base_dir)
        return float(np.mean([psnr(model.render(v.camera, v.c2w).rgb, v.rgb / 255.0) for v in held_out]))

    first = train(data, out, _settings(1), store, Progress("nerf"), CancelToken())
    first_psnr = held_out_psnr(first, 1)

    token = CancelToken()
    messages, events = [], []

    def sink(event):
        events.append(event)
        messages.append(event.message)
        if event.kind == "progress" and event.message.startswith(f"step {cancel_at}/"):
            token.cancel()

    with pytest.raises(Cancelled):
        train(data, out, _settings(steps), store, Progress("nerf", sink), token, preview_dir=out)
    cancelled_at = store.latest().step
    resumed = train(data, out, _settings(steps), store, Progress("nerf"), CancelToken())
    return {"first": first, "first_psnr": first_psnr, "messages": messages, "events": events,
            "cancelled_at": cancelled_at, "out": out,
            "resumed": resumed, "last_psnr": held_out_psnr(resumed, steps)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _train_cancel_resume(tmp_path_factory.mktemp("nerf"), STEPS, CANCEL_AT)


def test_held_out_psnr_rises(runs):
    assert runs["first"].last_step == 0
    rise = runs["last_psnr"] - runs["first_psnr"]
    assert rise >= MIN_RISE_DB, (runs["first_psnr"], runs["last_psnr"])


def test_progress_reports_step_loss_psnr_and_eta(runs):
    reports = [m for m in runs["messages"] if m.startswith("step ")]
    assert reports[0].startswith(f"step 10/{STEPS}")
    assert all(" loss " in m and " PSNR " in m and " ETA " in m for m in reports)


def test_metric_events_carry_psnr_and_previews_are_pngs_in_the_run(runs):
    metrics = [e for e in runs["events"] if e.kind == "metric"]
    assert [e.step for e in metrics] == list(range(10, CANCEL_AT + 1, 10)) + [CANCEL_AT + 1]
    assert all({"loss", "psnr", "eta_s"} <= set(e.values) for e in metrics)
    previews = [e for e in runs["events"] if e.kind == "preview"]
    assert [e.step for e in previews] == list(range(STEPS // 10, CANCEL_AT + 1, STEPS // 10))
    for e in previews:
        image = runs["out"] / "previews" / f"nerf-{e.step}.png"
        assert e.path == str(image) and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cancel_then_resume_runs_only_the_remainder(runs):
    # The cancel is seen after the iteration in which it arrived: the checkpoint is that step's.
    cancelled_at = runs["cancelled_at"]
    assert cancelled_at == CANCEL_AT  # reported "step 40" is index 39 done; index 40 ran as the cancel came
    resumed = runs["resumed"]
    assert resumed.resumed_from == cancelled_at
    assert resumed.first_step == cancelled_at + 1
    assert resumed.last_step == STEPS - 1  # the planned final step
    assert resumed.steps_run == STEPS - 1 - cancelled_at  # only the remainder
    assert resumed.checkpoint.parent.name == f"step-{STEPS - 1:09d}"
