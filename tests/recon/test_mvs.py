import numpy as np
import pytest

from core.progress import CancelToken, Progress
from recon.mvs.dense import DenseConfig, dense_depths
from recon.mvs.plane_sweep import SweepConfig, backproject, sweep_depth
from recon.mvs.views import look_at_point, make_view, select_neighbours
from recon.sample.scene import ORBIT_TARGET, distance_to_object, render_orbit


@pytest.fixture(scope="module")
def orbit():
    rendered = render_orbit(12, (200, 150), elevations_deg=(20.0,), radius_m=0.5)
    views = [make_view(f"v{i}", r.rgb, r.camera, r.c2w, 200) for i, r in enumerate(rendered)]
    return rendered, views


def test_cameras_look_at_the_orbit_target(orbit):
    _, views = orbit
    assert np.linalg.norm(look_at_point(views) - ORBIT_TARGET) < 1e-6
    nb = select_neighbours(views, 0, 2)
    assert sorted(nb) == [1, 11]  # the two adjacent views, 30 degrees apart


def test_plane_sweep_recovers_rendered_depth(orbit):
    rendered, views = orbit
    dm = sweep_depth(views[0], [views[1], views[11]], 0.3, 0.8, SweepConfig(num_planes=64))
    truth = rendered[0].depth_m
    both = (dm.depth > 0) & (truth > 0)
    assert both.mean() > 0.4  # most textured pixels get a depth
    rel = np.abs(dm.depth[both] - truth[both]) / truth[both]
    assert np.median(rel) < 0.01
    assert np.mean(rel < 0.03) > 0.8


def test_consistent_depths_lie_on_the_object_or_ground(orbit):
    rendered, views = orbit
    cfg = DenseConfig(num_neighbours=2, num_planes=48)
    depths = dense_depths(views[:6], None, cfg, Progress("mvs"), CancelToken())
    kept = [d for d in depths if (d > 0).any()]
    assert len(kept) >= 4
    pts = np.concatenate([backproject(v, d)[d > 0] for v, d in zip(views, depths, strict=False)])
    # Every kept point is within 1 cm of the object or of the ground plane y = 0.
    err = np.minimum(distance_to_object(pts), np.abs(pts[:, 1]))
    assert np.mean(err < 0.01) > 0.95


def test_mvs_stage_on_a_posed_capture(tmp_path):
    from core.stages import execute_stage
    from core.workspace import Workspace
    from recon.ingest import ingest
    from recon.sample.dataset import write_capture_folder

    rendered = render_orbit(10, (200, 150), elevations_deg=(25.0,), radius_m=0.5)
    src = write_capture_folder(rendered, tmp_path / "src", with_depth=False)
    cap = ingest(src, Workspace(tmp_path / "ws"))
    poses = execute_stage(cap, "poses", {"max_image_size": 200})  # device poses, triangulated
    out = execute_stage(cap, "recon.mvs.stage:STAGE", {"num_planes": 48, "num_neighbours": 2},
                        inputs={"poses": poses.run_dir})
    assert (out.run_dir / "mesh.ply").is_file()
    assert out.result["triangles"] > 1000
    from recon.mvs.patch_match import unavailable_reason

    assert out.result["backend"] == ("plane_sweep" if unavailable_reason() else "patch_match")
    lo, hi = np.array(out.result["bounds"])
    assert (hi - lo).max() < 1.5  # metres: the scene, not a blow-up
