"""A processed capture opens in the viewer: the capture view's Process queues the method's job;
a real fusion job (small settings) runs through the app's worker; the result view shows the mesh,
orbits and zooms with the mouse, and exports it."""

from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import QPoint, Qt

from core.jobs import Step
from desktop.geometry_io import load_mesh

QUICK_FUSION = {"preset": "object", "frame_step": 3, "voxel_size_m": 0.01}


def make_metric(workspace):
    (capture,) = workspace.captures()
    # The bundled sample is rendered in metres; its nerfstudio export does not say so.
    capture.save(dataclasses.replace(capture.load(), scale="metric"))
    return capture


def test_process_button_queues_the_planned_steps(sample_workspace, make_app, qtbot):
    capture = make_metric(sample_workspace)
    app = make_app(sample_workspace)
    view = app.window.capture_view
    app.window.open_capture(capture.id)
    qtbot.waitUntil(lambda: view.process_button.isEnabled(), timeout=30000)
    view.method.setCurrentText("fusion")
    view.detail.setCurrentText("preview")
    view.process_button.click()
    qtbot.waitUntil(lambda: bool(app.services.jobs()), timeout=15000)
    (job,) = app.services.jobs()
    assert job.capture_id == capture.id and job.state == "queued"
    # The method expands in the worker (the plan step), as for the CLI and the server.
    assert [s.stage for s in job.steps] == ["plan"]
    assert job.steps[0].config == {"method": "fusion", "detail": "preview", "overrides": {}}
    qtbot.waitUntil(lambda: any(f"Queued job {job.id}" in t for t in app.ctx.notifier.texts("info")),
                    timeout=5000)


def test_the_method_menu_says_why_a_method_does_not_apply(sample_workspace, make_app, qtbot):
    from PySide6.QtCore import Qt as QtNames

    (capture,) = sample_workspace.captures()
    capture.save(dataclasses.replace(capture.load(), scale="unscaled"))  # depth, but not in metres
    app = make_app(sample_workspace)
    view = app.window.capture_view
    app.window.open_capture(capture.id)
    qtbot.waitUntil(lambda: view.process_button.isEnabled(), timeout=30000)
    tips = {view.method.itemText(i): view.method.itemData(i, QtNames.ItemDataRole.ToolTipRole)
            for i in range(view.method.count())}
    assert "Not for this capture" in tips["fusion"] and "metres" in tips["fusion"]
    assert tips["mvs"] and "Not for this capture" not in tips["mvs"]


def test_processed_capture_opens_in_the_viewer_and_exports(sample_workspace, make_app, qtbot, tmp_path):
    capture = make_metric(sample_workspace)
    app = make_app(sample_workspace, start_worker=True)
    job = app.services.submit(capture.id, [Step("fusion", QUICK_FUSION)])
    qtbot.waitUntil(lambda: app.services.job(job.id).ended_state, timeout=180000)
    assert app.services.job(job.id).state == "done", app.services.job(job.id).error
    qtbot.waitUntil(lambda: any(f"Job {job.id} finished" in t for t in app.ctx.notifier.texts("success")),
                    timeout=10000)

    result_view = app.window.result_view
    viewer = result_view.viewer
    with qtbot.waitSignal(viewer.rendered, timeout=60000):
        app.window.capture_view.ctx.signals.open_result.emit(capture.id)
    qtbot.waitUntil(lambda: bool(viewer.scene.meshes) and not viewer.busy, timeout=60000)
    if viewer.last_render is None or not viewer.scene.meshes:
        qtbot.waitSignal(viewer.rendered, timeout=30000).wait()
    assert app.window.current_panel() == "Result"
    assert "mesh.ply" in result_view.choice.currentText()
    mesh = viewer.scene.meshes[0]
    assert len(mesh.faces) > 1000 and mesh.vertex_colors is not None
    before = viewer.last_render
    assert before.covered > 0.05 * viewer.width() * viewer.height()
    object_pixels = before.rgb[np.isfinite(before.depth)]
    assert object_pixels.std(axis=0).max() > 15  # the colours of the scan, not a flat shade

    # Orbit with the mouse: the picture changes; the wheel zooms in.
    start = viewer.camera
    with qtbot.waitSignal(viewer.rendered, timeout=30000):
        qtbot.mousePress(viewer, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
        qtbot.mouseMove(viewer, QPoint(220, 120))
        qtbot.mouseRelease(viewer, Qt.MouseButton.LeftButton, pos=QPoint(220, 120))
    assert viewer.camera.azimuth_deg != start.azimuth_deg
    assert np.abs(viewer.last_render.rgb.astype(int) - before.rgb.astype(int)).mean() > 1.0
    distance = viewer.camera.distance
    with qtbot.waitSignal(viewer.rendered, timeout=30000):
        viewer.wheelEvent(_wheel(viewer, 240))
    assert viewer.camera.distance < distance

    # Export as GLB at the preview preset: a textured mesh within the budget.
    out = tmp_path / "scan.glb"
    result_view.export("glb", "preview", out)
    qtbot.waitUntil(lambda: out.is_file() and any("Exported" in t for t in app.ctx.notifier.texts("success")),
                    timeout=120000)
    exported = load_mesh(out)
    assert exported.textured and 0 < len(exported.faces) <= 25_000

    # USDZ into the capture's exports/: it passes Apple's ARKit checks and gets a poster.
    result_view.export("usdz", "preview")
    usdz = capture.exports_dir / "model.usdz"
    qtbot.waitUntil(lambda: usdz.is_file() and (capture.exports_dir / "poster.png").is_file(), timeout=120000)
    from recon.export.check import check_usdz

    report = check_usdz(usdz)
    assert report.passed, report.summary()
    exports = [r.path.name for r in app.services.result_files(capture.id) if r.kind == "export"]
    assert exports == ["model.usdz"]

    # Share needs the server: without it the user is told so.
    assert result_view.share() is None
    assert "server is not running" in app.ctx.notifier.texts("error")[-1]


def _wheel(widget, delta: int):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent

    centre = QPointF(widget.width() / 2, widget.height() / 2)
    return QWheelEvent(centre, widget.mapToGlobal(centre), QPoint(0, 0), QPoint(0, delta),
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                       False)


def test_the_viewer_opens_the_textured_model_first():
    from pathlib import Path

    from desktop.capture_info import ResultFile
    from desktop.panels.result_view import default_choice

    fused = ResultFile("mesh", Path("runs/fusion-1/mesh.ply"), "fusion-1")
    points = ResultFile("points", Path("runs/fusion-1/points.ply"), "fusion-1")
    textured = ResultFile("mesh", Path("runs/export-2/model.glb"), "export-2")
    plain = ResultFile("mesh", Path("runs/export-2/model.ply"), "export-2")
    assert default_choice([plain, textured, fused, points]) == 1
    assert default_choice([points, fused]) == 1
    assert default_choice([points]) == 0
