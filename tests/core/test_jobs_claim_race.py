"""Two workers claiming queued jobs at the same moment, with the interleaving forced on every run.

A trace hook on each worker's SQLite connection stops a worker at each step of the claim (the
"which job is queued?" read, then the update that takes the job) until the other worker has
reached the same step, is waiting for SQLite's write lock, or is done. With the read and the
update in one write transaction that takes the lock first, the second worker waits for the lock
and then sees the first one's claim. A check-then-act claim (the read outside the transaction,
or a transaction that only takes the lock at its update) lets both workers read the same queued
job: it is handed out twice, or the losing update fails, on every run, not by chance.
"""

from __future__ import annotations

import threading

from stages_for_tests import make_workspace

from core.jobs import JobQueue, Step

STEPS = {"check": "SELECT id FROM jobs WHERE state = 'queued'", "update": "UPDATE jobs SET state = 'running'"}
TAKES_WRITE_LOCK = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
WAIT_S = 20.0  # only a safety net: the hook never waits this long on correct or broken code


class ClaimRendezvous:
    """Statement hooks that make two threads meet at each step of a claim."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.reached: dict[str, set[str]] = {name: set() for name in STEPS}
        self.last: dict[str, str] = {}
        self.done: set[str] = set()
        self.stuck: list[str] = []

    def finished(self, me: str) -> None:
        with self.cond:
            self.done.add(me)
            self.cond.notify_all()

    def hook(self, me: str, other: str):
        def can_go(step: str) -> bool:
            return other in self.reached[step] or self.last.get(other) == "lock" or other in self.done

        def trace(sql: str) -> None:
            text = sql.lstrip()
            step = next((name for name, start in STEPS.items() if text.startswith(start)), None)
            with self.cond:
                self.last[me] = "lock" if text.upper().startswith(TAKES_WRITE_LOCK) else (step or "other")
                self.cond.notify_all()
                if step is not None:
                    self.reached[step].add(me)
                    if not self.cond.wait_for(lambda: can_go(step), WAIT_S):
                        self.stuck.append(f"{me} at {step}")
        return trace


def _claim_together(ws) -> tuple[dict[str, object], dict[str, BaseException], ClaimRendezvous]:
    """Two workers, each with its own queue and connection (like two processes), claim at once."""
    rendezvous = ClaimRendezvous()
    start = threading.Barrier(2)
    leases: dict[str, object] = {}
    failures: dict[str, BaseException] = {}

    def worker(me: str, other: str) -> None:
        queue = JobQueue(ws)
        queue._db().set_trace_callback(rendezvous.hook(me, other))
        start.wait()
        try:
            leases[me] = queue.claim()
        except BaseException as e:  # a lost write race is a failed claim too
            failures[me] = e
        finally:
            rendezvous.finished(me)
            queue.close()

    threads = [threading.Thread(target=worker, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=4 * WAIT_S)
    assert not any(t.is_alive() for t in threads)
    assert rendezvous.stuck == []
    return leases, failures, rendezvous


def test_two_simultaneous_claims_hand_the_one_job_out_once(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    job = JobQueue(ws).submit("cap", [Step("stages_for_tests:FIRST")], validate=False)
    leases, failures, rendezvous = _claim_together(ws)
    assert rendezvous.reached["check"] == {"a", "b"}
    assert failures == {}
    granted = [lease for lease in leases.values() if lease is not None]
    assert len(granted) == 1, f"job {job.id} was handed out {len(granted)} times"
    assert granted[0].job_id == job.id
    after = JobQueue(ws).get(job.id)
    assert after.state == "running" and after.attempts == 1


def test_two_queued_jobs_go_one_to_each_simultaneous_worker(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    queue = JobQueue(ws)
    ids = {queue.submit("cap", [Step("stages_for_tests:FIRST")], validate=False).id for _ in range(2)}
    leases, failures, _ = _claim_together(ws)
    assert failures == {}
    assert sorted(lease.job_id for lease in leases.values() if lease is not None) == sorted(ids)
    assert all(JobQueue(ws).get(i).attempts == 1 for i in ids)
