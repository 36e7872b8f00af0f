"""Every frame of a synthetic orbit of the textured object registers in SfM (issue 2's done-when),
and the SfM poses match the rendered ones up to a similarity transform."""

from __future__ import annotations

from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest
from recon.sample import render_orbit, write_capture_folder
from recon.sample.evaluate import capture_pose_errors


def _sfm_on_orbit(tmp_path, n_views, size, elevations_deg):
    views = render_orbit(n_views, size, elevations_deg=elevations_deg)
    source = write_capture_folder(views, tmp_path / "orbit", with_depth=False)
    capture = ingest(source, Workspace(tmp_path / "ws"), mode="guided")
    # Ignore the rendered poses: estimate them from the photos alone.
    outcome = execute_stage(capture, "poses", {"use_device_poses": False})
    return capture, outcome


def test_small_orbit_registers_every_frame(tmp_path):
    capture, outcome = _sfm_on_orbit(tmp_path, 12, (320, 240), (25.0,))
    assert outcome.result["source"] == "sfm"
    assert outcome.result["registered"] == outcome.result["total"] == 12
    assert outcome.result["unregistered"] == {}
    err = capture_pose_errors(capture, outcome.run_dir)
    assert err["frames"] == 12
    assert err["centre_rmse_m"] < 0.01  # cameras 0.6 m from the object
    assert err["rotation_max_deg"] < 2.0


def test_full_guided_orbit_registers_every_frame(tmp_path):
    capture, outcome = _sfm_on_orbit(tmp_path, 36, (640, 480), (15.0, 35.0, 55.0))
    assert outcome.result["registered"] == outcome.result["total"] == 36
    err = capture_pose_errors(capture, outcome.run_dir)
    assert err["centre_rmse_m"] < 0.003
    assert err["rotation_max_deg"] < 0.5
