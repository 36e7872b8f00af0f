"""Held-out check: the RGB-D orbit of test_heldout_rgbd_orbit as photos only (its poses, no
depth: dense stereo) ends with the object alone, without the ground it stood on."""

from __future__ import annotations

import numpy as np
import pytest
from test_heldout_rgbd_orbit import (
    BALL_CENTRE,
    BALL_RADIUS,
    BOX_MAX,
    BOX_MIN,
    usdz_surface,
    write_nerfstudio_orbit,
)

from core.workspace import Workspace
from recon.ingest import ingest
from recon.pipeline import process


@pytest.mark.slow  # dense stereo on the CPU
def test_photo_orbit_keeps_no_ground_patch(tmp_path):
    write_nerfstudio_orbit(tmp_path / "orbit", with_depth=False)
    ws = Workspace(tmp_path / "ws")
    cap = ingest(tmp_path / "orbit", ws)
    result = process(ws, cap, method="mvs", detail="preview", out=tmp_path / "model.usdz")

    samples = 20_000
    placed, _ = usdz_surface(tmp_path / "model.usdz", samples)
    height = float(np.ptp(placed[:, 1]))
    # the size is estimated (photos only): compare shapes in units of the model's own height
    true_height = BALL_CENTRE[1] + BALL_RADIUS
    footprint = np.ptp(placed[placed[:, 1] > 0.1 * height][:, [0, 2]], axis=0)  # the object's x/z extent
    low = placed[:, 1] < 0.04 * height  # anything at the foot of the object ...
    centre = 0.5 * (placed[:, [0, 2]].min(0) + placed[:, [0, 2]].max(0))
    outside = np.any(np.abs(placed[:, [0, 2]] - centre) > 0.6 * footprint, axis=1)  # ... beside it
    ground_area_share = float(np.mean(low & outside))  # of the model's surface
    mesh_run = next(o.run_dir for o in result.outcomes if o.stage == "mesh")
    total_area = _surface_area(tmp_path / "model.usdz")
    footprint_area = float(np.prod(footprint))
    print(f"ground beside the object: {ground_area_share * total_area / footprint_area:.1%} of its "
          f"footprint; height/width {height / footprint.max():.2f}; mesh run {mesh_run.name}")
    assert ground_area_share * total_area <= 0.10 * footprint_area
    true_width = max(BOX_MAX[0] - BOX_MIN[0], 2 * BALL_RADIUS)
    assert height / footprint.max() == pytest.approx(true_height / true_width, rel=0.15)


def _surface_area(path) -> float:
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    mesh = next(UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    xform = np.array(mesh.ComputeLocalToWorldTransform(Usd.TimeCode.Default()))
    v = np.array(mesh.GetPointsAttr().Get(), float) @ xform[:3, :3] + xform[3, :3]
    tri = v[np.array(mesh.GetFaceVertexIndicesAttr().Get()).reshape(-1, 3)]
    return float(0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())
