"""Fusion of fisheye RGB-D frames: depth (nearest pixel) and colour are resampled to the pinhole
camera before integration, so a tilted plane at a known distance fuses flat and in place. The
fisheye depth map is drawn with this test's own inverse of COLMAP's fisheye model (Kannala-Brandt),
independent of OpenCV."""

from __future__ import annotations

import numpy as np

from core.capture import Camera
from recon.fusion.tsdf import TSDFFusion, preset
from recon.lens import undistort_depth

W, H = 480, 360
FX = FY = 340.0
CX, CY = 240.5, 179.5
K1_4 = (0.06, -0.02, 0.008, -0.002)
TILT = np.radians(35.0)
NORMAL = np.array([np.sin(TILT), 0.0, np.cos(TILT)])  # the plane n . X = DISTANCE, camera frame
DISTANCE = 0.8  # metres from the camera centre to the plane


def _undistort_theta(theta_d: np.ndarray) -> np.ndarray:
    """Solve theta (1 + k1 t^2 + k2 t^4 + k3 t^6 + k4 t^8) = theta_d by Newton's method."""
    theta = theta_d.copy()
    for _ in range(30):
        t2 = theta * theta
        poly = 1 + sum(k * t2 ** (i + 1) for i, k in enumerate(K1_4))
        dpoly = 1 + sum((2 * i + 3) * k * t2 ** (i + 1) for i, k in enumerate(K1_4))
        theta = theta - (theta * poly - theta_d) / dpoly
    return theta


def fisheye_plane_depth() -> np.ndarray:
    """(H, W) z-depth in metres of the tilted plane seen through the fisheye lens (0 = misses)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64) + 0.5  # COLMAP pixel centres
    xd, yd = (u - CX) / FX, (v - CY) / FY
    theta_d = np.hypot(xd, yd)
    theta = _undistort_theta(theta_d)
    scale = np.where(theta_d > 1e-12, np.tan(theta) / np.maximum(theta_d, 1e-12), 1.0)
    a, b = xd * scale, yd * scale  # the pixel's ray is (a, b, 1)
    denom = NORMAL[0] * a + NORMAL[1] * b + NORMAL[2]
    z = np.where((denom > 0.1) & (theta < np.radians(65)), DISTANCE / np.maximum(denom, 1e-9), 0.0)
    return z.astype(np.float32)


def _fused_points(camera: Camera) -> np.ndarray:
    fusion = TSDFFusion(preset("object", min_weight=1.0, max_depth_m=3.0, refine_iterations=0))
    rgb = np.random.default_rng(0).integers(0, 255, (H * 2, W * 2, 3), dtype=np.uint8)
    assert fusion.add_frame(fisheye_plane_depth(), camera, np.eye(4), color=rgb, frame="fisheye") > 0
    return fusion.extract_points().points.astype(np.float64)


def test_fisheye_frame_fuses_onto_the_plane():
    camera = Camera(W, H, FX, FY, CX, CY, model="OPENCV_FISHEYE", distortion=K1_4)
    points = _fused_points(camera)
    assert len(points) > 2000
    off_plane = np.abs(points @ NORMAL - DISTANCE)
    assert off_plane.max() < 0.002
    # The fused plane spans the pinhole view's field, not only its centre.
    assert np.ptp(points[:, 0]) > 0.6


def test_depth_is_never_blended_across_an_edge():
    camera = Camera(W, H, FX, FY, CX, CY, model="OPENCV_FISHEYE", distortion=K1_4)
    depth = np.full((H, W), 1.0, np.float32)
    depth[:, : W // 3] = 0.5  # a near object's edge
    depth[H // 2:, W // 2:] = 0.0  # a hole: no return
    out = undistort_depth(depth, camera)
    assert set(np.unique(out)) <= {0.0, 0.5, 1.0}
    assert (out == 0.5).sum() > 1000 and (out == 1.0).sum() > 1000
    # A smooth ramp is interpolated: each pinhole pixel gets the ramp's value where its ray meets
    # the fisheye image (this test's own projection); nearest pixels would be off by up to half a step.
    ramp = np.tile(np.linspace(0.5, 1.5, W, dtype=np.float32), (H, 1))  # value = 0.5 + column / (W - 1)
    out = undistort_depth(ramp, camera)
    v, u = np.mgrid[H // 2 - 20: H // 2 + 20, W // 2 - 80: W // 2 + 80].astype(np.float64) + 0.5
    a, b = (u - CX) / FX, (v - CY) / FY
    r = np.hypot(a, b)
    theta = np.arctan(r)
    theta_d = theta * (1 + sum(k * theta ** (2 * (i + 1)) for i, k in enumerate(K1_4)))
    column = FX * a * np.where(r > 1e-12, theta_d / np.maximum(r, 1e-12), 1.0) + CX - 0.5
    expected = 0.5 + column / (W - 1)
    got = out[H // 2 - 20: H // 2 + 20, W // 2 - 80: W // 2 + 80]
    assert np.abs(got - expected).max() < 2e-4  # half a step of nearest sampling is 1e-3
