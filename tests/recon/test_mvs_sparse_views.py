"""A stereo view with almost no consistent depth (the Lund street photos had one) is skipped with a
warning naming it, and open3d's own error text never reaches the user."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import open3d.core as o3c
import pytest

from core.capture import Camera
from core.errors import ReconstructionError
from core.progress import CancelToken, Progress
from recon.fusion import TSDFFusion
from recon.fusion.library_errors import fusion_error
from recon.mvs.fuse import fuse_views
from recon.mvs.views import make_view
from recon.sample.scene import distance_to_object, render_orbit

SIZE = (160, 120)


@pytest.fixture(scope="module")
def orbit():
    return render_orbit(8, SIZE, elevations_deg=(25.0,), radius_m=0.5)


def one_pixel_depth(shape: tuple[int, int], metres: float) -> np.ndarray:
    """A depth map measured at a single pixel, off open3d's every-4th-pixel sampling grid."""
    depth = np.zeros(shape, np.float32)
    depth[1, 1] = metres
    return depth


def test_a_view_with_one_depth_pixel_is_skipped_with_a_warning(orbit) -> None:
    views = [make_view(f"IMG_{i:02d}.jpg", v.rgb, v.camera, v.c2w, max(SIZE)) for i, v in enumerate(orbit)]
    depths = [np.where(v.mask, v.depth_m, 0.0).astype(np.float32) for v in orbit]
    depths[3] = one_pixel_depth(depths[3].shape, float(depths[3][depths[3] > 0].mean()))
    events = []
    fused = fuse_views(views, depths, voxels_per_distance=100.0, min_weight=2.0,
                       progress=Progress("mvs", events.append), cancel=CancelToken())
    assert fused.skipped == ("IMG_03.jpg",)
    assert fused.tsdf.frame_count == len(views) - 1
    warnings = [e.message for e in events if e.kind == "log" and e.level == "warning"]
    assert len(warnings) == 1 and "IMG_03.jpg" in warnings[0]
    mesh = fused.tsdf.extract_mesh()
    assert mesh.triangle_count > 500  # the other seven views still make the object
    assert np.median(distance_to_object(mesh.vertices)) < 0.01


def test_only_sparse_views_is_one_clear_error(orbit) -> None:
    views = [make_view(f"IMG_{i:02d}.jpg", v.rgb, v.camera, v.c2w, max(SIZE)) for i, v in enumerate(orbit)]
    depths = [one_pixel_depth(v.depth_m.shape, 0.5) for v in orbit]
    with pytest.raises(ReconstructionError, match="too little consistent depth"):
        fuse_views(views, depths, 100.0, 2.0, Progress("mvs"), CancelToken())


def test_tsdf_takes_a_one_pixel_frame_as_nothing_integrated() -> None:
    fusion = TSDFFusion()
    camera = Camera(64, 48, 50.0, 50.0, 32.0, 24.0)
    assert fusion.add_frame(one_pixel_depth((48, 64), 1.0), camera, np.eye(4), frame="IMG_7.jpg") == 0
    assert fusion.frame_count == 0
    assert fusion.extract_mesh().triangle_count == 0


def real_open3d_error() -> RuntimeError:
    """open3d's own RuntimeError for a depth map it cannot place, raised by open3d itself."""
    grid = o3d.t.geometry.VoxelBlockGrid(("tsdf", "weight"), (o3c.float32, o3c.float32), (1, 1), 0.01, 8, 100)
    depth = o3d.t.geometry.Image(o3c.Tensor(one_pixel_depth((48, 64), 1.0)))
    k = o3c.Tensor(np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]]), o3c.float64)
    try:
        grid.compute_unique_block_coordinates(depth, k, o3c.Tensor(np.eye(4), o3c.float64), 1.0, 5.0, 4.0)
    except RuntimeError as e:
        return e
    raise AssertionError("open3d accepted the one-pixel depth map")


def test_open3d_errors_become_ours_without_escape_codes_or_cpp() -> None:
    raw = real_open3d_error()
    assert "\x1b[" in str(raw) and "::" in str(raw)  # what a user saw before
    error = fusion_error(raw, "integrating this frame's depth", "IMG_7.jpg")
    assert isinstance(error, ReconstructionError) and error.where == "IMG_7.jpg"
    text = str(error)
    assert text.startswith("IMG_7.jpg: integrating this frame's depth failed inside open3d")
    assert "\x1b" not in text and "::" not in text and ".cpp" not in text and "[Open3D" not in text
    assert "No block is touched in TSDF volume" in text
