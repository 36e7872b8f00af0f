"""The undistorted PINHOLE COLMAP export (`scanbridge poses --colmap DIR`): a model with a fisheye
and a radial camera, drawn by this test's own lens models, comes back through pycolmap with every
camera PINHOLE, and each known 3D point lands, by a plain pinhole projection, both on its stored
observation and on its dot in the resampled image."""

from __future__ import annotations

import cv2
import numpy as np
import pycolmap
import pytest
from scipy.spatial.transform import Rotation
from test_fisheye import CX, CY, FX, FY, K1_4, H, W, dot_centres, draw_dots, fisheye_pixels

from core.errors import InputError
from recon.poses.colmap_export import export_undistorted_colmap

RADIAL_F, RADIAL_K = 170.0, -0.12
WORLD = np.array([[0.0, 0.0, 2.0], [0.5, 0.3, 2.1], [-0.6, 0.35, 2.3], [0.55, -0.45, 1.9],
                  [-0.5, -0.4, 2.2], [0.15, 0.5, 2.0]])


def radial_pixels(points: np.ndarray) -> np.ndarray:
    """COLMAP's SIMPLE_RADIAL: u = f x (1 + k r^2) + cx, in array coordinates."""
    x, y = points[:, 0] / points[:, 2], points[:, 1] / points[:, 2]
    d = 1 + RADIAL_K * (x * x + y * y)
    return np.column_stack([RADIAL_F * x * d + CX - 0.5, RADIAL_F * y * d + CY - 0.5])


def _pose(angle_deg: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera rotation and translation: a turn about y and a step along x."""
    rot = Rotation.from_euler("y", angle_deg, degrees=True).as_matrix()
    return rot, np.array([shift, 0.0, 0.0])


VIEWS = [  # (name, camera id, pose)
    ("images/000000.png", 1, _pose(0.0, 0.0)),
    ("images/000001.png", 1, _pose(6.0, -0.15)),
    ("images/000002.png", 2, _pose(-5.0, 0.12)),
]


@pytest.fixture
def poses_run(tmp_path):
    capture, run = tmp_path / "capture", tmp_path / "run"
    (capture / "images").mkdir(parents=True)
    model = pycolmap.Reconstruction()
    fisheye = pycolmap.Camera.create_from_model_name(1, "OPENCV_FISHEYE", FX, W, H)
    fisheye.params = [FX, FY, CX, CY, *K1_4]
    radial = pycolmap.Camera.create_from_model_name(2, "SIMPLE_RADIAL", RADIAL_F, W, H)
    radial.params = [RADIAL_F, CX, CY, RADIAL_K]
    for cam in (fisheye, radial):
        model.add_camera_with_trivial_rig(cam)
    for image_id, (name, camera_id, (rot, t)) in enumerate(VIEWS, start=1):
        in_camera = WORLD @ rot.T + t
        pixels = (fisheye_pixels(in_camera, FX, FY, CX, CY, K1_4) if camera_id == 1
                  else radial_pixels(in_camera))
        cv2.imwrite(str(capture / name), draw_dots(pixels))
        image = pycolmap.Image(image_id=image_id, name=name, camera_id=camera_id)
        image.points2D = pycolmap.Point2DList([pycolmap.Point2D(xy + 0.5) for xy in pixels])
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(rot), t)
        model.add_image_with_trivial_frame(image, pose)
    for idx, xyz in enumerate(WORLD):
        track = pycolmap.Track()
        for image_id in range(1, len(VIEWS) + 1):
            track.add_element(image_id, idx)
        model.add_point3D(xyz, track, np.zeros(3, np.uint8))
    (run / "sparse" / "0").mkdir(parents=True)
    model.write(str(run / "sparse" / "0"))
    return run, capture


def test_every_camera_is_pinhole_and_known_points_reproject(poses_run, tmp_path):
    run, capture = poses_run
    out = tmp_path / "for-3dgs"
    sparse = export_undistorted_colmap(run, capture, out)
    assert sparse == out / "sparse" / "0" and (sparse / "cameras.txt").is_file()
    model = pycolmap.Reconstruction(str(sparse))
    assert {cam.model.name for cam in model.cameras.values()} == {"PINHOLE"}
    assert model.num_points3D() == len(WORLD) and model.num_reg_images() == len(VIEWS)
    for image in model.images.values():
        cam = model.cameras[image.camera_id]
        fx, fy, cx, cy = cam.params
        rot = image.cam_from_world().rotation.matrix()
        t = image.cam_from_world().translation
        in_camera = WORLD @ rot.T + t
        expected = np.column_stack([fx * in_camera[:, 0] / in_camera[:, 2] + cx,
                                    fy * in_camera[:, 1] / in_camera[:, 2] + cy])  # COLMAP pixels
        stored = np.array([p.xy for p in image.points2D])
        assert np.abs(stored - expected).max() < 0.5
        pixels = cv2.imread(str(out / "images" / image.name))[..., ::-1]
        assert pixels.shape[:2] == (cam.height, cam.width)
        found = dot_centres(pixels, expected - 0.5)  # array coordinates
        assert np.linalg.norm(found - (expected - 0.5), axis=1).max() < 0.5, image.name
    assert sorted(p.name for p in (out / "images").iterdir()) == ["000000.png", "000001.png", "000002.png"]


def test_a_non_empty_target_is_refused_and_left_alone(poses_run, tmp_path):
    run, capture = poses_run
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="busy"):
        export_undistorted_colmap(run, capture, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
