"""`scanbridge process` end to end: issue 3's done-when checks on a synthetic RGB-D orbit."""

import json

import numpy as np
import pytest

from core.errors import ConfigError
from core.workspace import Workspace
from recon.export.check import check_usdz
from recon.ingest import ingest
from recon.methods import plan
from recon.pipeline import process
from recon.sample.dataset import write_capture_folder
from recon.sample.evaluate import surface_metrics
from recon.sample.scene import OBJECT_BOUNDS, render_orbit


def _usdz_points(path):
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    mesh = next(UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    return np.array(mesh.GetPointsAttr().Get(), np.float64)


@pytest.fixture(scope="module")
def rgbd_capture(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgbd")
    views = render_orbit(16, (384, 288), elevations_deg=(20.0, 45.0), radius_m=0.55)
    src = write_capture_folder(views, root / "src", with_depth=True)
    ws = Workspace(root / "ws")
    return ws, ingest(src, ws, name="rgbd-orbit")


def test_plan_picks_fusion_for_metric_depth_and_refuses_what_cannot_work(rgbd_capture):
    _, cap = rgbd_capture
    chosen = plan(cap)
    assert chosen.requested == "auto" and chosen.method == "fusion"
    assert [s.stage for s in chosen.steps] == ["fusion", "mesh", "export", "publish"]
    assert chosen.steps[0].config["preset"] == "object"  # the object is 0.55 m away
    assert chosen.steps[2].config["name"] == "rgbd-orbit"
    assert [s.stage for s in plan(cap, "mvs").steps] == ["poses", "mvs", "mesh", "export", "publish"]
    with pytest.raises(ConfigError, match="method"):
        plan(cap, "no-such-method")


def test_fusion_to_usdz_keeps_geometry_and_true_size(rgbd_capture, tmp_path):
    ws, cap = rgbd_capture
    out = tmp_path / "model.usdz"
    result = process(ws, cap, detail="preview", out=out, mesh_options={"texture_size": 512})
    assert result.method == "fusion"
    assert out.is_file() and (tmp_path / "model-poster.png").is_file()
    published = {p.name for p in cap.exports_dir.iterdir()}
    assert published >= {"model.usdz", "model.glb", "model.obj", "model.ply", "poster.png"}
    report = check_usdz(out)
    assert report.passed, (report.errors, report.warnings, report.failed_checks)

    export = next(o for o in result.outcomes if o.stage == "export").result
    assert export["arkit_check"]["ran"] and export["scale"] == "metric"
    assert export["triangles"] <= 25_000 and max(export["texture"]) <= 2048

    # Back from the model's frame (y up, on the ground) into the scene's to compare with the truth.
    mesh_run = next(o.run_dir for o in result.outcomes if o.stage == "mesh")
    matrix = np.array(json.loads((mesh_run / "placement.json").read_text())["matrix"])
    pts = _usdz_points(out)
    world = (pts - matrix[:3, 3]) @ np.linalg.inv(matrix[:3, :3]).T
    m = surface_metrics(world, threshold_m=0.01)
    assert m["chamfer_m"] < 0.01 and m["fscore"] >= 0.9, m

    # The model's size in the USDZ is the object's true size within 2%.
    lo, hi = np.array(OBJECT_BOUNDS[0]), np.array(OBJECT_BOUNDS[1])
    size = world.max(axis=0) - world.min(axis=0)
    assert np.all(np.abs(size - (hi - lo)) <= 0.02 * (hi - lo)), (size, hi - lo)
    # standing on y = 0: the ground it stood on is the floor (the fused foot is within a few mm)
    assert pts[:, 1].min() == pytest.approx(0.0, abs=0.005)


def test_bad_output_suffix_writes_nothing(rgbd_capture, tmp_path):
    ws, cap = rgbd_capture
    before = sorted(p.name for p in cap.exports_dir.glob("*")) if cap.exports_dir.exists() else []
    with pytest.raises(ConfigError, match="model.fbx"):
        process(ws, cap, out=tmp_path / "model.fbx")
    after = sorted(p.name for p in cap.exports_dir.glob("*")) if cap.exports_dir.exists() else []
    assert after == before and not (tmp_path / "model.fbx").exists()
