"""The export stage's ARKit gate: a USDZ that fails the compliance check is never published.

The stage's own writer makes good files, so the test breaks the file between writing and checking
(the way a writer bug would), in ways the checker reports as failed rules with no USD error.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from pxr import Sdf, UsdGeom

import recon.export.stage as export_stage
from core.capture import Manifest, utc_now
from core.errors import StageError
from core.stages import execute_stage, read_status
from core.workspace import Workspace
from recon.export.check import check_usdz
from recon.export.samples import uv_sphere
from recon.mesh.io import write_textured_npz


@pytest.fixture
def capture_with_mesh_run(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with ws.staged_capture("cap") as cap:
        cap.save(Manifest(id="cap", name="gate", created=utc_now(), mode="free"))
    cap = ws.capture("cap")
    mesh_run = cap.runs_dir / "mesh-handmade"
    mesh_run.mkdir(parents=True)
    write_textured_npz(mesh_run / "textured.npz", uv_sphere(rows=6, cols=12))
    (mesh_run / "placement.json").write_text(json.dumps({"scale": "metric"}))
    return cap, mesh_run


def _repack(usdz: Path, keep=lambda name: True, edit_layer=None) -> None:
    """Rewrite ``usdz`` with USD's own aligned zip writer: the entries ``keep`` accepts, in their
    order, after ``edit_layer(layer)`` changed the root layer."""
    work = usdz.parent / "repack"
    with zipfile.ZipFile(usdz) as src:
        names = [n for n in src.namelist() if keep(n)]
        src.extractall(work)
    if edit_layer is not None:
        layer = Sdf.Layer.FindOrOpen(str(work / names[0]))
        edit_layer(layer)
        layer.Save()
    usdz.unlink()
    writer = Sdf.ZipFileWriter.CreateNew(str(usdz))
    for name in names:
        writer.AddFile(str(work / name), name)
    writer.Save()
    shutil.rmtree(work)


def _no_up_axis(usdz: Path) -> None:
    _repack(usdz, edit_layer=lambda layer: layer.pseudoRoot.ClearInfo(UsdGeom.Tokens.upAxis))


def _texture_left_out(usdz: Path) -> None:
    """Only the root layer: its material then names a texture the package lacks."""
    _repack(usdz, keep=lambda name: name.endswith(".usdc"))


@pytest.mark.parametrize("breakage", [_no_up_axis, _texture_left_out])
def test_a_usdz_failing_only_arkit_rules_is_refused(capture_with_mesh_run, monkeypatch, breakage):
    cap, mesh_run = capture_with_mesh_run
    real_write = export_stage.write_exports
    seen = {}

    def write_then_break(mesh, out_dir, **kwargs):
        written = real_write(mesh, out_dir, **kwargs)
        breakage(written["usdz"])
        seen["report"] = check_usdz(written["usdz"])
        return written

    monkeypatch.setattr(export_stage, "write_exports", write_then_break)
    with pytest.raises(StageError, match="ARKit compliance check"):
        execute_stage(cap, "export", {"formats": ["usdz", "glb"]}, inputs={"mesh": mesh_run})
    report = seen["report"]
    assert not report.passed
    assert report.errors == ()  # the gate must not look at errors alone
    runs = [p for p in cap.runs_dir.iterdir() if p.name.startswith("export-")]
    assert len(runs) == 1 and read_status(runs[0])["state"] == "failed"
    with pytest.raises(StageError, match="not finished"):
        export_stage.publish(cap, runs[0])
    assert not cap.exports_dir.exists() or list(cap.exports_dir.iterdir()) == []


def test_the_same_stage_publishes_a_file_that_passes(capture_with_mesh_run):
    cap, mesh_run = capture_with_mesh_run
    outcome = execute_stage(cap, "export", {"formats": ["usdz"]}, inputs={"mesh": mesh_run})
    assert outcome.result["arkit_check"]["ran"] is True
    published = export_stage.publish(cap, outcome.run_dir)
    assert check_usdz(published["usdz"]).passed
