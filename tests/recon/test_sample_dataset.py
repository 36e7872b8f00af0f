"""Writing rendered views as a nerfstudio dataset, and the bundled sample built from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.errors import InputError, NotFoundError
from recon.sample import (
    bundled_sample_dir,
    distance_to_object,
    render_orbit,
    render_view,
    write_capture_folder,
)
from recon.sample.build import DEFAULT_ELEVATIONS, DEFAULT_SIZE, DEFAULT_VIEWS, build_sample
from recon.sample.dataset import depth_to_mm, opencv_to_opengl
from recon.sample.paths import bundled_sample_root
from recon.sample.scene import make_camera, orbit_poses


@pytest.fixture(scope="module")
def small_views():
    return render_orbit(3, (96, 72))


def test_writes_a_nerfstudio_dataset_that_round_trips(tmp_path, small_views):
    out = write_capture_folder(small_views, tmp_path / "ds", with_depth=True, image_format="png")
    assert out == tmp_path / "ds"
    data = json.loads((out / "transforms.json").read_text())
    cam = small_views[0].camera
    assert (data["w"], data["h"], data["fl_x"], data["cx"]) == (cam.width, cam.height, cam.fx, cam.cx)
    assert len(data["frames"]) == 3
    assert data["scale"] == "metric"
    for view, frame in zip(small_views, data["frames"], strict=True):
        # OpenGL pose back to OpenCV: the same map undoes itself.
        pose = opencv_to_opengl(np.array(frame["transform_matrix"]))
        np.testing.assert_allclose(pose, view.c2w, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(Image.open(out / frame["file_path"])), view.rgb)
        depth_mm = np.asarray(Image.open(out / frame["depth_file_path"]))
        assert depth_mm.dtype == np.uint16
        assert np.abs(depth_mm / 1000.0 - view.depth_m).max() <= 0.0005 + 1e-7
        mask = np.asarray(Image.open(out / frame["mask_path"]))
        np.testing.assert_array_equal(mask > 0, view.mask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no staging left behind


def test_without_depth_names_no_depth(tmp_path, small_views):
    out = write_capture_folder(small_views[:1], tmp_path / "ds", with_depth=False)
    frame = json.loads((out / "transforms.json").read_text())["frames"][0]
    assert "depth_file_path" not in frame and not (out / "depth").exists()
    assert frame["file_path"].endswith(".jpg")


def test_depth_at_a_phone_lidar_size(tmp_path, small_views):
    out = write_capture_folder(small_views[:2], tmp_path / "ds", with_depth=True, depth_size=(32, 24))
    frame = json.loads((out / "transforms.json").read_text())["frames"][1]
    depth = np.asarray(Image.open(out / frame["depth_file_path"]))
    assert depth.shape == (24, 32)
    # Unprojected with the intrinsics scaled to its size, it lies on the object or the ground.
    cam = small_views[1].camera.scaled(32, 24)
    c2w = small_views[1].c2w
    rows, cols = np.nonzero(depth)
    z = depth[rows, cols] / 1000.0
    pc = np.stack([(cols + 0.5 - cam.cx) / cam.fx * z, (rows + 0.5 - cam.cy) / cam.fy * z, z], axis=1)
    world = pc @ c2w[:3, :3].T + c2w[:3, 3]
    on_surface = (distance_to_object(world) < 1e-3) | (np.abs(world[:, 1]) < 1e-3)
    assert on_surface.all() and len(z) > 0.3 * depth.size


def test_opengl_pose_looks_down_minus_z():
    c2w = orbit_poses(1)[0]
    gl = opencv_to_opengl(c2w)
    np.testing.assert_allclose(gl[:3, 2], -c2w[:3, 2])  # OpenGL cameras look along -z
    np.testing.assert_allclose(gl[:3, 1], -c2w[:3, 1])  # and have y up


def test_depth_to_mm_drops_what_does_not_fit():
    mm = depth_to_mm(np.array([[0.0, 0.0004, 0.0006, 1.2346, 65.535, 70.0, np.nan, np.inf]], np.float32))
    assert mm.tolist() == [[0, 0, 1, 1235, 65535, 0, 0, 0]]


def test_refuses_to_overwrite_and_leaves_existing_content(tmp_path, small_views):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError) as err:
        write_capture_folder(small_views, out, with_depth=True)
    assert str(out) in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize(
    "kwargs, word",
    [(dict(image_format="bmp"), "image format"), (dict(views=[]), "no views"),
     (dict(depth_size=(0, 10)), "depth size")],
)
def test_bad_arguments_are_one_clear_error(tmp_path, small_views, kwargs, word):
    args = dict(views=small_views, image_format="png")
    args.update(kwargs)
    with pytest.raises(InputError, match=word):
        write_capture_folder(args.pop("views"), tmp_path / "ds", with_depth=True, **args)
    assert not any(tmp_path.iterdir())


def test_views_with_different_cameras_are_refused(tmp_path):
    poses = orbit_poses(2)
    views = [render_view(make_camera((32, 24)), poses[0]), render_view(make_camera((40, 30)), poses[1])]
    with pytest.raises(InputError, match="one camera"):
        write_capture_folder(views, tmp_path / "ds", with_depth=True)
    assert not any(tmp_path.iterdir())


def test_a_failure_midway_leaves_nothing(tmp_path, small_views, monkeypatch):
    import recon.sample.dataset as dataset

    def broken(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(dataset, "depth_to_mm", broken)
    with pytest.raises(OSError):
        write_capture_folder(small_views, tmp_path / "ds", with_depth=True)
    assert not any(tmp_path.iterdir())


def test_bundled_sample_is_complete_and_small():
    root = bundled_sample_dir()
    assert (bundled_sample_root() / "README.md").is_file()
    data = json.loads((root / "transforms.json").read_text())
    assert len(data["frames"]) == DEFAULT_VIEWS
    assert (data["w"], data["h"]) == DEFAULT_SIZE
    for frame in data["frames"]:
        for key in ("file_path", "depth_file_path", "mask_path"):
            assert (root / frame[key]).is_file(), frame[key]
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total < 4_000_000


def test_bundled_sample_matches_the_renderer():
    """The committed files are what the build script makes now (regenerate after scene changes)."""
    root = bundled_sample_dir()
    data = json.loads((root / "transforms.json").read_text())
    poses = orbit_poses(DEFAULT_VIEWS, DEFAULT_ELEVATIONS)
    for i in (0, DEFAULT_VIEWS - 1):
        frame = data["frames"][i]
        pose = opencv_to_opengl(np.array(frame["transform_matrix"]))
        np.testing.assert_allclose(pose, poses[i], atol=1e-12)
        view = render_view(make_camera(DEFAULT_SIZE), poses[i])
        stored = np.asarray(Image.open(root / frame["depth_file_path"]))
        np.testing.assert_array_equal(stored, depth_to_mm(view.depth_m))
        photo = np.asarray(Image.open(root / frame["file_path"])).astype(int)
        assert np.abs(photo - view.rgb).mean() < 4  # JPEG quality 90


def test_missing_bundled_sample_is_reported(tmp_path, monkeypatch):
    import recon.sample.paths as paths

    monkeypatch.setattr(paths, "bundled_sample_root", lambda: tmp_path)
    with pytest.raises(NotFoundError, match="recon.sample.build"):
        paths.bundled_sample_dir()


def test_build_replaces_an_old_sample(tmp_path):
    out = tmp_path / "sample"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    build_sample(out, 2, (64, 48))
    assert not (out / "stale.txt").exists()
    assert len(json.loads((out / "transforms.json").read_text())["frames"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]
