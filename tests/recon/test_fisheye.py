"""Fisheye cameras (COLMAP OPENCV_FISHEYE, SIMPLE_RADIAL_FISHEYE, RADIAL_FISHEYE; nerfstudio
OPENCV_FISHEYE): read, kept in the frame's intrinsics, and undistorted to pinhole for the stages
that need it. The synthetic fisheye view is drawn with this test's own projection (Kannala-Brandt,
as COLMAP documents it), independent of OpenCV."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from core.errors import IngestError
from core.workspace import Workspace
from recon.ingest import ingest
from recon.posed import load_posed_frames, read_rgb_undistorted

W, H = 320, 240
FX, FY, CX, CY = 150.0, 148.0, 161.0, 119.0
K1_4 = (0.08, -0.02, 0.01, -0.003)
# Points in the camera frame (identity pose: world = camera), spread from the centre to the edges.
POINTS = np.array([[0.0, 0.0, 1.0], [0.4, 0.2, 1.0], [-0.5, 0.3, 1.1], [0.55, -0.4, 1.0],
                   [-0.6, -0.45, 1.2], [0.2, 0.55, 1.0]])


def fisheye_pixels(points: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                   k: tuple[float, ...]) -> np.ndarray:
    """COLMAP's fisheye projection: theta_d = theta (1 + k1 t^2 + k2 t^4 + ...), image points with
    pixel centres at +0.5; returned in array coordinates (column, row)."""
    a, b = points[:, 0] / points[:, 2], points[:, 1] / points[:, 2]
    r = np.hypot(a, b)
    theta = np.arctan(r)
    theta_d = theta * (1 + sum(ki * theta ** (2 * (i + 1)) for i, ki in enumerate(k)))
    scale = np.where(r > 1e-12, theta_d / np.maximum(r, 1e-12), 1.0)
    return np.column_stack([fx * a * scale + cx - 0.5, fy * b * scale + cy - 0.5])


def pinhole_pixels(points: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.column_stack([fx * points[:, 0] / points[:, 2] + cx - 0.5,
                            fy * points[:, 1] / points[:, 2] + cy - 0.5])


def draw_dots(pixels: np.ndarray) -> np.ndarray:
    """A dark image with a small Gaussian dot (sigma 1.2 px) at each sub-pixel position."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    image = np.zeros((H, W), np.float64)
    for u, v in pixels:
        image += np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.2**2))
    grey = np.clip(image * 255, 0, 255).astype(np.uint8)
    return np.dstack([grey, grey, grey])


def dot_centres(rgb: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    """Intensity-weighted centroid of the dot near each expected position."""
    grey = rgb[..., 0].astype(np.float64)
    out = []
    for u, v in near:
        x0, y0 = int(round(u)) - radius, int(round(v)) - radius
        patch = grey[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
        patch = np.where(patch > 0.2 * patch.max(), patch, 0.0)
        ys, xs = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
        out.append([x0 + (xs * patch).sum() / patch.sum(), y0 + (ys * patch).sum() / patch.sum()])
    return np.array(out)


def _colmap_folder(root, model: str, params: list[float], k: tuple[float, ...]):
    (root / "images").mkdir(parents=True)
    (root / "sparse" / "0").mkdir(parents=True)
    fx, fy = params[0], params[1] if model == "OPENCV_FISHEYE" else params[0]
    cv2.imwrite(str(root / "images" / "view.png"), draw_dots(fisheye_pixels(POINTS, fx, fy, CX, CY, k)))
    sparse = root / "sparse" / "0"
    (sparse / "cameras.txt").write_text(f"1 {model} {W} {H} {' '.join(map(str, params))}\n")
    (sparse / "images.txt").write_text("1 1 0 0 0 0 0 0 1 view.png\n\n")
    (sparse / "points3D.txt").write_text("")
    return root


@pytest.mark.parametrize(("model", "params", "k"), [
    ("OPENCV_FISHEYE", [FX, FY, CX, CY, *K1_4], K1_4),
    ("SIMPLE_RADIAL_FISHEYE", [FX, CX, CY, 0.07], (0.07,)),
    ("RADIAL_FISHEYE", [FX, CX, CY, 0.07, -0.02], (0.07, -0.02)),
])
def test_colmap_fisheye_is_read_and_undistorted_to_pinhole(tmp_path, model, params, k):
    src = _colmap_folder(tmp_path / "src", model, params, k)
    capture = ingest(src, Workspace(tmp_path / "ws"))
    (frame,) = capture.load().frames
    assert frame.camera.model == "OPENCV_FISHEYE"
    assert frame.camera.distortion == pytest.approx((*k, 0.0, 0.0, 0.0)[:4])
    fx, fy = (FX, FY) if model == "OPENCV_FISHEYE" else (FX, FX)
    _check_undistorted(capture, fx, fy)


def _check_undistorted(capture, fx: float, fy: float) -> None:
    (posed,) = load_posed_frames(capture, None)
    rgb, cam = read_rgb_undistorted(posed)
    assert cam.model == "PINHOLE" and not cam.distortion
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == pytest.approx((fx, fy, CX, CY))
    expected = pinhole_pixels(POINTS, cam.fx, cam.fy, cam.cx, cam.cy)
    found = dot_centres(rgb, expected)
    error = np.linalg.norm(found - expected, axis=1)
    assert error.max() < 0.35, error
    # Without undistortion the off-centre dots would be pixels away (the test is sensitive).
    raw = cv2.imread(str(posed.image))[..., ::-1]
    assert np.linalg.norm(dot_centres(raw, expected, radius=12) - expected, axis=1).max() > 3


def test_nerfstudio_opencv_fisheye_is_read_and_undistorted(tmp_path):
    src = tmp_path / "ns"
    src.mkdir()
    cv2.imwrite(str(src / "view.png"), draw_dots(fisheye_pixels(POINTS, FX, FY, CX, CY, K1_4)))
    opengl_identity = np.diag([1.0, -1.0, -1.0, 1.0]).tolist()  # OpenCV identity: looking down +z
    (src / "transforms.json").write_text(json.dumps({
        "camera_model": "OPENCV_FISHEYE", "w": W, "h": H, "fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY,
        "k1": K1_4[0], "k2": K1_4[1], "k3": K1_4[2], "k4": K1_4[3],
        "frames": [{"file_path": "view.png", "transform_matrix": opengl_identity}],
    }))
    capture = ingest(src / "transforms.json", Workspace(tmp_path / "ws"))
    (frame,) = capture.load().frames
    assert frame.camera.model == "OPENCV_FISHEYE" and frame.camera.distortion == pytest.approx(K1_4)
    _check_undistorted(capture, FX, FY)


def test_nerfstudio_fisheye_refuses_tangential_terms(tmp_path):
    src = tmp_path / "ns"
    src.mkdir()
    cv2.imwrite(str(src / "view.png"), np.zeros((H, W, 3), np.uint8))
    (src / "transforms.json").write_text(json.dumps({
        "camera_model": "OPENCV_FISHEYE", "w": W, "h": H, "fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY,
        "k1": 0.1, "p1": 0.01, "frames": [{"file_path": "view.png", "transform_matrix": np.eye(4).tolist()}],
    }))
    with pytest.raises(IngestError, match="p1"):
        ingest(src / "transforms.json", Workspace(tmp_path / "ws"))


def test_our_model_matches_colmaps_own_fisheye_projection():
    """The test's projection is COLMAP's (pycolmap), so the expectations above are COLMAP's too."""
    import pycolmap

    cam = pycolmap.Camera.create_from_model_name(1, "OPENCV_FISHEYE", FX, W, H)
    cam.params = [FX, FY, CX, CY, *K1_4]
    theirs = np.array(cam.img_from_cam(POINTS))
    ours = fisheye_pixels(POINTS, FX, FY, CX, CY, K1_4) + 0.5
    assert np.abs(theirs - ours).max() < 1e-6


def test_fisheye_goes_to_sfm_and_back_to_transforms_json_unchanged():
    """SfM gets COLMAP's own fisheye model, and the poses stage's transforms.json / poses.json
    camera (nerfstudio's OPENCV_FISHEYE keys) reads back as the same camera."""
    from core.capture import Camera
    from recon.posed import camera_from_nerfstudio
    from recon.poses.features import colmap_camera
    from recon.poses.outputs import camera_json

    camera = Camera(W, H, FX, FY, CX, CY, model="OPENCV_FISHEYE", distortion=K1_4)
    sfm = colmap_camera(camera, prior_focal=True, for_sfm=True)
    assert sfm.model.name == "OPENCV_FISHEYE"
    written = camera_json(sfm)
    assert written["camera_model"] == "OPENCV_FISHEYE"
    assert [written[k] for k in ("k1", "k2", "k3", "k4")] == pytest.approx(K1_4)
    assert camera_from_nerfstudio(written, "test") == camera
