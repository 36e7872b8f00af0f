"""Import -> poses stage -> its transforms.json exported as a dataset folder -> import again keeps
the scale and every frame (poses, depth, which frames have pictures), for an RGB-D, a photo and a
depth-only capture; nerfstudio's own dataparser loads each of those transforms.json files.
Also: a nerfstudio dataset whose metric depth agrees with its poses becomes metric RGB-D; one whose
poses are 1.3x off gets one warning."""

import json

import cv2
import numpy as np
import pytest
from app_exports_kit import GL_TO_CV, jpeg_bytes, orbit, png16, write_colmap, write_polycam
from test_ingest_support import STRAY, Recorder

from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest
from recon.poses.dataset_export import export_nerfstudio_dataset


@pytest.fixture(scope="module")
def views():
    return orbit(6)


def _source(kind, tmp_path, views):
    if kind == "rgbd":
        return write_polycam(tmp_path / "polycam", views), {}
    if kind == "photo":
        return write_colmap(tmp_path / "colmap", views), {}
    return STRAY, {"target_frames": 5}  # depth only: no rgb.mp4


def _depth_m(cap, frame):
    raw = cv2.imread(str(cap.root / frame.depth), cv2.IMREAD_UNCHANGED)
    return raw.astype(np.float64) * frame.depth_scale


@pytest.mark.parametrize("kind", ["rgbd", "photo", "depth-only"])
def test_import_export_import_keeps_scale_and_every_frame(tmp_path, views, kind):
    src, options = _source(kind, tmp_path, views)
    ws = Workspace(tmp_path / "ws")
    first = ingest(src, ws, **options)
    before = first.load()
    outcome = execute_stage(first, "poses", {"matcher": "exhaustive"})
    transforms_path = export_nerfstudio_dataset(outcome.run_dir, first.root, tmp_path / "exported")
    second = ingest(transforms_path, ws)
    after = second.load()
    assert after.scale == before.scale == ("unscaled" if kind == "photo" else "metric")
    assert len(after.frames) == len(before.frames)
    for a, b in zip(before.frames, after.frames, strict=True):
        np.testing.assert_allclose(np.asarray(b.pose), np.asarray(a.pose), atol=1e-9)
        assert (a.image is None) == (b.image is None)
        assert (a.depth is None) == (b.depth is None)
        if a.depth:
            np.testing.assert_allclose(_depth_m(second, b), _depth_m(first, a), atol=1e-9)
        assert (b.camera.fx, b.camera.width) == pytest.approx((a.camera.fx, a.camera.width))

    # nerfstudio's own dataparser reads the same file: every frame, depth where there is depth.
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    parser = NerfstudioDataParserConfig(data=transforms_path, eval_mode="all", load_3D_points=False).setup()
    outputs = parser.get_dataparser_outputs("train")
    assert len(outputs.image_filenames) == len(before.frames)
    assert all(p.is_file() for p in outputs.image_filenames)
    depth_files = outputs.metadata.get("depth_filenames")
    assert (depth_files is not None) == (kind != "photo")
    if depth_files is not None:
        assert len(depth_files) == len(before.frames) and all(p.is_file() for p in depth_files)


def _nerfstudio_with_depth(root, views, pose_scale):
    """A dataset as nerfstudio's Record3D/Polycam processing writes it: metric depth in mm PNGs,
    depth_unit_scale_factor, poses (times ``pose_scale``), and no word on the scale. Like a
    phone's, the depth has 1 % noise and each position is off by about 2 mm (seeded)."""
    rng = np.random.default_rng(7)
    (root / "images").mkdir(parents=True)
    (root / "depth").mkdir()
    frames = []
    for i, v in enumerate(views):
        (root / "images" / f"frame_{i:05d}.jpg").write_bytes(jpeg_bytes(v.rgb))
        noisy = v.depth_m * (1.0 + 0.01 * rng.standard_normal(v.depth_m.shape))
        (root / "depth" / f"frame_{i:05d}.png").write_bytes(png16(noisy))
        gl = v.c2w @ GL_TO_CV
        gl[:3, 3] = gl[:3, 3] * pose_scale + 0.002 * rng.standard_normal(3)
        frames.append({"file_path": f"images/frame_{i:05d}.jpg",
                       "depth_file_path": f"depth/frame_{i:05d}.png", "transform_matrix": gl.tolist()})
    cam = views[0].camera
    (root / "transforms.json").write_text(json.dumps({
        "fl_x": cam.fx, "fl_y": cam.fy, "cx": cam.cx, "cy": cam.cy, "w": cam.width, "h": cam.height,
        "camera_model": "OPENCV", "depth_unit_scale_factor": 1e-3, "frames": frames}))
    return root


@pytest.fixture(scope="module")
def dense_views():
    return orbit(24, depth_size=(128, 96), elevations_deg=(15.0, 35.0))  # a guided orbit: two rings


def test_nerfstudio_depth_that_agrees_with_the_poses_makes_metric_rgbd(tmp_path, dense_views):
    rec = Recorder()
    m = ingest(_nerfstudio_with_depth(tmp_path / "ns", dense_views, 1.0), Workspace(tmp_path / "ws"),
               progress=rec.progress()).load()
    assert (m.scale, m.mode) == ("metric", "rgbd")
    assert m.source["depth_check"]["verdict"] == "metric"
    assert m.source["depth_check"]["ratio"] == pytest.approx(1.0, abs=0.03)
    assert rec.warnings == []


def test_nerfstudio_depth_and_poses_that_disagree_warn_once_with_the_ratio(tmp_path, dense_views):
    rec = Recorder()
    m = ingest(_nerfstudio_with_depth(tmp_path / "ns", dense_views, 1.3), Workspace(tmp_path / "ws"),
               progress=rec.progress()).load()
    assert (m.scale, m.mode) == ("unscaled", "import")
    ratio = m.source["depth_check"]["ratio"]
    assert ratio == pytest.approx(1.3, abs=0.03)
    assert len(rec.warnings) == 1 and f"{ratio:.3f}x" in rec.warnings[0] and "disagree" in rec.warnings[0]


def test_poses_cli_writes_a_dataset_folder_that_reimports_metric(tmp_path, views):
    from core.cli import main

    src = write_polycam(tmp_path / "polycam", views)
    dataset = tmp_path / "for-nerfstudio"
    args = ["--workspace", str(tmp_path / "ws"), "poses", str(src), "-o", str(tmp_path / "t.json"),
            "--dataset", str(dataset)]
    assert main(args) == 0
    assert {p.name for p in dataset.iterdir()} >= {"transforms.json", "images", "depth", "sparse.ply"}
    m = ingest(dataset, Workspace(tmp_path / "ws2")).load()
    assert (m.scale, len(m.frames), all(f.depth for f in m.frames)) == ("metric", len(views), True)


def test_nerfstudio_depth_from_one_spot_cannot_show_the_scale_and_stays_unscaled(tmp_path):
    from app_exports_kit import View

    from recon.sample.scene import ORBIT_TARGET, ground_texture, look_at, make_camera, render_view

    camera, ground = make_camera((64, 48)), ground_texture(0)
    eye = np.array([0.0, 0.35, 0.6])
    views = []
    for dx in (-0.06, -0.03, 0.0, 0.03, 0.06):  # turning on the spot: no baseline at all
        c2w = look_at(eye, ORBIT_TARGET + np.array([dx, 0.0, 0.0]))
        rendered = render_view(camera, c2w, ground=ground)
        views.append(View(rendered.rgb, rendered.depth_m, camera, c2w))
    rec = Recorder()
    m = ingest(_nerfstudio_with_depth(tmp_path / "ns", views, 1.0), Workspace(tmp_path / "ws"),
               progress=rec.progress()).load()
    assert (m.scale, m.source["depth_check"]["verdict"]) == ("unscaled", "unknown")
    assert len(rec.warnings) == 1 and "could not check" in rec.warnings[0]
