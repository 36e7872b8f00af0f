"""Photos -> poses -> dense stereo -> mesh, measured against the scene's known geometry.

recon.sample renders a box and a ball on a textured ground from cameras whose poses and
intrinsics are exact; the mesh's vertices are compared with the analytic surface (distance to
the object, or height above the ground y = 0). The thresholds have room over what correct code
gives (1.7 mm median over all vertices, 1.1 mm on the object, 3.3 mm 90th percentile there) and
fail when the stage gets the principal point wrong by 5 px in either axis (a 5 px shift of cy
gives a median of about 12 mm with 40% of the vertices within 1 cm; of cx, 3.3 mm and 6.7 mm
on the object).
"""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest
from recon.sample.dataset import write_capture_folder
from recon.sample.scene import OBJECT_BOUNDS, distance_to_object, render_orbit

SIZE = (200, 150)


@pytest.fixture(scope="module")
def stereo_mesh(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvs-accuracy")
    rendered = render_orbit(10, SIZE, elevations_deg=(25.0,), radius_m=0.5)
    capture = ingest(write_capture_folder(rendered, root / "src", with_depth=False), Workspace(root / "ws"))
    poses = execute_stage(capture, "poses", {"max_image_size": max(SIZE)})  # the exact device poses
    out = execute_stage(capture, "mvs", {"backend": "plane_sweep", "num_planes": 48, "num_neighbours": 2,
                                         "max_image_size": max(SIZE)}, inputs={"poses": poses.run_dir})
    mesh = o3d.io.read_triangle_mesh(str(out.run_dir / out.result["mesh"]))
    return np.asarray(mesh.vertices, np.float64), out.result


def _on_object(vertices: np.ndarray) -> np.ndarray:
    lo, hi = np.array(OBJECT_BOUNDS[0]) - 0.03, np.array(OBJECT_BOUNDS[1]) + 0.03
    return np.all((vertices >= lo) & (vertices <= hi), axis=1) & (vertices[:, 1] > 0.005)


def test_the_stereo_mesh_lies_on_the_true_scene(stereo_mesh):
    vertices, result = stereo_mesh
    assert result["backend"] == "plane_sweep"
    assert len(vertices) > 5000
    error = np.minimum(distance_to_object(vertices), np.abs(vertices[:, 1]))  # object or ground
    assert np.median(error) < 0.003
    assert np.mean(error < 0.01) > 0.98


def test_the_object_itself_is_reconstructed_within_millimetres(stereo_mesh):
    vertices, _ = stereo_mesh
    on_object = vertices[_on_object(vertices)]
    assert len(on_object) > 1000  # the box and ball are there, not only the ground
    error = distance_to_object(on_object)
    assert np.median(error) < 0.002
    assert np.percentile(error, 90) < 0.005
