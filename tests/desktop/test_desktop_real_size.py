"""An unscaled model's size is a guess: the result view says "Size estimated" and its "Set real
size…" queues the capture again through the same submit path as Process, with the mesh stage's
``real_size_m`` and the method and detail it was last processed with; recon's plan gives the mesh
step that size. A measured model shows no such label. Real app offscreen, real job queue."""

from __future__ import annotations

import dataclasses

import pytest

from core.jobs import JobQueue, Step
from core.stages import StageOutcome


def processed(workspace, capture_id: str, scale: str, estimated: bool) -> None:
    """A done job of the capture whose export step returned what recon's export stage returns."""
    queue = JobQueue(workspace)
    queue.submit(capture_id, [Step("plan", {"method": "fusion", "detail": "preview", "overrides": {}}),
                              Step("export"), Step("publish")], validate=False)
    lease = queue.claim()
    assert lease is not None
    export = {"files": {"usdz": "model.usdz"}, "scale": scale, "size_estimated": estimated,
              "longest_side_m": 0.3, "units": "metres"}
    runs = workspace.capture(capture_id).root / "runs"
    for index, (stage, result) in enumerate([("plan", {}), ("export", export), ("publish", {})]):
        queue.start_step(lease, index)
        queue.finish_step(lease, index, StageOutcome(stage, runs / stage, result))
    queue.finish_job(lease, "done")


def test_an_estimated_size_is_shown_and_set_real_size_queues_the_capture_again(sample_workspace, make_app,
                                                                               qtbot):
    (capture,) = sample_workspace.captures()
    capture.save(dataclasses.replace(capture.load(), scale="metric"))  # fusion applies to it
    processed(sample_workspace, capture.id, "estimated", True)
    app = make_app(sample_workspace)
    view = app.window.result_view
    app.window.open_result(capture.id)
    qtbot.waitUntil(lambda: view.size_label.isVisible(), timeout=15000)
    assert view.size_label.text() == "Size estimated: longest side 30 cm"
    assert view.real_size_button.isEnabled()

    dialog = view.ask_real_size()
    assert dialog is not None and dialog.side_cm.value() == pytest.approx(30.0)
    dialog.side_cm.setValue(12.5)
    dialog.accept()
    qtbot.waitUntil(lambda: len(app.services.jobs()) == 2, timeout=15000)
    job = app.services.jobs()[0]
    assert job.state == "queued" and [s.stage for s in job.steps] == ["plan"]
    assert job.steps[0].config == {"method": "fusion", "detail": "preview",
                                   "overrides": {"mesh": {"real_size_m": 0.125}}}
    qtbot.waitUntil(lambda: any(f"Queued job {job.id}" in t for t in app.ctx.notifier.texts("info")),
                    timeout=5000)

    # The plan step expands it into a mesh step at that size (recon's method registry).
    from recon.methods import plan

    config = job.steps[0].config
    steps = plan(capture, config["method"], config["detail"], overrides=config["overrides"]).steps
    (mesh,) = [s for s in steps if s.stage == "mesh"]
    assert mesh.config["real_size_m"] == 0.125


def test_a_measured_size_shows_no_estimate(sample_workspace, make_app, qtbot):
    (capture,) = sample_workspace.captures()
    processed(sample_workspace, capture.id, "metric", False)
    app = make_app(sample_workspace)
    view = app.window.result_view
    app.window.open_result(capture.id)
    qtbot.waitUntil(lambda: view.size is not None, timeout=15000)
    assert not view.size_label.isVisible() and view.real_size_button.isEnabled()


def write_box_obj(path, size) -> None:
    """A closed box standing on y = 0, centred on x and z: the placed model the export publishes."""
    sx, sy, sz = size
    corners = [(x, y, z) for x in (-sx / 2, sx / 2) for y in (0.0, sy) for z in (-sz / 2, sz / 2)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    lines = [f"v {x} {y} {z}" for x, y, z in corners]
    lines += [f"f {a + 1} {b + 1} {c + 1}\nf {a + 1} {c + 1} {d + 1}" for a, b, c, d in quads]
    path.write_text("\n".join(lines) + "\n")


def test_measure_two_points_on_the_model_and_give_their_real_distance(sample_workspace, make_app, qtbot):
    """Issue 9.6: "a distance between two picked points in the viewer". A 30 x 10 x 20 cm box is the
    exported model; two clicks on its front face 20 cm apart (where the test's own pinhole maths puts
    them) measure 20 cm; saying they are really 40 cm apart queues the capture at twice the size."""
    import numpy as np
    from PySide6.QtCore import QPoint, Qt

    from desktop.viewer.camera import OrbitCamera

    (capture,) = sample_workspace.captures()
    capture.save(dataclasses.replace(capture.load(), scale="metric"))
    processed(sample_workspace, capture.id, "estimated", True)
    capture.exports_dir.mkdir(parents=True, exist_ok=True)
    write_box_obj(capture.exports_dir / "model.obj", (0.30, 0.10, 0.20))
    app = make_app(sample_workspace)
    view = app.window.result_view
    app.window.resize(1200, 800)
    app.window.open_result(capture.id)
    qtbot.waitUntil(lambda: view.measure_button.isEnabled(), timeout=15000)

    viewer = view.viewer
    camera = OrbitCamera(target=(0.0, 0.05, 0.0), distance=0.8, azimuth_deg=0.0, elevation_deg=0.0)
    with qtbot.waitSignal(viewer.rendered, timeout=15000):
        viewer.set_camera(camera)
    view.measure_button.setChecked(True)

    w, h = viewer.width(), viewer.height()
    f = 0.5 * h / np.tan(np.radians(camera.fov_deg) / 2)  # the camera looks down -z from z = 0.8

    def screen_of(x: float, y: float, z: float) -> QPoint:
        depth = 0.8 - z
        return QPoint(round(w / 2 + f * x / depth), round(h / 2 - f * (y - 0.05) / depth))

    qtbot.mouseClick(viewer, Qt.MouseButton.LeftButton, pos=screen_of(-0.10, 0.05, 0.10))
    assert viewer.measured_distance() is None and len(viewer.measure_points) == 1
    qtbot.mouseClick(viewer, Qt.MouseButton.LeftButton, pos=screen_of(0.10, 0.05, 0.10))
    assert viewer.measured_distance() == pytest.approx(0.20, abs=0.003)
    assert viewer.camera == camera  # clicks do not orbit
    dialog = view.size_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.side_cm.value() == pytest.approx(20.0, abs=0.3)

    dialog.side_cm.setValue(40.0)
    dialog.accept()
    qtbot.waitUntil(lambda: len(app.services.jobs()) == 2, timeout=15000)
    job = app.services.jobs()[0]
    real_size = job.steps[0].config["overrides"]["mesh"]["real_size_m"]
    assert real_size == pytest.approx(0.60, rel=0.02)  # the 30 cm side, twice as large


def test_measuring_is_off_for_a_raw_reconstruction(sample_workspace, make_app, qtbot):
    """A fusion or stereo mesh is in the capture's own units, not the model's: no measuring there."""
    (capture,) = sample_workspace.captures()
    processed(sample_workspace, capture.id, "estimated", True)
    run = capture.root / "runs" / "fusion-0123456789abcdef"
    run.mkdir(parents=True)
    (run / "status.json").write_text('{"state": "done", "ended": 1.0}')
    write_box_obj(run / "mesh.obj", (3.0, 1.0, 2.0))
    app = make_app(sample_workspace)
    view = app.window.result_view
    app.window.open_result(capture.id)
    qtbot.waitUntil(lambda: view.size is not None and bool(view.viewer.scene.meshes), timeout=15000)
    assert view.current_result().stage == run.name
    assert not view.measure_button.isEnabled()
