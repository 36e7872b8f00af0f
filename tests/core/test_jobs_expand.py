"""A step may expand into the job's next steps (how a method's plan step works), and the capture's
status in capture.json follows the job: real SQLite, stages in real child processes."""

import threading
import time

import pytest
from stages_for_tests import child_env, count_lines, make_workspace

from core.jobs import JobQueue, Step
from core.runner import Runner
from core.worker import Worker

FIRST, SLOW, LAST = "stages_for_tests:FIRST", "stages_for_tests:SLOW", "stages_for_tests:LAST"
EXPAND = "stages_for_tests:EXPAND"


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


@pytest.fixture
def ws(tmp_path):
    return make_workspace(tmp_path / "ws")


def worker(queue):
    return Worker(queue, Runner(grace_s=2.0), heartbeat_s=0.05, progress_interval_s=0.0)


def test_a_step_expands_into_the_jobs_next_steps_once_per_run(ws, tmp_path):
    counter = tmp_path / "expand.txt"
    then = [{"stage": SLOW, "config": {"tag": "planned"}}, {"stage": LAST, "config": {"tag": "planned"}}]
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step(FIRST), Step(EXPAND, {"then": then, "counter": str(counter)}),
                               Step(LAST, {"tag": "replaced by the plan"})])
    (ended,) = worker(queue).run_until_empty()
    assert ended.state == "done", ended.error
    assert [(s.stage, s.config.get("tag")) for s in ended.steps] == [
        (FIRST, None), (EXPAND, None), (SLOW, "planned"), (LAST, "planned")]
    assert all(s.finished for s in ended.steps)
    # The expanding step is not data: later steps read the first step's run, not the plan's.
    assert ended.steps[3].result["inputs"] == {"first": ended.steps[0].run_dir.name,
                                               "slow": ended.steps[2].run_dir.name}
    assert ws.capture("cap").load().status == "processed"

    # A retry plans again (the plan step is never reused) and does not pile up steps.
    queue.retry(job.id)
    (again,) = worker(queue).run_until_empty()
    assert again.state == "done" and len(again.steps) == 4
    assert count_lines(counter) == 2
    assert [s.reused for s in again.steps] == [True, False, True, True]


def test_malformed_next_steps_fail_the_job_with_the_step_named(ws):
    queue = JobQueue(ws)
    queue.submit("cap", [Step(EXPAND, {"then": [{"config": {}}]})])
    (ended,) = worker(queue).run_until_empty()
    assert ended.state == "failed" and "stages_for_tests:EXPAND[0]" in ended.error
    assert ws.capture("cap").load().status == "failed"


def test_the_captures_status_follows_its_job(ws, tmp_path):
    queue = JobQueue(ws)
    hold = tmp_path / "hold"
    hold.touch()
    job = queue.submit("cap", [Step(SLOW, {"hold_file": str(hold), "tick_s": 0.01})])
    w = worker(queue)
    seen = []
    runner = threading.Thread(target=lambda: seen.append(w.run_next()))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while queue.get(job.id).progress.fraction < 0.5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ws.capture("cap").load().status == "processing"
        queue.cancel(job.id)
        runner.join(30)
    finally:
        hold.unlink()
        runner.join(30)
    assert seen[0].state == "cancelled"
    assert ws.capture("cap").load().status == "new"  # no frames, nothing published: as before

    queue.submit("cap", [Step(FIRST, {"fail": "no luck"})])
    (failed,) = worker(queue).run_until_empty()
    assert failed.state == "failed" and ws.capture("cap").load().status == "failed"


def test_a_capture_still_receiving_uploads_keeps_its_status(ws):
    import dataclasses

    capture = ws.capture("cap")
    capture.save(dataclasses.replace(capture.load(), status="receiving"))
    queue = JobQueue(ws)
    queue.submit("cap", [Step(FIRST)])
    (ended,) = worker(queue).run_until_empty()
    assert ended.state == "done" and capture.load().status == "receiving"  # the phone finishes it
