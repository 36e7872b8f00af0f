"""A building's windows once passed for an ArUco marker and made a DTU model 5 m tall."""

from pathlib import Path

from core.workspace import Workspace
from recon.ingest import ingest
from recon.mesh.aruco import detect_markers, marker_scale
from recon.mesh.views import load_views

DTU = Path("/work/shared/data/dtu-scan24-monosdf")


def test_windows_that_decode_as_a_marker_do_not_set_the_scale(tmp_path):
    cap = ingest(DTU, Workspace(tmp_path))
    views = load_views(cap)
    assert 17 in detect_markers(views)  # the detector does see "marker 17" in a few photos...
    assert marker_scale(views) is None  # ...but its corners do not triangulate to a square
