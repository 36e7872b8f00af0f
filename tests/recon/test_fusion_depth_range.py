"""TSDF fusion's depth range on frames built by hand: flat walls at known distances.

One frame holds three bands: a wall nearer than ``min_depth_m``, one inside the range and one
past ``max_depth_m``. Only the middle band may be counted and fused, at its own distance.
"""

from __future__ import annotations

import numpy as np

from core.capture import Camera
from recon.fusion import TSDFFusion, preset

W, H = 240, 180
CAM = Camera(W, H, 200.0, 200.0, W / 2, H / 2)
NEAR_Z, IN_Z, FAR_Z = 0.05, 0.6, 2.5  # the "object" preset keeps 0.1 m .. 1.5 m


def banded_depth() -> tuple[np.ndarray, int]:
    """(H, W) float32 metres: left third too near, middle third in range, right third too far;
    and how many pixels are in range."""
    depth = np.empty((H, W), np.float32)
    depth[:, : W // 3] = NEAR_Z
    depth[:, W // 3: 2 * W // 3] = IN_Z
    depth[:, 2 * W // 3:] = FAR_Z
    return depth, H * (2 * W // 3 - W // 3)


def test_object_preset_range_is_what_this_test_assumes():
    cfg = preset("object")
    assert cfg.min_depth_m > NEAR_Z and cfg.min_depth_m < IN_Z < cfg.max_depth_m < FAR_Z


def test_only_the_in_range_band_of_a_partly_in_range_frame_is_fused():
    depth, in_range = banded_depth()
    fusion = TSDFFusion(preset("object", min_weight=1.0))
    assert fusion.add_frame(depth, CAM, np.eye(4)) == in_range
    points = fusion.extract_mesh().vertices.astype(np.float64)
    assert len(points) > 1000
    trunc = fusion.config.trunc_m
    # Every surface point is on the in-range wall (camera at the origin looking down +z) ...
    assert np.all(np.abs(points[:, 2] - IN_Z) < trunc)
    # ... inside the middle band's columns, seen from the pinhole: x / z * fx + cx.
    u = points[:, 0] / points[:, 2] * CAM.fx + CAM.cx
    assert u.min() > W // 3 - 2 and u.max() < 2 * W // 3 + 2
    # The near wall would have been fused at 5 cm, the far one at 2.5 m: neither is there.
    assert not np.any(points[:, 2] < IN_Z / 2) and not np.any(points[:, 2] > (IN_Z + FAR_Z) / 2)


def test_a_frame_entirely_past_the_far_limit_is_not_integrated():
    fusion = TSDFFusion(preset("object", min_weight=1.0))
    assert fusion.add_frame(np.full((H, W), FAR_Z, np.float32), CAM, np.eye(4)) == 0
    assert fusion.frame_count == 0
    assert fusion.extract_mesh().vertex_count == 0


def test_the_far_limit_itself_is_inside_the_range():
    cfg = preset("object", min_weight=1.0)
    depth = np.zeros((H, W), np.float32)
    depth[:, :10] = cfg.max_depth_m
    depth[:, 10:20] = np.nextafter(np.float32(cfg.max_depth_m), np.float32(np.inf))
    depth[:, 20:30] = cfg.min_depth_m
    depth[:, 30:40] = np.nextafter(np.float32(cfg.min_depth_m), np.float32(0))
    fusion = TSDFFusion(cfg)
    assert fusion.add_frame(depth, CAM, np.eye(4)) == H * 20  # both limits kept, just past them not


def test_uint16_millimetres_past_the_far_limit_are_dropped_too():
    depth_mm = np.full((H, W), 600, np.uint16)
    depth_mm[: H // 2] = 4000  # 4 m
    fusion = TSDFFusion(preset("object", min_weight=1.0))
    assert fusion.add_frame(depth_mm, CAM, np.eye(4), depth_scale=0.001) == W * (H - H // 2)
