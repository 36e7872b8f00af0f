"""The PatchMatch (NVIDIA GPU) backend of the mvs stage.

Everything around COLMAP's GPU kernel runs here on the CPU: choosing the backend, undistorting
the poses run into a dense workspace, COLMAP's stereo fusion and the Poisson mesh. In place of
PatchMatch's own output, the test writes the rendered orbit's true depth and normal maps in
COLMAP's format, so fusion and meshing are checked against known geometry. The kernel itself
runs under ``-m gpu``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pycolmap
import pytest

from core.errors import ConfigError
from core.progress import CancelToken
from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest
from recon.mvs import patch_match as pm
from recon.mvs.stage import MVSConfig
from recon.sample.dataset import write_capture_folder
from recon.sample.scene import distance_to_object, render_orbit

SIZE = (200, 150)
needs_no_cuda = pytest.mark.skipif(pm.unavailable_reason() is None, reason="PatchMatch can run here")


@pytest.fixture(scope="module")
def posed(tmp_path_factory):
    """A rendered orbit ingested with its device poses, and its poses run (sparse/0)."""
    tmp = tmp_path_factory.mktemp("patch-match")
    rendered = render_orbit(8, SIZE, elevations_deg=(25.0,), radius_m=0.5)
    src = write_capture_folder(rendered, tmp / "src", with_depth=False)
    capture = ingest(src, Workspace(tmp / "ws"))
    poses = execute_stage(capture, "poses", {"max_image_size": SIZE[0]})
    by_name = {f.image: r for f, r in zip(capture.load().frames, rendered, strict=True)}
    return capture, poses.run_dir, by_name


def write_colmap_array(path: Path, array: np.ndarray) -> None:
    """COLMAP's Mat<float> file: 'width&height&channels&' then float32, channel-planar, row-major."""
    a = array if array.ndim == 3 else array[:, :, None]  # (H, W, C)
    h, w, c = a.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(f"{w}&{h}&{c}&".encode())
        f.write(np.ascontiguousarray(a.transpose(2, 0, 1), dtype="<f4").tobytes())


def camera_normals(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(H, W, 3) unit normals in camera axes, facing the camera, from a z-depth map (H, W)."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    pts = np.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], axis=-1)  # (H, W, 3)
    n = np.cross(np.gradient(pts, axis=1), np.gradient(pts, axis=0))
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    n *= -np.sign(np.sum(n * pts, axis=-1, keepdims=True) + 1e-12)  # towards the camera
    n[depth <= 0] = 0.0
    return n.astype(np.float32)


def test_auto_takes_patch_match_only_where_it_can_run():
    assert pm.choose_backend("auto", None) == "patch_match"
    assert pm.choose_backend("auto", pm.NO_CUDA_DEVICE) == "plane_sweep"
    assert pm.choose_backend("plane_sweep", None) == "plane_sweep"
    # An explicit request is kept, so that running it says why it cannot run.
    assert pm.choose_backend("patch_match", pm.NO_CUDA_BUILD) == "patch_match"
    with pytest.raises(ConfigError) as e:
        pm.choose_backend("cuda", None)
    assert e.value.where == "mvs.backend"


def test_unavailable_reason_on_this_machine(monkeypatch):
    if not pycolmap.has_cuda:
        assert pm.unavailable_reason() == pm.NO_CUDA_BUILD
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert pm.cuda_device_count() == 0
    monkeypatch.setattr(pycolmap, "has_cuda", True, raising=False)
    assert pm.unavailable_reason() == pm.NO_CUDA_DEVICE


@pytest.mark.parametrize(("field", "value"), [
    ("max_image_size", 0), ("num_iterations", 2.5), ("max_views", -1), ("fusion_max_depth_error", 0),
    ("poisson_trim_quantile", 0.5), ("gpu_index", "first"),
])
def test_bad_patch_match_options_name_the_field(field, value):
    with pytest.raises(ConfigError) as e:
        pm.PatchMatchConfig(**{field: value})
    assert e.value.where == f"mvs.{field}"


def test_bad_backend_names_the_field():
    with pytest.raises(ConfigError) as e:
        MVSConfig(backend="gpu")
    assert e.value.where == "mvs.backend"


@needs_no_cuda
def test_asking_for_patch_match_without_cuda_is_one_clear_error(posed):
    capture, poses_run, _ = posed
    with pytest.raises(ConfigError) as e:
        execute_stage(capture, "mvs", {"backend": "patch_match"}, inputs={"poses": poses_run})
    assert e.value.where == "mvs.backend" and "plane_sweep" in str(e.value)
    assert not any(capture.runs_dir.glob("mvs-*/mesh.ply"))


def test_select_images_takes_registered_photos_evenly(posed):
    capture, poses_run, by_name = posed
    model = pycolmap.Reconstruction(poses_run / "sparse" / "0")
    assert pm.select_images(model, capture, poses_run, 0) == sorted(by_name)
    four = pm.select_images(model, capture, poses_run, 4)
    assert len(four) == 4 and four[0] == sorted(by_name)[0] and four[-1] == sorted(by_name)[-1]


def test_undistort_fuse_and_mesh_known_depth(posed, tmp_path):
    capture, poses_run, by_name = posed
    names = sorted(by_name)
    cfg = pm.PatchMatchConfig(max_image_size=SIZE[0], fusion_min_num_pixels=3, poisson_depth=8)
    workspace = pm.undistort_workspace(poses_run / "sparse" / "0", capture.root, tmp_path / "dense",
                                       names, cfg, CancelToken())
    assert sorted((workspace / "stereo" / "fusion.cfg").read_text().split()) == names
    dense_model = pycolmap.Reconstruction(workspace / "sparse")
    (camera,) = dense_model.cameras.values()
    assert (camera.width, camera.height) == SIZE  # pinhole at full size: the rendered depth fits as it is
    fx, fy, cx, cy = camera.params
    for name in names:  # what PatchMatch would have written
        depth = by_name[name].depth_m.astype(np.float32)
        write_colmap_array(workspace / "stereo" / "depth_maps" / f"{name}.geometric.bin", depth)
        write_colmap_array(workspace / "stereo" / "normal_maps" / f"{name}.geometric.bin",
                           camera_normals(depth, fx, fy, cx, cy))

    fused = pm.fuse_depth_maps(workspace, cfg, CancelToken())
    out = tmp_path / "run"
    out.mkdir()
    result = pm.mesh_fused_points(fused, out, cfg)
    assert result["fused_points"] > 5000 and result["triangles"] > 1000
    import open3d as o3d

    points = np.asarray(o3d.io.read_point_cloud(str(out / pm.POINTS_FILE)).points)
    # The fused points lie on the object or the ground (y = 0), in the capture's metres.
    err = np.minimum(distance_to_object(points), np.abs(points[:, 1]))
    assert np.median(err) < 0.003 and np.mean(err < 0.01) > 0.95
    mesh = o3d.io.read_triangle_mesh(str(out / pm.MESH_FILE))
    assert len(mesh.triangles) == result["triangles"]
    lo, hi = np.array(result["bounds"])
    assert np.all(lo >= points.min(axis=0) - 0.05) and np.all(hi <= points.max(axis=0) + 0.05)


def test_mesh_of_too_few_fused_points_is_an_error(tmp_path):
    import open3d as o3d

    from core.errors import ReconstructionError

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.random.default_rng(0).random((20, 3))))
    fused = tmp_path / "fused.ply"
    o3d.io.write_point_cloud(str(fused), cloud)
    with pytest.raises(ReconstructionError) as e:
        pm.mesh_fused_points(fused, tmp_path, pm.PatchMatchConfig())
    assert Path(e.value.where) == fused
    assert not (tmp_path / pm.MESH_FILE).exists()


@pytest.mark.gpu
@pytest.mark.skipif(pm.unavailable_reason() is not None, reason=str(pm.unavailable_reason()))
def test_patch_match_stage_on_the_gpu(posed):
    capture, poses_run, _ = posed
    out = execute_stage(capture, "mvs", {"backend": "auto", "patch_match_max_image_size": SIZE[0]},
                        inputs={"poses": poses_run})
    assert out.result["backend"] == "patch_match"
    import open3d as o3d

    points = np.asarray(o3d.io.read_point_cloud(str(out.run_dir / pm.POINTS_FILE)).points)
    err = np.minimum(distance_to_object(points), np.abs(points[:, 1]))
    assert len(points) > 1000 and np.median(err) < 0.01
    assert not (out.run_dir / pm.WORKSPACE_DIR).exists()
