"""TSDFFusion on a ray-cast orbit of recon.sample.scene's object (box + ball, known geometry)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial import cKDTree

from core.capture import Camera
from core.errors import ConfigError, InputError
from recon.fusion import FusedMesh, FusionConfig, TSDFFusion, preset
from recon.sample.scene import OBJECT_BOUNDS, distance_to_object, render_orbit, sample_surface

SIZE = (256, 192)  # the LiDAR depth size of an iPhone


@pytest.fixture(scope="module")
def orbit():
    # three rings, so the ball's underside and the box's sides are all seen
    return render_orbit(24, SIZE, elevations_deg=(5.0, 30.0, 60.0), radius_m=0.5)


def object_depth(view) -> np.ndarray:
    """Depth on the object only (as with a mask), float32 metres, 0 elsewhere."""
    return np.where(view.mask, view.depth_m, 0.0).astype(np.float32)


def sample_mesh(mesh: FusedMesh, n: int, seed: int = 0) -> np.ndarray:
    """Area-uniform random points on the mesh's triangles. -> (n, 3)"""
    tri = mesh.vertices[mesh.faces].astype(np.float64)  # (F, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    pick = tri[rng.choice(len(area), n, p=area / area.sum())]
    r1, r2 = np.sqrt(rng.random(n))[:, None], rng.random(n)[:, None]
    return (1 - r1) * pick[:, 0] + r1 * (1 - r2) * pick[:, 1] + r1 * r2 * pick[:, 2]


def chamfer_and_fscore(mesh: FusedMesh, tau: float = 0.01, n: int = 30000) -> tuple[float, float]:
    """Symmetric mean Chamfer distance (m) and F-score at ``tau`` against the true surface."""
    pred = sample_mesh(mesh, n)
    truth, _ = sample_surface(n)
    d_pred = distance_to_object(pred)  # exact distance to the analytic surface
    d_truth, _ = cKDTree(pred).query(truth)
    precision, recall = (d_pred < tau).mean(), (d_truth < tau).mean()
    fscore = 2 * precision * recall / max(precision + recall, 1e-12)
    return float((d_pred.mean() + d_truth.mean()) / 2), float(fscore)


def fuse(views, config: FusionConfig, **kw) -> TSDFFusion:
    fusion = TSDFFusion(config)
    for v in views:
        fusion.add_frame(object_depth(v), v.camera, v.c2w, **kw)
    return fusion


def test_fused_object_matches_truth_within_a_centimetre(orbit):
    fusion = fuse(orbit, preset("object"))  # the shipped preset, as it is
    assert fusion.frame_count == len(orbit)
    mesh = fusion.extract_mesh()
    chamfer, fscore = chamfer_and_fscore(mesh)
    assert chamfer < 0.01  # the done-when
    assert fscore >= 0.9
    assert chamfer < 0.003  # what 4 mm voxels give on exact depth
    lo, hi = mesh.bounds()
    assert np.all(lo > np.array(OBJECT_BOUNDS[0]) - 0.015) and np.all(hi < np.array(OBJECT_BOUNDS[1]) + 0.015)
    # normals point outwards: they agree with the true normal at the nearest surface point
    truth, truth_normals = sample_surface(50000, seed=2)
    _, nearest = cKDTree(truth).query(mesh.vertices)
    agree = np.einsum("ij,ij->i", mesh.normals, truth_normals[nearest])
    assert (agree > 0.5).mean() > 0.9


def test_uint16_millimetres_and_float_metres_give_the_same_surface(orbit):
    views = orbit[:8]
    cfg = preset("object", min_weight=1.0)
    as_float = fuse(views, cfg).extract_mesh()
    as_mm = TSDFFusion(cfg)
    for v in views:
        mm = np.round(object_depth(v) * 1000.0).astype(np.uint16)
        as_mm.add_frame(mm, v.camera, v.c2w, depth_scale=0.001)
    mesh_mm = as_mm.extract_mesh()
    assert abs(mesh_mm.vertex_count - as_float.vertex_count) <= 0.02 * as_float.vertex_count
    d, _ = cKDTree(as_float.vertices).query(mesh_mm.vertices)
    assert np.median(d) < 0.001


def test_confidence_filter_drops_flagged_outliers(orbit):
    rng = np.random.default_rng(3)
    noisy = []
    for v in orbit:
        depth = object_depth(v)
        conf = np.full(depth.shape, 2, np.uint8)
        outliers = (depth > 0) & (rng.random(depth.shape) < 0.05)
        depth = np.where(outliers, depth + rng.uniform(0.05, 0.2, depth.shape).astype(np.float32), depth)
        conf[outliers] = 0  # the device flags its bad pixels, as ARKit does
        noisy.append((replace(v, depth_m=depth), conf))

    def precision(min_confidence: int) -> float:
        fusion = TSDFFusion(preset("object", min_weight=1.0, min_confidence=min_confidence))
        for v, conf in noisy:
            fusion.add_frame(v.depth_m, v.camera, v.c2w, confidence=conf)
        pts = fusion.extract_points().points.astype(np.float64)
        return float((distance_to_object(pts) < 0.01).mean())

    assert precision(2) > 0.99
    assert precision(0) < 0.9  # without the filter the outliers show up


def test_depth_range_limits_what_is_fused(orbit):
    views = orbit[:8]
    near = [float(np.median(object_depth(v)[object_depth(v) > 0])) for v in views]
    cut = float(np.median(near))
    fusion = fuse(views, preset("object", min_weight=1.0, max_depth_m=cut))
    pts = fusion.extract_points().points.astype(np.float64)
    # every fused point was seen within the range (plus the truncation band) by some view
    z = np.stack([pts @ np.linalg.inv(v.c2w)[2, :3] + np.linalg.inv(v.c2w)[2, 3] for v in views])  # (V, N)
    assert np.all(z.min(axis=0) <= cut + fusion.config.trunc_m)
    all_pts = fuse(views, preset("object", min_weight=1.0)).extract_points().points
    assert 0 < len(pts) < 0.9 * len(all_pts)
    # nothing is fused from a frame whose depth all lies outside the range
    far = TSDFFusion(preset("object", min_depth_m=2.0, max_depth_m=3.0))
    assert far.add_frame(object_depth(views[0]), views[0].camera, views[0].c2w) == 0
    assert far.frame_count == 0
    assert far.extract_mesh().triangle_count == 0


def test_model_grows_frame_by_frame_and_can_be_read_while_frames_arrive(orbit):
    fusion = TSDFFusion(preset("object", min_weight=1.0))
    counts = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def viewer() -> None:  # a GUI thread showing the growing model
        try:
            while not stop.is_set():
                fusion.extract_points()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=viewer)
    thread.start()
    try:
        for i, v in enumerate(orbit[:12]):
            fusion.add_frame(object_depth(v), v.camera, v.c2w)
            if i % 4 == 3:
                counts.append(fusion.extract_mesh().triangle_count)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert fusion.frame_count == 12
    assert counts[0] > 0 and counts[-1] > counts[0]


def test_colour_is_carried_to_vertices(orbit):
    views = orbit[:12]
    fusion = fuse([v for v in views], preset("object", min_weight=1.0))
    assert fusion.extract_mesh().colors is None  # no frame brought colour
    coloured = TSDFFusion(preset("object", min_weight=1.0))
    for v in views:
        big = np.repeat(np.repeat(v.rgb, 2, axis=0), 2, axis=1)  # colour larger than depth
        coloured.add_frame(object_depth(v), v.camera, v.c2w, color=big)
    mesh = coloured.extract_mesh()
    assert mesh.colors is not None and mesh.colors.shape == (mesh.vertex_count, 3)
    # each vertex's colour resembles what the views saw there
    truth = np.concatenate([v.rgb[v.mask] for v in views]).astype(np.float64).mean(axis=0)
    assert np.abs(mesh.colors.astype(np.float64).mean(axis=0) - truth).max() < 25
    assert mesh.colors.std() > 5  # not one flat colour


def test_intrinsics_are_scaled_to_the_depth_map(orbit):
    # the camera describes a 4x larger colour image; the depth map is what was rendered
    v = orbit[0]
    big = v.camera.scaled(SIZE[0] * 4, SIZE[1] * 4)
    a = TSDFFusion(preset("object", min_weight=1.0))
    a.add_frame(object_depth(v), big, v.c2w)
    b = TSDFFusion(preset("object", min_weight=1.0))
    b.add_frame(object_depth(v), v.camera, v.c2w)
    pa, pb = a.extract_points().points, b.extract_points().points
    assert len(pa) == len(pb) and np.allclose(np.sort(pa, axis=0), np.sort(pb, axis=0), atol=1e-5)


# -- bad input: one InputError naming the frame and the field -----------------------------------

CAM = Camera(width=256, height=192, fx=200.0, fy=200.0, cx=128.0, cy=96.0)
GOOD_DEPTH = np.full((192, 256), 1000, np.uint16)


def _rotated(angle: float) -> np.ndarray:
    c2w = np.eye(4)
    c2w[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    return c2w


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"depth": np.full((192, 256), 1.0, np.float64)}, "depth"),
        ({"depth": np.full((192, 256, 1), 1000, np.uint16)}, "depth"),
        ({"depth": np.full((100, 256), 1000, np.uint16)}, "depth"),  # wrong aspect for the camera
        ({"depth": [[1, 2], [3, 4]]}, "depth"),
        ({"camera": None}, "camera"),
        ({"camera": replace(CAM, fx=float("nan"))}, "camera"),
        ({"c2w": np.eye(3)}, "c2w"),
        ({"c2w": np.where(np.eye(4) > 0, np.nan, 0.0)}, "c2w"),
        ({"c2w": np.diag([2.0, 2.0, 2.0, 1.0])}, "c2w"),  # scaled
        ({"c2w": np.diag([1.0, 1.0, -1.0, 1.0])}, "c2w"),  # mirrored
        ({"c2w": _rotated(0.3) + np.array([[0, 0.1, 0, 0]] + [[0] * 4] * 3)}, "c2w"),  # sheared
        ({"c2w": np.vstack([np.eye(4)[:3], [0, 0, 1, 1]])}, "c2w"),
        ({"confidence": np.full((192, 256), 2, np.uint16)}, "confidence"),
        ({"confidence": np.full((96, 128), 2, np.uint8)}, "confidence"),
        ({"color": np.zeros((192, 256), np.uint8)}, "color"),
        ({"color": np.zeros((192, 256, 3), np.float32)}, "color"),
        ({"color": np.zeros((192, 192, 3), np.uint8)}, "color"),
        ({"depth_scale": 0.0}, "depth_scale"),
    ],
)
def test_bad_frame_raises_one_input_error_naming_frame_and_field(kwargs, field):
    fusion = TSDFFusion(preset("room"))
    args = {"depth": GOOD_DEPTH, "camera": CAM, "c2w": np.eye(4), **kwargs}
    with pytest.raises(InputError) as info:
        fusion.add_frame(frame="frame 000042", **args)
    assert info.value.where == "frame 000042"
    assert info.value.reason.startswith(field)
    assert fusion.frame_count == 0
    fusion.add_frame(GOOD_DEPTH, CAM, np.eye(4))  # the volume is still usable
    assert fusion.frame_count == 1


def test_unnamed_frame_is_named_by_its_index():
    fusion = TSDFFusion(preset("room"))
    fusion.add_frame(GOOD_DEPTH, CAM, np.eye(4))
    with pytest.raises(InputError, match="^frame 1: c2w"):
        fusion.add_frame(GOOD_DEPTH, CAM, np.full((4, 4), np.inf))


def test_nan_and_negative_float_depth_are_treated_as_missing():
    depth = np.full((192, 256), 1.0, np.float32)
    depth[:, :64] = np.nan
    depth[:, 64:128] = -1.0
    depth[:, 128:160] = np.inf
    fusion = TSDFFusion(preset("room"))
    assert fusion.add_frame(depth, CAM, np.eye(4)) == 192 * 96


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"voxel_size_m": 0.0}, "voxel_size_m"),
        ({"voxel_size_m": float("inf")}, "voxel_size_m"),
        ({"min_confidence": 3}, "min_confidence"),
        ({"min_depth_m": 6.0}, "min_depth_m"),
        ({"min_weight": -1.0}, "min_weight"),
        ({"block_resolution": 7}, "block_resolution"),
        ({"colour": True}, "colour"),
    ],
)
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError) as info:
        preset("room", **overrides)
    assert info.value.where == f"fusion.{field}"


def test_presets():
    with pytest.raises(ConfigError, match="fusion.preset"):
        preset("cathedral")
    assert preset("object").voxel_size_m == pytest.approx(0.004)
    assert preset("room").voxel_size_m == pytest.approx(0.02)
    assert preset("room", voxel_size_m=0.05).trunc_m == pytest.approx(0.2)


PROMPTDA = Path(__file__).resolve().parents[3] / "shared" / "data" / "promptda-arkit-frame"
if not PROMPTDA.is_dir():
    PROMPTDA = Path("/work/shared/data/promptda-arkit-frame")


@pytest.mark.skipif(not PROMPTDA.is_dir(), reason="shared PromptDA frame not present")
def test_real_iphone_frame_colours_vertices_from_the_full_size_image():
    # One real ARKit frame: 1920x1440 JPEG, 256x192 LiDAR depth in mm. Its intrinsics were not
    # published, so a typical iPhone wide camera's are assumed; colour and depth are projected
    # with the same camera, so what is checked (registration of the two) does not depend on it.
    rgb = cv2.cvtColor(cv2.imread(str(PROMPTDA / "image.jpg")), cv2.COLOR_BGR2RGB)
    depth = cv2.imread(str(PROMPTDA / "arkit_depth.png"), cv2.IMREAD_UNCHANGED)
    camera = Camera(width=1920, height=1440, fx=1350.0, fy=1350.0, cx=960.0, cy=720.0)
    fusion = TSDFFusion(preset("room", voxel_size_m=0.01, min_weight=1.0))
    assert fusion.add_frame(depth, camera, np.eye(4), color=rgb) == depth.size
    mesh = fusion.extract_mesh()
    assert mesh.triangle_count > 10_000 and mesh.colors is not None
    z = mesh.vertices[:, 2].astype(np.float64)
    assert 1.4 < np.percentile(z, 1) and np.percentile(z, 99) < 3.6  # the depth map spans 1.57-3.51 m
    # a vertex's colour is the (blurred) image colour where it projects
    u = np.clip((camera.fx * mesh.vertices[:, 0] / z + camera.cx).astype(int), 0, 1919)
    v = np.clip((camera.fy * mesh.vertices[:, 1] / z + camera.cy).astype(int), 0, 1439)
    blurred = cv2.blur(rgb, (15, 15)).astype(np.int16)
    diff = np.abs(blurred[v, u] - mesh.colors.astype(np.int16)).max(axis=1)
    assert np.median(diff) < 20
    shuffled = np.abs(blurred[v, u] - np.roll(mesh.colors, 5000, axis=0).astype(np.int16)).max(axis=1)
    assert np.median(shuffled) > np.median(diff) + 10  # the check can tell right colours from wrong


def test_min_weight_counts_the_frames_that_saw_a_voxel():
    def triangles(frames: int, min_weight: float) -> int:
        fusion = TSDFFusion(preset("room", min_weight=min_weight))
        for _ in range(frames):
            fusion.add_frame(GOOD_DEPTH, CAM, np.eye(4))
        return fusion.extract_mesh().triangle_count

    assert triangles(1, 1.0) > 0
    assert triangles(1, 2.0) == 0
    assert triangles(2, 2.0) > 0
