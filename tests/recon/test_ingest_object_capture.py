"""Apple Object Capture folders: HEIC photos with *_depth.TIF (float metres) and *_gravity.TXT
(Core Motion gravity, device frame) beside them. Depth files are never photos, depth is kept in
millimetres (turned with a portrait photo), gravity lands in the upright camera frame, and gives
the world's up once the frames have poses."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from test_ingest_photo_maps import _heic

from core.errors import IngestError
from core.workspace import Workspace
from recon.ingest import ingest
from recon.ingest.depth import read_raw_map
from recon.ingest.object_capture import up_from_gravity
from recon.sample.scene import look_at

PITCH = math.radians(30)
# Physical set-ups, written in the device frame (x right of the screen, y its top, z out of it):
LANDSCAPE_LEVEL = (-1.0, 0.0, 0.0)  # sensor orientation (top to the left): gravity along -x
LANDSCAPE_PITCHED = (-math.cos(PITCH), 0.0, -math.sin(PITCH))  # the camera looks 30 degrees down
PORTRAIT_LEVEL = (0.0, -1.0, 0.0)  # held upright: gravity along -y


def _depth(width: int, height: int) -> np.ndarray:
    """Metres, with a distinct value in each corner so a turn shows."""
    d = np.full((height, width), 0.5, np.float32)
    d[0, 0], d[0, -1], d[-1, 0] = 0.3, 0.7, 0.9
    return d


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "ObjectCapture"
    shots = [(LANDSCAPE_LEVEL, 1), (LANDSCAPE_PITCHED, 1), (PORTRAIT_LEVEL, 6)]
    for i, (gravity, orientation) in enumerate(shots):
        _heic(src / f"IMG_{i:04d}.HEIC", 80, 60, focal_35mm=26, seed=i, orientation=orientation)
        assert cv2.imwrite(str(src / f"IMG_{i:04d}_depth.TIF"), _depth(40, 30))  # as the sensor stores it
        (src / f"IMG_{i:04d}_gravity.TXT").write_text(",".join(f"{g:.6f}" for g in gravity) + "\n")
    return src


def test_photos_depth_and_gravity_are_read(folder, tmp_path):
    capture = ingest(folder, Workspace(tmp_path / "ws"))
    manifest = capture.load()
    assert manifest.source["kind"] == "object-capture"
    assert [f.source_name for f in manifest.frames] == ["IMG_0000.HEIC", "IMG_0001.HEIC", "IMG_0002.HEIC"]
    for frame in manifest.frames:
        assert frame.depth is not None and frame.depth_scale == 0.001
    level = read_raw_map(capture.path(manifest.frames[0].depth))
    np.testing.assert_array_equal(level, np.rint(_depth(40, 30) * 1000).astype(np.uint16))
    # The portrait photo was turned 90 degrees clockwise to stand upright; so was its depth.
    portrait = read_raw_map(capture.path(manifest.frames[2].depth))
    assert portrait.shape == (40, 30) and manifest.frames[2].camera.width == 60
    assert (portrait[0, -1], portrait[-1, -1], portrait[0, 0]) == (300, 700, 900)

    # Gravity in the upright OpenCV camera frame (x right, y down, z forward).
    gravity = manifest.source["gravity"]
    np.testing.assert_allclose(gravity["000000"], [0, 1, 0], atol=1e-6)  # level: straight down the image
    np.testing.assert_allclose(gravity["000001"], [0, math.cos(PITCH), math.sin(PITCH)], atol=1e-6)
    np.testing.assert_allclose(gravity["000002"], [0, 1, 0], atol=1e-6)


def test_gravity_gives_the_worlds_up_once_frames_have_poses():
    rng = np.random.default_rng(4)
    world_up = np.array([0.3, 0.9, -0.2])
    world_up /= np.linalg.norm(world_up)
    c2ws, gravity = {}, {}
    for i in range(6):
        eye = rng.normal(size=3) * 2
        c2w = look_at(eye, np.zeros(3), up=world_up)  # any roll: the camera's own up is not used
        roll = cv2.Rodrigues(c2w[:3, 2] * rng.uniform(-0.5, 0.5))[0]
        c2w[:3, :3] = roll @ c2w[:3, :3]
        c2ws[str(i)] = c2w
        gravity[str(i)] = list(c2w[:3, :3].T @ -world_up)  # what the phone measured, in its camera frame
    np.testing.assert_allclose(up_from_gravity(c2ws, gravity), world_up, atol=1e-9)
    assert up_from_gravity(c2ws, {}) is None


@pytest.mark.parametrize(("name", "text"), [
    ("IMG_0001_gravity.TXT", "nan,0,1"),
    ("IMG_0001_gravity.TXT", "1e400,0,0"),
    ("IMG_0001_gravity.TXT", "0,0"),
    ("IMG_0001_gravity.TXT", "0,0,9.8"),  # m/s^2, not g
])
def test_bad_gravity_is_one_error_naming_the_file(folder, tmp_path, name, text):
    (folder / name).write_text(text)
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(IngestError) as e:
        ingest(folder, ws)
    assert name in str(e.value)
    assert ws.captures() == []


def test_depth_of_another_shape_or_not_float_is_refused(folder, tmp_path):
    assert cv2.imwrite(str(folder / "IMG_0001_depth.TIF"), np.zeros((30, 30), np.float32))
    with pytest.raises(IngestError, match="IMG_0001_depth.TIF"):
        ingest(folder, Workspace(tmp_path / "ws"))
    assert cv2.imwrite(str(folder / "IMG_0001_depth.TIF"), np.zeros((30, 40), np.uint16))
    with pytest.raises(IngestError, match="float"):
        ingest(folder, Workspace(tmp_path / "ws2"))


def test_the_mesh_stage_takes_up_from_gravity_only_when_left_to_auto():
    from recon.ingest.object_capture import gravity_up

    c2w = look_at(np.array([1.0, 1.0, 1.0]), np.zeros(3))  # world +y up
    source = {"kind": "object-capture", "gravity": {"a": list(c2w[:3, :3].T @ [0.0, -1.0, 0.0])}}
    np.testing.assert_allclose(gravity_up("auto", {"a": c2w}, source), [0, 1, 0], atol=1e-9)
    assert gravity_up("+z", {"a": c2w}, source) is None  # the user's choice wins
    assert gravity_up("auto", {"a": c2w}, {"kind": "images"}) is None
