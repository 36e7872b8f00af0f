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
