"""The ``surface`` stage (issue 12): a neural SDF trained on a tiny synthetic capture of known
geometry (recon.sample), on the CPU. Learning is shown by the Chamfer distance to the true
object falling; cancel then resume reaches the planned final step; the mesh is in the capture's
world frame. Kept tiny (few rays, coarse samples, a small grid) so each test takes about a minute.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.errors import Cancelled, ConfigError
from core.progress import CancelToken
from core.stages import execute_stage, make_config, run_dir_for
from core.workspace import Workspace
from recon.ingest import ingest
from recon.mesh.io import read_mesh_ply
from recon.sample.dataset import write_capture_folder
from recon.sample.evaluate import surface_metrics
from recon.sample.scene import OBJECT_BOUNDS, render_orbit
from recon.surface.presets import check_fits
from recon.surface.stage import CHECKPOINT_DIR, STAGE
from recon.surface.train import CHECKPOINT_FILE

TINY = {"detail": "preview", "rays_per_batch": 64, "coarse_samples": 16, "fine_samples": 8,
        "image_max_side": 96, "mesh_resolution": 48, "device": "cpu", "checkpoint_every": 5}


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """A nerfstudio dataset of the sample scene (photos, metric depth, object masks), ingested."""
    root = tmp_path_factory.mktemp("surface")
    views = render_orbit(8, (128, 96), elevations_deg=(15.0, 45.0), radius_m=0.5)
    src = write_capture_folder(views, root / "src", with_depth=True)
    return ingest(src, Workspace(root / "ws"), name="surface-orbit")


def _chamfer(run_dir):
    mesh = read_mesh_ply(run_dir / "mesh.ply")
    return surface_metrics(np.asarray(mesh.vertices))["chamfer_m"], mesh


def test_training_brings_the_surface_to_the_object(capture):
    start = execute_stage(capture, STAGE, {**TINY, "steps": 1})
    events = []
    trained = execute_stage(capture, STAGE, {**TINY, "steps": 40}, sink=events.append)
    messages = [e.message for e in events if e.kind == "progress"]
    before, _ = _chamfer(start.run_dir)
    after, mesh = _chamfer(trained.run_dir)
    # The field starts as a sphere around the object; 40 tiny steps must pull it well towards the
    # object (about 17 mm -> 9 mm here; the slow test trains to below 5 mm).
    assert after < 0.6 * before, (before, after)
    assert trained.result["steps"] == 40 and trained.result["losses"] == {"depth": True, "mask": True}
    assert any("step 40/40" in m and "PSNR" in m for m in messages)
    # Metric events carry the PSNR the progress line shows; previews are PNG renders in the run.
    metrics = [e for e in events if e.kind == "metric"]
    assert metrics[-1].step == 40 and {"loss", "psnr"} <= set(metrics[-1].values)
    assert metrics[-1].values["psnr"] == pytest.approx(trained.result["final_psnr_db"])
    previews = [e for e in events if e.kind == "preview"]
    assert [e.step for e in previews] == [4 * i for i in range(1, 11)]
    image = capture.root / previews[-1].path
    assert image.is_relative_to(trained.run_dir) and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # World frame, metres: the mesh lies where the object is, within a few centimetres.
    lo, hi = np.array(OBJECT_BOUNDS[0]), np.array(OBJECT_BOUNDS[1])
    assert np.all(mesh.vertices.min(axis=0) > lo - 0.04) and np.all(mesh.vertices.max(axis=0) < hi + 0.04)
    # Faces wind counter-clockwise seen from outside: the object is star-shaped about its box's
    # centre, so nearly every face's normal points away from it.
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    face_normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    outwards = v[f].mean(axis=1) - (lo + hi) / 2.0
    assert ((face_normals * outwards).sum(axis=1) > 0).mean() > 0.9


def test_cancel_then_resume_runs_only_the_remaining_steps(capture):
    options = {**TINY, "steps": 12, "mesh_resolution": 32}
    cancel = CancelToken()
    first: list[str] = []

    def cancel_at_seven(event):
        if event.kind == "progress":
            first.append(event.message)
            if event.message.startswith("step 7/"):
                cancel.cancel()

    with pytest.raises(Cancelled):
        execute_stage(capture, "surface", options, sink=cancel_at_seven, cancel=cancel)
    run_dir = run_dir_for(capture, STAGE, make_config(STAGE, options), {})
    saved = torch.load(run_dir / CHECKPOINT_DIR / CHECKPOINT_FILE, weights_only=True)
    assert saved["step"] == 7
    assert not (run_dir / "mesh.ply").exists()

    # The next attempt: core keeps the resumable stage's interrupted folder and runs it there again.
    second: list[str] = []
    outcome = execute_stage(capture, "surface", options, sink=lambda e: second.append(e.message))
    assert outcome.run_dir == run_dir
    result = outcome.result
    assert result["resumed_from_step"] == 7 and result["steps"] == 12
    steps_reported = [int(m.split()[1].split("/")[0]) for m in second if m.startswith("step ")]
    assert steps_reported == list(range(8, 13))  # only the remaining steps ran
    assert (run_dir / "mesh.ply").is_file()
    assert torch.load(run_dir / CHECKPOINT_DIR / CHECKPOINT_FILE, weights_only=True)["step"] == 12


def test_a_full_run_on_the_cpu_is_refused_with_the_time_and_the_preset_that_fits(capture):
    with pytest.raises(ConfigError) as err:
        check_fits("full", "cpu")
    assert "h on this machine's CPU" in str(err.value) and "--detail preview" in str(err.value)
    with pytest.raises(ConfigError, match="--detail preview"):
        execute_stage(capture, STAGE, {"detail": "medium", "device": "cpu"})
    assert check_fits("preview", "cpu") > 0 and check_fits("full", "cuda") > 0


@pytest.mark.parametrize(("overrides", "field"), [
    ({"detail": "huge"}, "surface.detail"), ({"steps": 0}, "surface.steps"),
    ({"steps": 10**400}, "surface.steps"), ({"rays_per_batch": 1.5}, "surface.rays_per_batch"),
    ({"device": "tpu"}, "surface.device"), ({"use_depth": "yes"}, "surface.use_depth"),
    ({"mesh_resolution": True}, "surface.mesh_resolution"),
])
def test_bad_config_names_the_option(overrides, field):
    with pytest.raises(ConfigError) as err:
        STAGE.config_cls(**overrides)
    assert field in str(err.value)


def test_the_method_plans_the_surface_then_mesh_and_export(capture):
    from recon.methods import plan

    chosen = plan(capture, "surface", "preview")
    assert [s.stage for s in chosen.steps] == ["surface", "mesh", "export", "publish"]
    assert chosen.steps[0].config["detail"] == "preview"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--detail preview"):
            plan(capture, "surface", "full")


def test_surface_below_5_mm_at_preview_detail_with_64_px_photos(capture):
    # bench/neural.py measured 1.7 mm (F-score 0.99 at 1 cm) for this setting on 16 views.
    surface = execute_stage(capture, STAGE, {"detail": "preview", "steps": 150, "image_max_side": 64,
                                             "device": "cpu"})
    chamfer, _ = _chamfer(surface.run_dir)
    assert chamfer < 0.005, chamfer


@pytest.mark.slow
def test_surface_below_5_mm_and_a_usdz_at_true_size(capture, tmp_path):
    from recon.export.check import check_usdz

    surface = execute_stage(capture, STAGE, {**TINY, "steps": 150, "rays_per_batch": 128,
                                             "coarse_samples": 24, "image_max_side": 128,
                                             "mesh_resolution": 96})
    chamfer, _ = _chamfer(surface.run_dir)
    assert chamfer < 0.005, chamfer
    mesh = execute_stage(capture, "mesh", {"detail": "preview", "texture_size": 512},
                         inputs={"surface": surface.run_dir})
    export = execute_stage(capture, "export", {"detail": "preview", "formats": ["usdz"], "name": "surface"},
                           inputs={"surface": surface.run_dir, "mesh": mesh.run_dir})
    usdz = next(export.run_dir.rglob("*.usdz"))
    report = check_usdz(usdz)
    assert report.passed, (report.errors, report.failed_checks)
    placement = json.loads((mesh.run_dir / "placement.json").read_text())
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(usdz))
    geom = next(UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    points = np.array(geom.GetPointsAttr().Get(), np.float64) * UsdGeom.GetStageMetersPerUnit(stage)
    height = points[:, 1].max() - points[:, 1].min()
    assert placement["scale"] == "metric"
    assert height == pytest.approx(OBJECT_BOUNDS[1][1] - OBJECT_BOUNDS[0][1], rel=0.05)


@pytest.mark.gpu
def test_cuda_training_reaches_the_object():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (torch.cuda.is_available() is False)")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        views = render_orbit(16, (256, 192), elevations_deg=(15.0, 45.0), radius_m=0.5)
        capture = ingest(write_capture_folder(views, root / "src", with_depth=True), Workspace(root / "ws"),
                         name="gpu")
        run = execute_stage(capture, STAGE, {"detail": "preview", "device": "cuda", "steps": 1500,
                                             "mesh_resolution": 192})
        chamfer, _ = _chamfer(run.run_dir)
        assert run.result["device"] == "cuda" and chamfer < 0.003, chamfer
