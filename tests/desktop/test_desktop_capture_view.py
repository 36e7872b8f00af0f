"""The Capture view over the real queue and worker: a double click on Process queues one job,
and the view picks up the poses a job adds without being reopened."""

from __future__ import annotations

import json

from core.jobs import Step


def test_double_click_on_process_queues_one_job(sample_workspace, make_app, qtbot):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace)  # no worker: the job stays queued
    view = app.window.capture_view
    app.window.open_capture(capture.id)
    qtbot.waitUntil(lambda: view.details is not None and view.process_button.isEnabled(), timeout=60000)
    view.method.setCurrentText("poses")
    view.process_button.click()
    view.process_button.click()
    qtbot.waitUntil(lambda: len(app.services.jobs()) >= 1, timeout=10000)
    qtbot.wait(1500)  # time for a second job to be queued, and for the Jobs view to read the queue
    view.process_button.click()
    qtbot.wait(500)
    jobs = app.services.jobs()
    assert len(jobs) == 1
    assert not view.process_button.isEnabled() and f"job {jobs[0].id}" in view.process_button.text()
    app.services.cancel_job(jobs[0].id)  # once it ends, Process is offered again
    qtbot.waitUntil(lambda: view.process_button.isEnabled(), timeout=10000)
    assert view.process_button.text() == "Process"


def test_the_view_refreshes_when_a_job_adds_poses(sample_workspace, make_app, qtbot):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace, start_worker=True)
    view = app.window.capture_view
    app.window.open_capture(capture.id)
    qtbot.waitUntil(lambda: view.details is not None, timeout=60000)
    assert {f.registered for f in view.details.frames} == {None}  # no poses run yet
    assert view.details.points_source == ""
    job = app.services.submit(capture.id, [Step("poses", {"max_image_size": 320, "max_num_features": 800})])
    qtbot.waitUntil(lambda: app.services.job(job.id).ended_state, timeout=180000)
    assert app.services.job(job.id).state == "done"
    # The poses run registered every frame (the sample's device poses) and triangulated points:
    registered = {f["id"] for f in json.loads(
        next(capture.runs_dir.glob("poses-*/poses.json")).read_text())["frames"]}
    qtbot.waitUntil(lambda: view.details.points_source.startswith("poses-"), timeout=30000)
    assert {f.id for f in view.details.frames if f.registered} == registered
    assert view.viewer.scene.points and len(view.viewer.scene.points[0].points) > 100
