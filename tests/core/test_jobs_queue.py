"""The job queue's database side: no child processes here (see test_jobs_worker.py for those)."""

import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from stages_for_tests import make_workspace

from core.errors import ConfigError, JobError, NotFoundError
from core.jobs import MAX_LOG_EVENTS, JobQueue, LeaseLost, Step, pid_alive
from core.progress import ProgressEvent
from core.stages import StageOutcome
from core.workspace import Workspace

FIRST = "stages_for_tests:FIRST"
SLOW = "stages_for_tests:SLOW"


@pytest.fixture
def queue(tmp_path):
    return JobQueue(make_workspace(tmp_path / "ws"))


def test_submit_persists_steps_and_uses_wal(queue, tmp_path):
    job = queue.submit("cap", [Step(FIRST, {"ticks": 2}), Step(SLOW)])
    assert job.state == "queued" and job.capture_id == "cap"
    assert [(s.index, s.stage, s.config, s.state) for s in job.steps] == [
        (0, FIRST, {"ticks": 2}, "pending"), (1, SLOW, {}, "pending")]
    assert job.next_step == 0 and job.progress.overall == 0.0
    again = JobQueue(Workspace(tmp_path / "ws"))  # a fresh connection
    assert again.get(job.id) == job
    mode = sqlite3.connect(queue.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert [e.message for e in queue.events(job.id) if e.kind == "state"] == ["queued"]


def test_submit_rejects_bad_input_before_queueing_anything(queue):
    with pytest.raises(NotFoundError, match="no-such-capture"):
        queue.submit("no-such-capture", [Step(FIRST)])
    with pytest.raises(JobError, match="at least one step"):
        queue.submit("cap", [])
    with pytest.raises(ConfigError, match="first.colour"):
        queue.submit("cap", [Step(FIRST, {"colour": "red"})])
    with pytest.raises(ConfigError, match=r"steps\[1\].config"):
        queue.submit("cap", [Step(FIRST), Step(SLOW, {"when": object()})])
    with pytest.raises(NotFoundError, match="stages_for_tests:NOPE"):
        queue.submit("cap", [Step("stages_for_tests:NOPE")])
    assert queue.list() == []


def test_list_filters_and_orders_newest_first(queue):
    a = queue.submit("cap", [Step(FIRST)])
    b = queue.submit("cap", [Step(FIRST)])
    queue.cancel(a.id)
    assert [j.id for j in queue.list()] == [b.id, a.id]
    assert [j.id for j in queue.list(state="cancelled")] == [a.id]
    assert [j.id for j in queue.list(limit=1)] == [b.id]
    with pytest.raises(JobError, match="unknown job state"):
        queue.list(state="sleeping")
    with pytest.raises(NotFoundError, match="job 999"):
        queue.get(999)


def test_state_changes_follow_the_rules(queue):
    job = queue.submit("cap", [Step(FIRST), Step(SLOW)])
    with pytest.raises(JobError, match="cannot resume a job that is queued"):
        queue.resume(job.id)
    assert queue.cancel(job.id).state == "cancelled"
    with pytest.raises(JobError, match="cannot cancel a job that is cancelled"):
        queue.cancel(job.id)
    assert queue.resume(job.id).state == "queued"

    lease = queue.claim()
    assert lease.job_id == job.id and queue.get(job.id).state == "running"
    with pytest.raises(JobError, match="cannot delete a running job"):
        queue.delete(job.id)
    queue.start_step(lease, 0)
    queue.finish_step(lease, 0, StageOutcome("first", queue.workspace.root / "r0", {"n": 1}))
    queue.start_step(lease, 1)
    queue.finish_job(lease, "failed", ConfigError("bad value", "slow.ticks"))
    failed = queue.get(job.id)
    assert failed.state == "failed" and failed.error == "slow.ticks: bad value"
    assert failed.error_type == "ConfigError"
    assert [s.state for s in failed.steps] == ["done", "failed"]
    assert failed.lease_pid is None

    resumed = queue.resume(job.id)  # continues from the first unfinished step
    assert resumed.state == "queued" and resumed.error is None
    assert [s.state for s in resumed.steps] == ["done", "pending"] and resumed.next_step == 1
    assert resumed.steps[0].outcome() == StageOutcome("first", queue.workspace.root / "r0", {"n": 1})

    queue.cancel(job.id)
    retried = queue.retry(job.id)  # from the start
    assert [s.state for s in retried.steps] == ["pending", "pending"]
    queue.cancel(job.id)
    queue.delete(job.id)
    with pytest.raises(NotFoundError):
        queue.get(job.id)
    assert queue.events(job.id) == []


def test_claim_takes_oldest_and_a_specific_job_only_when_queued(queue):
    a = queue.submit("cap", [Step(FIRST)])
    b = queue.submit("cap", [Step(FIRST)])
    assert queue.claim(job_id=b.id).job_id == b.id
    assert queue.claim(job_id=b.id) is None  # already running
    lease = queue.claim()
    assert lease.job_id == a.id and lease.pid == os.getpid()
    assert queue.claim() is None
    job = queue.get(a.id)
    assert job.attempts == 1 and job.lease_pid == os.getpid() and job.heartbeat is not None


def test_concurrent_claims_never_hand_out_a_job_twice(queue):
    ids = {queue.submit("cap", [Step(FIRST)], validate=False).id for _ in range(30)}
    claimed: list[int] = []
    lock = threading.Lock()

    def grab():
        mine = []
        while (lease := queue.claim()) is not None:
            mine.append(lease.job_id)
        with lock:
            claimed.extend(mine)

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def test_recover_requeues_jobs_of_a_dead_worker_and_stale_leases(queue):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not pid_alive(dead.pid)
    a = queue.submit("cap", [Step(FIRST), Step(SLOW)])
    b = queue.submit("cap", [Step(FIRST)])
    lease_a = queue.claim(pid=dead.pid)
    queue.start_step(lease_a, 0)
    queue.finish_step(lease_a, 0, StageOutcome("first", queue.workspace.root / "r0"))
    queue.start_step(lease_a, 1)
    lease_b = queue.claim()  # held by this (live) process

    assert queue.recover(stale_after_s=60) == [a.id]  # pid gone
    job = queue.get(a.id)
    assert job.state == "queued" and [s.state for s in job.steps] == ["done", "pending"]
    assert job.lease_pid is None and "died" in job.progress.message
    with pytest.raises(LeaseLost):
        queue.finish_step(lease_a, 1, StageOutcome("slow", queue.workspace.root / "r1"))
    assert queue.get(b.id).state == "running"  # its worker is alive and beating

    assert queue.recover(stale_after_s=60, now=time.time() + 61) == [b.id]  # heartbeat stale
    with pytest.raises(LeaseLost):
        queue.heartbeat(lease_b)
    assert queue.get(b.id).state == "queued"


def test_cancel_of_a_running_job_is_a_request_unless_its_worker_is_dead(queue):
    a = queue.submit("cap", [Step(FIRST)])
    lease = queue.claim()
    assert queue.heartbeat(lease) is False
    job = queue.cancel(a.id)
    assert job.state == "running" and job.cancel_requested
    assert queue.heartbeat(lease) is True
    queue.finish_job(lease, "cancelled")
    assert queue.get(a.id).state == "cancelled"

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    b = queue.submit("cap", [Step(FIRST)])
    queue.claim(pid=dead.pid)
    assert queue.cancel(b.id).state == "cancelled"


def test_events_are_bounded_and_polled_after_an_id(queue):
    job = queue.submit("cap", [Step(FIRST)])
    lease = queue.claim()
    queue.start_step(lease, 0)
    heard = []
    queue.add_listener(heard.append)
    for i in range(5):
        queue.record_event(job.id, 0, ProgressEvent("progress", "first", (i + 1) / 5, 2.0 - i * 0.5, f"p{i}"))
    queue.record_event(job.id, 0, ProgressEvent("progress", "first", 0.9, 0.1, "live only"), store=False)
    for i in range(MAX_LOG_EVENTS + 100):
        queue.record_event(job.id, 0, ProgressEvent("log", "first", message=f"line {i}"))
    queue.remove_listener(heard.append)

    assert len(heard) == 5 + 1 + MAX_LOG_EVENTS + 100  # listeners hear everything, live
    assert heard[5].id is None and heard[5].message == "live only"
    events = queue.events(job.id, limit=10_000)
    progress = [e for e in events if e.kind == "progress"]
    assert [(e.fraction, e.message) for e in progress] == [(1.0, "p4")]  # only the latest per step
    logs = [e.message for e in events if e.kind == "log"]
    assert MAX_LOG_EVENTS <= len(logs) < MAX_LOG_EVENTS + 64
    assert logs[-1] == f"line {MAX_LOG_EVENTS + 99}"
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    after = queue.events(job.id, after_id=ids[-3])
    assert [e.id for e in after] == ids[-2:]

    current = queue.get(job.id)
    assert current.progress.fraction == 1.0 and current.progress.message == "p4"
    assert current.steps[0].name == "first" and current.progress.stage == "first"


def test_a_broken_database_file_is_one_clear_error(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    ws.jobs_db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JobError, match="jobs.sqlite"):
        JobQueue(ws)
