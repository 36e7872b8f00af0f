"""The mesh stage isolates an object photographed without masks (crop auto) and keeps the ground
when asked (crop none); either way the ground it stood on is y = 0."""

from __future__ import annotations

import pytest
from mesh_synth import BOX_SIZE, box_mesh, orbit_poses
from test_floor import raw_mesh_run, room_capture
from test_isolate import combine, ground_grid

from core.stages import execute_stage
from core.workspace import Workspace
from recon.mesh.stage import load_result

MESH = "recon.mesh.stage:STAGE"
OPTIONS = {"detail": "preview", "texture_size": 256}


@pytest.fixture(scope="module")
def orbit_capture(tmp_path_factory):
    root = tmp_path_factory.mktemp("isolate")
    scene = combine(ground_grid(half=0.4, cell=0.01), box_mesh(subdivisions=4))
    return room_capture(Workspace(root / "ws"), orbit_poses(12)), raw_mesh_run(root / "fusion-run", scene)


def test_crop_auto_keeps_the_object_alone_on_y0(orbit_capture):
    cap, run = orbit_capture
    out = execute_stage(cap, MESH, OPTIONS, inputs={"fusion": run})
    mesh, placement = load_result(out.run_dir)
    lo, hi = mesh.bounds()
    # the box alone (0.20 x 0.12 x 0.16 m; x and z may swap with the facing), its foot cut within
    # three mesh edges (about 1 cm each here) of the ground, the ground at y = 0
    assert sorted([hi[0] - lo[0], hi[2] - lo[2]]) == pytest.approx(sorted(BOX_SIZE[[0, 2]]), abs=0.005)
    assert hi[1] == pytest.approx(BOX_SIZE[1], abs=0.003)
    assert 0.0 <= lo[1] < 0.03
    assert placement["floor"] == "support plane" and "support plane" in placement["isolation"]


def test_crop_none_keeps_the_ground(orbit_capture):
    cap, run = orbit_capture
    out = execute_stage(cap, MESH, {**OPTIONS, "crop": "none"}, inputs={"fusion": run})
    mesh, placement = load_result(out.run_dir)
    lo, hi = mesh.bounds()
    assert hi[0] - lo[0] == pytest.approx(0.8, abs=0.01)  # the whole ground square
    assert abs(lo[1]) < 0.005 and hi[1] == pytest.approx(BOX_SIZE[1], abs=0.003)
    assert placement["isolation"] is None
