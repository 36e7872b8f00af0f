"""The synthetic sample: a procedural scene of known geometry, its renderer, and the bundled
sample capture that ``scanbridge demo`` runs the pipeline on.

    views = render_orbit(24, (640, 480))                 # RGB, depth, mask, camera, pose per view
    write_capture_folder(views, out, with_depth=True)    # a nerfstudio dataset recon.ingest reads
    points, normals = sample_surface(10_000)             # ground truth for Chamfer / F-score
    surface_metrics(reconstructed_points)                # Chamfer / F-score against it
    pose_errors(estimated_c2w, true_c2w)                 # after a similarity alignment
"""

from recon.sample.dataset import write_capture_folder
from recon.sample.evaluate import pose_errors, surface_metrics
from recon.sample.paths import bundled_sample_dir
from recon.sample.scene import (
    OBJECT_BOUNDS,
    OBJECT_HEIGHT_M,
    ORBIT_TARGET,
    RenderedView,
    distance_to_object,
    ground_texture,
    make_camera,
    orbit_poses,
    project_points,
    render_orbit,
    render_view,
    sample_surface,
)

__all__ = [
    "OBJECT_BOUNDS",
    "OBJECT_HEIGHT_M",
    "ORBIT_TARGET",
    "RenderedView",
    "bundled_sample_dir",
    "distance_to_object",
    "ground_texture",
    "make_camera",
    "orbit_poses",
    "pose_errors",
    "project_points",
    "render_orbit",
    "render_view",
    "sample_surface",
    "surface_metrics",
    "write_capture_folder",
]
