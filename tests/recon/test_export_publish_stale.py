"""Publishing replaces the capture's model in exports/: files an earlier publish left there that
this one does not write (a format or a texture encoding no longer asked for) are removed, so the
share page and the phone never serve an old model beside the new one; the user's own files in
exports/ are never touched."""

from __future__ import annotations

import test_export_stage_gate

from core.stages import execute_stage

capture_with_mesh_run = test_export_stage_gate.capture_with_mesh_run  # the fixture: a hand-made mesh run


def _export_and_publish(cap, mesh_run, **config):
    export = execute_stage(cap, "export", config, inputs={"mesh": mesh_run})
    return execute_stage(cap, "publish", {}, inputs={"export": export.run_dir})


def test_a_new_publish_removes_the_earlier_publishs_other_files(capture_with_mesh_run):
    cap, mesh_run = capture_with_mesh_run
    _export_and_publish(cap, mesh_run, formats=["usdz", "glb", "obj"])
    names = {p.name for p in cap.exports_dir.iterdir()}
    assert names == {"model.usdz", "poster.png", "model.glb", "model.obj", "model.mtl", "model_basecolor.png"}
    # The user's own files beside the model, one of them named like a model.
    (cap.exports_dir / "notes.txt").write_text("measured 31 cm")
    (cap.exports_dir / "model-2024.usdz").write_bytes(b"the user's older scan")

    _export_and_publish(cap, mesh_run, formats=["obj", "ply"], texture_format="jpeg")
    names = {p.name for p in cap.exports_dir.iterdir()}
    assert names == {"model.obj", "model.mtl", "model_basecolor.jpg", "model.ply",
                     "notes.txt", "model-2024.usdz"}
    assert "map_Kd model_basecolor.jpg" in (cap.exports_dir / "model.mtl").read_text()
    assert (cap.exports_dir / "model-2024.usdz").read_bytes() == b"the user's older scan"
    assert not [p for p in cap.exports_dir.iterdir() if p.name.startswith(".")]  # no temporary left


def test_what_the_server_lists_is_only_the_current_publish(capture_with_mesh_run):
    from capture_server.captures import RESULT_TYPES

    cap, mesh_run = capture_with_mesh_run
    _export_and_publish(cap, mesh_run, formats=["usdz"])
    _export_and_publish(cap, mesh_run, formats=["glb"])
    served = sorted(p.name for p in cap.exports_dir.iterdir() if p.suffix.lower() in RESULT_TYPES)
    assert served == ["model.glb"]
