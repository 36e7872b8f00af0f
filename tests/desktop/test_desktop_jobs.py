"""Jobs panel over the real queue and worker: a running job is cancelled from the panel (it
reaches the stage's child process), the app is restarted and the queue is still there; finished
and failed jobs are announced."""

from __future__ import annotations

from core.jobs import Step

SLOW = "stages_for_tests:SLOW"


def row_state(panel, job_id: int) -> str | None:
    for row in range(panel.table.rowCount()):
        if panel.table.item(row, 0) and panel.table.item(row, 0).text() == str(job_id):
            return panel.table.item(row, 2).text()
    return None


def test_cancel_a_running_job_then_restart_with_the_queue_intact(
        sample_workspace, make_app, qtbot, tmp_path, child_pythonpath):
    (capture,) = sample_workspace.captures()
    hold = tmp_path / "hold"
    hold.write_text("the stage waits while this file exists")
    app = make_app(sample_workspace, start_worker=True)
    panel = app.window.jobs
    first = app.services.submit(capture.id, [Step(SLOW, {"ticks": 2, "hold_file": str(hold), "tag": "a"})])
    second = app.services.submit(capture.id, [Step(SLOW, {"ticks": 2, "hold_file": str(hold), "tag": "b"})])
    app.window.show_panel("Jobs")
    qtbot.waitUntil(lambda: row_state(panel, first.id) == "running", timeout=60000)
    qtbot.waitUntil(lambda: app.services.job(first.id).child_pid is not None, timeout=30000)
    child = app.services.job(first.id).child_pid

    panel.select_job(first.id)
    assert panel.cancel_button.isEnabled() and not panel.resume_button.isEnabled()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: row_state(panel, first.id) == "cancelled", timeout=30000)
    assert f"Job {first.id} cancelled" in app.ctx.notifier.texts("warning")
    from core.jobs import pid_alive

    qtbot.waitUntil(lambda: not pid_alive(child), timeout=15000)  # cancel reached the stage process
    qtbot.waitUntil(lambda: "cancelled" in panel.log.toPlainText(), timeout=10000)

    # The worker takes the second job; close the app while it runs.
    qtbot.waitUntil(lambda: row_state(panel, second.id) == "running", timeout=60000)
    app.close()

    again = make_app(sample_workspace)  # a new app over the same workspace, no worker
    panel = again.window.jobs
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=15000)
    assert row_state(panel, first.id) == "cancelled"
    assert row_state(panel, second.id) in ("queued", "running")  # requeued, or waiting for recovery
    assert again.ctx.notifier.texts("success") == []  # old jobs are not announced again

    panel.select_job(first.id)
    qtbot.waitUntil(lambda: panel.resume_button.isEnabled(), timeout=5000)
    panel.resume_button.click()
    qtbot.waitUntil(lambda: row_state(panel, first.id) == "queued", timeout=15000)


def test_finished_and_failed_jobs_are_notified(sample_workspace, make_app, qtbot, child_pythonpath):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace, start_worker=True)
    good = app.services.submit(capture.id, [Step(SLOW, {"ticks": 2, "tag": "good"})])
    bad = app.services.submit(capture.id, [Step(SLOW, {"ticks": 4, "fail": "too few frames registered"})])
    notifier = app.ctx.notifier
    qtbot.waitUntil(lambda: f"Job {good.id} finished: Sample object" in notifier.texts("success"),
                    timeout=90000)
    qtbot.waitUntil(lambda: any(f"Job {bad.id} failed" in t and "too few frames registered" in t
                                for t in notifier.texts("error")), timeout=90000)


def test_the_jobs_log_shows_a_stages_metrics_and_previews(
        sample_workspace, make_app, qtbot, child_pythonpath):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace, start_worker=True)
    panel = app.window.jobs
    job = app.services.submit(capture.id, [Step("stages_for_tests:COUNT", {"to": 10, "preview_every": 5})])
    app.window.show_panel("Jobs")
    qtbot.waitUntil(lambda: row_state(panel, job.id) == "done", timeout=90000)
    panel.select_job(job.id)
    qtbot.waitUntil(lambda: "count=10  remaining=0" in panel.log.toPlainText(), timeout=15000)
    text = panel.log.toPlainText()
    assert "preview [count] step 5: runs/count-" in text and "/previews/count-10.png" in text
