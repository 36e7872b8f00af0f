"""Workers over real SQLite with stages in real child processes: runs, cancel, failure, crashes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from stages_for_tests import child_env, count_lines, make_workspace

from core.errors import Cancelled, JobError, StageError
from core.jobs import JobQueue, Step, pid_alive
from core.runner import Runner
from core.stages import read_status
from core.worker import Worker, run_job

FIRST, SLOW, LAST = "stages_for_tests:FIRST", "stages_for_tests:SLOW", "stages_for_tests:LAST"


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


@pytest.fixture
def ws(tmp_path):
    return make_workspace(tmp_path / "ws")


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def three_steps(tmp_path, *, hold=None, ticks=3):
    return [
        Step(FIRST, {"counter": str(tmp_path / "first.txt")}),
        Step(SLOW, {"counter": str(tmp_path / "slow.txt"), "ticks": ticks, "tick_s": 0.02,
                    "hold_file": str(hold) if hold else ""}),
        Step(LAST, {"counter": str(tmp_path / "last.txt")}),
    ]


def fast_worker(queue, **kw):
    return Worker(queue, Runner(grace_s=2.0), heartbeat_s=0.05, progress_interval_s=0.0, **kw)


def test_three_step_job_runs_in_order_chaining_run_folders(ws, tmp_path):
    queue = JobQueue(ws)
    job = queue.submit("cap", three_steps(tmp_path))
    heard = []
    queue.add_listener(heard.append)
    (ended,) = fast_worker(queue).run_until_empty()

    assert ended.id == job.id and ended.state == "done" and ended.error is None
    assert [s.state for s in ended.steps] == ["done"] * 3
    assert [s.name for s in ended.steps] == ["first", "slow", "last"]
    first, slow, last = (s.run_dir for s in ended.steps)
    assert last.is_dir() and read_status(last)["state"] == "done"
    # each step's inputs are the run folders of the earlier ones
    assert ended.steps[2].result["inputs"] == {"first": first.name, "slow": slow.name}
    assert ended.steps[1].result["inputs"] == {"first": first.name}
    assert [count_lines(tmp_path / f) for f in ("first.txt", "slow.txt", "last.txt")] == [1, 1, 1]
    assert ended.progress.overall == 1.0 and ended.attempts == 1
    as_json = json.loads(json.dumps(ended.to_json()))
    assert as_json["state"] == "done" and as_json["steps"][2]["run_dir"] == str(last)
    assert as_json["progress"]["overall"] == 1.0

    stored = queue.events(job.id)
    assert [e.message for e in stored if e.kind == "state"] == ["queued", "running", "done"]
    slow_progress = [e for e in heard if e.kind == "progress" and e.step_index == 1]
    assert [round(e.fraction, 2) for e in slow_progress[:3]] == [0.33, 0.67, 1.0]
    assert any(e.eta_s is not None for e in slow_progress)
    assert {e.step_index for e in stored if e.kind == "progress"} == {0, 1, 2}  # latest per step

    assert fast_worker(queue).run_next() is None  # a done job never runs again
    assert count_lines(tmp_path / "last.txt") == 1


def test_cancel_reaches_a_running_child_and_resume_finishes_the_job(ws, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    queue = JobQueue(ws)
    job = queue.submit("cap", three_steps(tmp_path, hold=hold))
    worker = fast_worker(queue)
    thread = threading.Thread(target=worker.run_until_empty)
    thread.start()
    wait_for(lambda: queue.get(job.id).steps[1].state == "running" and count_lines(tmp_path / "slow.txt"),
             what="step 2 to start")
    child = queue.get(job.id).child_pid
    assert child and pid_alive(child)
    assert queue.cancel(job.id).cancel_requested
    thread.join(timeout=30)
    assert not thread.is_alive()

    cancelled = queue.get(job.id)
    assert cancelled.state == "cancelled"
    assert [s.state for s in cancelled.steps] == ["done", "cancelled", "pending"]
    assert not pid_alive(child)
    (slow_dir,) = ws.capture("cap").runs_dir.glob("slow-*")
    assert read_status(slow_dir)["state"] == "cancelled"

    hold.unlink()
    queue.resume(job.id)
    (done,) = fast_worker(queue).run_until_empty()
    assert done.state == "done"
    assert [count_lines(tmp_path / f) for f in ("first.txt", "slow.txt", "last.txt")] == [1, 2, 1]
    assert [s.runs for s in done.steps] == [1, 2, 1]


def test_failing_stage_fails_the_job_with_its_message(ws, tmp_path):
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step(FIRST), Step(SLOW, {"fail": "too few frames registered (2 of 50)"}),
                              Step(LAST)])
    worker = Worker(queue, Runner(grace_s=2.0), progress_interval_s=60.0)
    (failed,) = worker.run_until_empty()
    assert failed.state == "failed"
    assert failed.error == "frames: too few frames registered (2 of 50)" and failed.error_type == "StageError"
    assert [s.state for s in failed.steps] == ["done", "failed", "pending"]
    assert failed.steps[1].fraction == 0.5  # where it stopped (ticks 2 of 4), even if throttled
    errors = [e for e in queue.events(job.id) if e.level == "error"]
    assert any("too few frames" in e.message for e in errors)


def test_a_crashed_child_fails_the_job_readably_and_it_can_be_resumed(ws, tmp_path):
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step(FIRST, {"counter": str(tmp_path / "first.txt")}),
                              Step("stages_for_tests:CRASH")])
    (failed,) = fast_worker(queue).run_until_empty()
    assert failed.state == "failed" and failed.error == "stage crash crashed: killed by signal 9"
    queue.resume(job.id)
    (again,) = fast_worker(queue).run_until_empty()
    assert again.state == "failed" and again.steps[1].runs == 2
    assert count_lines(tmp_path / "first.txt") == 1  # the finished step was not run again


def test_crashed_worker_is_recovered_without_rerunning_finished_steps(ws, tmp_path):
    """THE crash test: SIGKILL a worker process and its child mid-step-2, start a new worker."""
    hold = tmp_path / "hold"
    hold.touch()
    queue = JobQueue(ws)
    job = queue.submit("cap", three_steps(tmp_path, hold=hold))
    proc = subprocess.Popen([sys.executable, "-m", "core.worker", "run", "--workspace", str(ws.root)],
                            env=child_env())
    try:
        wait_for(lambda: count_lines(tmp_path / "slow.txt") == 1 and queue.get(job.id).child_pid,
                 what="step 2 to start in the worker process")
        running = queue.get(job.id)
        assert running.state == "running" and running.lease_pid == proc.pid
        child = running.child_pid
        os.kill(proc.pid, signal.SIGKILL)
        os.killpg(child, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not pid_alive(child), what="the stage child to go")
    assert queue.get(job.id).state == "running"  # nobody has noticed yet

    hold.unlink()
    worker = fast_worker(queue)  # a long stale time: the dead pid alone gives it away
    (done,) = worker.run_until_empty()
    assert done.id == job.id and done.state == "done"
    assert count_lines(tmp_path / "first.txt") == 1  # step 1 not re-run
    assert count_lines(tmp_path / "slow.txt") == 2  # step 2 restarted and finished
    assert count_lines(tmp_path / "last.txt") == 1  # step 3 ran once
    assert done.attempts == 2 and [s.runs for s in done.steps] == [1, 2, 1]
    states = [e.message for e in queue.events(job.id) if e.kind == "state"]
    assert states == ["queued", "running", "queued", "running", "done"]  # done exactly once
    assert fast_worker(queue).run_next() is None


def test_two_worker_processes_never_run_the_same_job(ws, tmp_path):
    queue = JobQueue(ws)
    jobs = [queue.submit("cap", [Step(FIRST, {"counter": str(tmp_path / f"job{i}.txt"), "tag": str(i)})])
            for i in range(6)]
    cmd = [sys.executable, "-m", "core.worker", "run", "--workspace", str(ws.root)]
    workers = [subprocess.Popen(cmd, env=child_env()) for _ in range(2)]
    for w in workers:
        assert w.wait(timeout=120) == 0
    for job in jobs:
        ended = queue.get(job.id)
        assert ended.state == "done" and ended.attempts == 1
        assert count_lines(tmp_path / f"job{job.id - jobs[0].id}.txt") == 1
        assert [e.message for e in queue.events(job.id) if e.kind == "state"] == ["queued", "running", "done"]


def test_run_job_forwards_events_and_returns_outcomes(ws, tmp_path):
    events = []
    outcomes = run_job(ws, "cap", three_steps(tmp_path), sink=events.append, runner=Runner(grace_s=2.0))
    assert [o.stage for o in outcomes] == ["first", "slow", "last"]
    assert all(o.run_dir.is_dir() for o in outcomes)
    assert {e.stage for e in events} == {"first", "slow", "last"}
    assert any(e.kind == "progress" and e.fraction == 1.0 and e.stage == "last" for e in events)
    (job,) = JobQueue(ws).list()
    assert job.state == "done"


def test_run_job_raises_the_stage_error(ws):
    with pytest.raises(StageError, match="frames: not enough overlap"):
        run_job(ws, "cap", [Step(SLOW, {"fail": "not enough overlap"})])
    (job,) = JobQueue(ws).list()
    assert job.state == "failed"


def test_run_job_interrupted_cancels_the_job_and_its_child(ws, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    queue = JobQueue(ws)

    def interrupt_when_running(event):
        if event.kind == "progress" and event.stage == "slow":
            raise KeyboardInterrupt  # what Ctrl-C does in the main thread

    with pytest.raises(Cancelled, match="scanbridge jobs resume"):
        run_job(ws, "cap", three_steps(tmp_path, hold=hold), sink=interrupt_when_running,
                runner=Runner(grace_s=2.0))
    (job,) = queue.list()
    assert job.state == "cancelled" and [s.state for s in job.steps] == ["done", "cancelled", "pending"]
    (slow_dir,) = ws.capture("cap").runs_dir.glob("slow-*")
    assert read_status(slow_dir)["state"] == "cancelled"


def test_run_forever_gives_a_running_job_back_when_stopped(ws, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    queue = JobQueue(ws)
    job = queue.submit("cap", three_steps(tmp_path, hold=hold))
    stop = threading.Event()
    worker = fast_worker(queue, poll_s=0.05)
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    wait_for(lambda: queue.get(job.id).steps[1].state == "running", what="step 2 to start")
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    back = queue.get(job.id)
    assert back.state == "queued" and [s.state for s in back.steps] == ["done", "pending", "pending"]


def test_run_job_refuses_a_job_that_is_not_queued(ws, tmp_path):
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step(FIRST)])
    queue.cancel(job.id)
    with pytest.raises(JobError, match="cannot run a job that is cancelled"):
        Worker(queue).run_job(job.id)


def test_a_child_whose_worker_died_stops_itself(ws, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    queue = JobQueue(ws)
    job = queue.submit("cap", three_steps(tmp_path, hold=hold))
    proc = subprocess.Popen([sys.executable, "-m", "core.worker", "run", "--workspace", str(ws.root)],
                            env=child_env())
    try:
        wait_for(lambda: count_lines(tmp_path / "slow.txt") == 1 and queue.get(job.id).child_pid,
                 what="step 2 to start in the worker process")
        child = queue.get(job.id).child_pid
        os.kill(proc.pid, signal.SIGKILL)  # the worker only: its child is left behind
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not pid_alive(child), what="the orphaned child to stop")
    (slow_dir,) = ws.capture("cap").runs_dir.glob("slow-*")
    assert read_status(slow_dir)["state"] == "cancelled"  # it ran its own cancel path

    hold.unlink()
    (done,) = fast_worker(queue).run_until_empty()
    assert done.state == "done" and [s.runs for s in done.steps] == [1, 2, 1]


def test_recovery_kills_a_deaf_child_left_behind_before_requeueing(ws, tmp_path):
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step("stages_for_tests:DEAF", {"ticks": 3000, "tick_s": 0.02,
                                                             "counter": str(tmp_path / "deaf.txt")})])
    proc = subprocess.Popen([sys.executable, "-m", "core.worker", "run", "--workspace", str(ws.root)],
                            env=child_env())
    try:
        wait_for(lambda: count_lines(tmp_path / "deaf.txt") and queue.get(job.id).child_pid,
                 what="the stage to start in the worker process")
        child = queue.get(job.id).child_pid
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert pid_alive(child)  # it ignores SIGTERM and its cancel token: it would keep writing
    assert queue.recover(stale_after_s=60) == [job.id]
    assert not pid_alive(child)
    assert queue.get(job.id).state == "queued"


def test_a_job_reads_as_done_only_once_its_capture_reads_as_processed(ws, tmp_path, monkeypatch):
    """A phone that sees its job done asks for the share link at once: the capture must already be
    processed then (the server's one-plan test saw 'processing' for a moment under load)."""
    queue = JobQueue(ws)
    queue.submit("cap", [Step(FIRST, {"counter": str(tmp_path / "first.txt")})])
    seen = []
    finish = JobQueue.finish_job

    def finish_and_look(self, lease, state, *args, **kwargs):
        seen.append((state, ws.capture("cap").load().status))
        return finish(self, lease, state, *args, **kwargs)

    monkeypatch.setattr(JobQueue, "finish_job", finish_and_look)
    (ended,) = fast_worker(queue).run_until_empty()
    assert ended.state == "done"
    assert seen == [("done", "processed")]
