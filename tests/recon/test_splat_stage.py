"""The splat stage on a tiny synthetic capture (recon.sample) with held-out views: it learns,
is cancelled and resumed to the planned final step, and writes a splat PLY, a USD
ParticleField and a metric mesh in the capture's world frame."""

import re

import numpy as np
import pytest
import torch

from core.errors import Cancelled, ConfigError
from core.progress import CancelToken, Progress
from core.stages import StageContext, execute_stage, make_config, run_dir_for
from core.workspace import Workspace
from recon.ingest import ingest
from recon.sample.dataset import write_capture_folder
from recon.sample.scene import OBJECT_BOUNDS, render_orbit
from recon.splat.stage import STAGE, SplatConfig

STEPS, CANCEL_AT = 150, 70
OPTIONS = {"max_side": 40, "steps": STEPS, "max_splats": 1500, "seed_points": 600,
           "checkpoint_every": 50, "device": "cpu"}


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two cores shared by many: threads only fight
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("splat")
    views = render_orbit(16, (80, 60), elevations_deg=(20.0, 45.0), radius_m=0.55)
    src = write_capture_folder(views, root / "src", with_depth=True)
    capture = ingest(src, Workspace(root / "ws"), name="splat-orbit")

    cancel, steps_seen, events = CancelToken(), [], []

    def sink(event):
        events.append(event)
        m = re.match(r"step (\d+)/", event.message)
        if m:
            steps_seen.append(int(m.group(1)))
            if int(m.group(1)) >= CANCEL_AT:
                cancel.cancel()

    with pytest.raises(Cancelled):
        execute_stage(capture, "splat", OPTIONS, sink=sink, cancel=cancel)
    config = make_config(STAGE, OPTIONS)
    run_dir = run_dir_for(capture, STAGE, config, {})
    kept = sorted((run_dir / "train_checkpoints").glob("step-*.pt"))

    # The next attempt: core keeps the resumable stage's interrupted folder and runs it again there.
    resumed_steps = []

    def resumed_sink(event):
        events.append(event)
        resumed_steps.extend(int(m.group(1)) for m in [re.match(r"step (\d+)/", event.message)] if m)

    outcome = execute_stage(capture, "splat", OPTIONS, sink=resumed_sink)
    assert outcome.run_dir == run_dir
    result = outcome.result
    return {"run_dir": run_dir, "kept": kept, "steps_seen": steps_seen, "resumed_steps": resumed_steps,
            "result": result, "capture": capture, "events": events}


def test_cancel_keeps_a_checkpoint_and_resume_runs_only_the_remaining_steps(trained):
    assert [p.name for p in trained["kept"]] == [f"step-{CANCEL_AT:07d}.pt"]
    assert max(trained["steps_seen"]) == CANCEL_AT
    result = trained["result"]
    assert result["resumed_from"] == CANCEL_AT and result["steps"] == STEPS
    assert min(trained["resumed_steps"]) > CANCEL_AT and max(trained["resumed_steps"]) == STEPS


def test_heldout_psnr_rises_at_least_6_db(trained):
    history = trained["result"]["heldout_psnr"]
    (first_step, first), (last_step, last) = history[0], history[-1]
    assert first_step == 0 and last_step == STEPS
    assert last - first >= 6.0, history


def test_training_reports_psnr_metrics_and_preview_renders(trained):
    metrics = [e for e in trained["events"] if e.kind == "metric"]
    steps = [e.step for e in metrics]
    assert steps == sorted(steps) and steps[-1] == STEPS and len(set(steps)) == len(steps)
    held = dict(trained["result"]["heldout_psnr"])
    last = metrics[-1].values
    assert last["psnr"] == pytest.approx(held[STEPS], abs=1e-3) and last["loss"] > 0
    assert {"loss", "psnr", "splats", "eta_s"} <= set(last)
    # The run's metrics.jsonl is core's alone: one line per metric event, none of the stage's own.
    lines = (trained["run_dir"] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(metrics)
    previews = [e for e in trained["events"] if e.kind == "preview"]
    assert previews and previews[-1].step == STEPS
    capture_root = trained["capture"].root
    for e in previews:
        image = capture_root / e.path
        assert image.is_relative_to(trained["run_dir"]) and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_splat_ply_reads_back_in_plyfile_with_standard_names(trained):
    from plyfile import PlyData

    vertex = PlyData.read(str(trained["run_dir"] / "splat.ply"))["vertex"]
    names = vertex.data.dtype.names
    expected = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                + [f"f_rest_{i}" for i in range(9)]
                + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert list(names) == expected
    assert len(vertex.data) == trained["result"]["splats"]
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    assert np.isfinite(xyz).all()
    # Most splats sit on the scene (object and ground disc of radius 35 cm), in metres.
    assert np.median(np.linalg.norm(xyz[:, [0, 2]], axis=1)) < 0.35


def test_usd_opens_with_particle_field_attributes_filled(trained):
    from pxr import Usd, UsdVol

    stage = Usd.Stage.Open(str(trained["run_dir"] / "splat.usda"))
    prim = stage.GetDefaultPrim()
    splat = UsdVol.ParticleField3DGaussianSplat(prim)
    assert prim.IsA(UsdVol.ParticleField3DGaussianSplat)
    n = trained["result"]["splats"]
    assert len(splat.GetPositionsAttr().Get()) == n
    assert len(splat.GetOrientationsAttr().Get()) == n
    scales = np.array(splat.GetScalesAttr().Get())
    opacities = np.array(splat.GetOpacitiesAttr().Get())
    assert scales.shape == (n, 3) and (scales > 0).all()
    assert opacities.shape == (n,) and ((opacities > 0) & (opacities < 1)).all()
    assert splat.GetRadianceSphericalHarmonicsDegreeAttr().Get() == 1
    assert len(splat.GetRadianceSphericalHarmonicsCoefficientsAttr().Get()) == 4 * n


def test_mesh_from_rendered_depth_is_in_the_world_frame_at_metric_scale(trained):
    import open3d as o3d

    mesh = o3d.io.read_triangle_mesh(str(trained["run_dir"] / "mesh.ply"))
    v = np.asarray(mesh.vertices)
    assert len(mesh.triangles) > 100
    # The object (25 cm tall on y = 0) is in it: vertices near the box top / ball, none far away.
    top = OBJECT_BOUNDS[1][1]
    assert v[:, 1].max() == pytest.approx(top, abs=0.04)
    assert np.abs(v[:, [0, 2]]).max() < 0.5


def test_full_detail_on_a_cpu_is_refused_with_the_time_and_the_preset_that_fits(trained):
    ctx = StageContext(trained["capture"], trained["run_dir"].parent / "unused", {}, Progress("splat"),
                       CancelToken())
    with pytest.raises(ConfigError, match=r"about \d+ (h|days).*--detail preview \(about \d+"):
        STAGE.run(ctx, SplatConfig(detail="full", device="cpu"))
    assert not (trained["run_dir"].parent / "unused").exists()


def test_bad_options_are_one_config_error_naming_the_field():
    with pytest.raises(ConfigError, match="splat.detail"):
        SplatConfig(detail="ultra")
    with pytest.raises(ConfigError, match="splat.sh_degree"):
        SplatConfig(sh_degree=3)
    with pytest.raises(ConfigError, match="splat.steps"):
        SplatConfig(steps=-1)


def test_the_splat_method_plans_splat_then_the_shared_mesh_path(trained):
    from recon.methods import plan

    chosen = plan(trained["capture"], "splat", detail="preview")
    assert chosen.method == "splat"
    # Every frame has metric depth and a device pose: no poses stage, the capture's poses are used.
    assert [s.stage for s in chosen.steps] == ["splat", "mesh", "export", "publish"]
    assert chosen.steps[0].config["detail"] == "preview"
