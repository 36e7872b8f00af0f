"""The Jobs view over the real queue and worker: capture names instead of ids, a whole-job ETA
that counts the steps still to come, and a job that stops reporting shows it is still alive."""

from __future__ import annotations

from core.jobs import Step

SLOW = "stages_for_tests:SLOW"


def row_of(panel, job_id: int) -> int | None:
    for row in range(panel.table.rowCount()):
        if panel.table.item(row, 0) and panel.table.item(row, 0).text() == str(job_id):
            return row
    return None


def cell(panel, job_id: int, col: int) -> str:
    row = row_of(panel, job_id)
    return "" if row is None else panel.table.item(row, col).text()


def seconds(eta: str) -> int:
    parts = [int(p) for p in eta.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def test_whole_job_eta_names_and_a_quiet_job_alive(sample_workspace, make_app, qtbot, tmp_path,
                                                   child_pythonpath):
    (capture,) = sample_workspace.captures()
    hold = tmp_path / "hold"
    hold.write_text("the first step waits at half way while this file exists")
    app = make_app(sample_workspace, start_worker=True)
    panel = app.window.jobs
    panel.quiet_after_s = 2.0
    # two equal steps: the first reports 10%..50% over about 4 s, then goes quiet
    job = app.services.submit(capture.id, [Step(SLOW, {"ticks": 5, "tick_s": 0.8, "hold_file": str(hold)}),
                                           Step(SLOW, {"ticks": 2, "tag": "second"})])
    app.window.show_panel("Jobs")
    qtbot.waitUntil(lambda: (app.services.job(job.id).steps[0].fraction or 0) >= 0.5, timeout=90000)
    qtbot.waitUntil(lambda: "working… last update" in cell(panel, job.id, 6), timeout=15000)
    try:
        assert cell(panel, job.id, 1) == "Sample object"  # the capture's name (the fixture's)
        assert panel.table.item(row_of(panel, job.id), 1).toolTip() == capture.id
        record = app.services.job(job.id)
        step = record.steps[0]
        half = record.updated - step.started  # the first half of step 1 took this long
        shown = seconds(cell(panel, job.id, 5))
        # Step 2 is the same work: the job has at least one whole step (2 x half) left; the old
        # view showed step 1's own frozen ETA (about one half).
        assert 2 * half - 1 <= shown <= 4 * half + 1, (shown, half)
        assert cell(panel, job.id, 2) == "running"
    finally:
        hold.unlink()
    qtbot.waitUntil(lambda: cell(panel, job.id, 2) == "done", timeout=90000)
    assert f"Job {job.id} finished: Sample object" in app.ctx.notifier.texts("success")
