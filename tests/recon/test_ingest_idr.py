import numpy as np
import pytest

from core.errors import IngestError
from core.workspace import Workspace
from recon.ingest import ingest

DTU = "/work/shared/data/dtu-scan24-monosdf"


def test_dtu_monosdf_cameras_become_posed_frames(tmp_path):
    from pathlib import Path

    cap = ingest(Path(DTU), Workspace(tmp_path))
    m = cap.load()
    assert m.source["kind"] == "idr" and len(m.frames) == 49 and m.scale == "unscaled"
    f0 = m.frames[0]
    # SOURCE.md: after MonoSDF's crop and resize, fx ~ 925.5, fy ~ 922.6, cx ~ 199.4, cy ~ 198.1.
    assert f0.camera.fx == pytest.approx(925.5, abs=1.0) and f0.camera.fy == pytest.approx(922.6, abs=1.0)
    assert f0.camera.cx == pytest.approx(199.4 + 0.5, abs=1.0)
    # SOURCE.md: the object centre (scale_mat translation) projects to (198.6-200.8, 197.2-200.2)
    # in every view, in OpenCV pixel coordinates (ours are +0.5).
    centre = np.load(f"{DTU}/cameras.npz")["scale_mat_0"][:3, 3]
    for f in m.frames:
        w2c = np.linalg.inv(np.array(f.pose))
        x = w2c[:3, :3] @ centre + w2c[:3, 3]
        u = f.camera.fx * x[0] / x[2] + f.camera.cx
        v = f.camera.fy * x[1] / x[2] + f.camera.cy
        assert 198.6 - 0.3 < u - 0.5 < 200.8 + 0.3 and 197.2 - 0.3 < v - 0.5 < 200.2 + 0.3


def test_missing_camera_is_named(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    np.savez(src / "cameras.npz", world_mat_0=np.eye(4))
    from PIL import Image

    Image.new("RGB", (8, 8)).save(src / "000001_rgb.png")
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(IngestError, match="world_mat_1"):
        ingest(src, ws)
    assert list(ws.captures_dir.iterdir()) == []
