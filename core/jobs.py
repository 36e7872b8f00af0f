"""The persistent job queue: SQLite in WAL mode at ``workspace.jobs_db``.

A job is a capture id plus an ordered list of steps (a stage and its config). Each step records
whether it finished and the run folder it wrote, so a job interrupted at any point resumes from
its first unfinished step and a finished step is never run again. A worker holds a job through a
lease (a random token, its pid and host, and a heartbeat time); every write a worker makes checks
the token, so a worker that lost its lease can change nothing.

Events (progress, log lines, metrics, previews, state changes) are stored per job, bounded: the
latest progress per step, the last ``MAX_LOG_EVENTS`` log lines (and metric and preview events),
every state change; a worker stores a step's events in batches (core.worker). The GUI, the CLI and the
server's status endpoint all poll ``events(job_id, after_id)``; code in the same process can also
listen live with ``add_listener``. The records are in core.jobs_schema, events in core.jobs_events.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from core.errors import JobError, NotFoundError
from core.executor import node_of_handle, parse_local_handle
from core.jobs_events import JobEventLog
from core.jobs_processes import kill_orphan_stage, pid_alive
from core.jobs_schema import (
    EVENT_KINDS,
    JOB_STATES,
    MAX_LOG_EVENTS,
    SCHEMA_VERSION,
    STEP_STATES,
    Job,
    JobEvent,
    JobProgress,
    Lease,
    LeaseLost,
    Listener,
    Step,
    StepRecord,
    apply_schema,
    base_after_plan,
    describe_error,
    encode_steps,
    insert_steps,
    loads_or,
    overall_progress,
    relative_to_workspace,
)
from core.stages import StageOutcome, load_stage, make_config
from core.submit import PLAN_STAGE
from core.workspace import Workspace

__all__ = [
    "EVENT_KINDS", "JOB_STATES", "MAX_LOG_EVENTS", "SCHEMA_VERSION", "STEP_STATES", "Job", "JobEvent",
    "JobProgress", "JobQueue", "Lease", "LeaseLost", "Listener", "Step", "StepRecord", "describe_error",
    "pid_alive",
]


class JobQueue(JobEventLog):
    """The job queue of one workspace. Safe to use from several threads and processes."""

    def __init__(self, workspace: Workspace, *, busy_timeout_s: float = 30.0) -> None:
        self.workspace = workspace
        self.path = workspace.jobs_db
        self.host = socket.gethostname()
        self._busy_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()
        self._init_listeners()
        with self._write() as db:
            apply_schema(db, self.path)

    # -- connections ---------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = sqlite3.connect(self.path, isolation_level=None, timeout=self._busy_ms / 1000)
                db.row_factory = sqlite3.Row
                db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.DatabaseError as e:
                raise JobError(f"cannot open the job database: {e}", self.path) from None
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking SQLite's write lock up front (so reads inside it are current)."""
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as e:
            raise JobError(f"cannot write the job database: {e}", self.path) from None
        self._local.state_events = []
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        for event in self._local.state_events:
            self._notify(event)

    def close(self) -> None:
        """Close this thread's connection (others close when their thread's storage goes)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- reading -------------------------------------------------------------------------------

    def _job(self, db: sqlite3.Connection, row: sqlite3.Row) -> Job:
        steps = tuple(
            StepRecord(
                index=s["idx"], stage=s["stage"], config=json.loads(s["config"]), state=s["state"],
                name=s["name"], run_dir=self.workspace.root / s["run_dir"] if s["run_dir"] else None,
                result=loads_or(s["result"], {}), reused=bool(s["reused"]), fraction=s["fraction"],
                eta_s=s["eta_s"], message=s["message"], runs=s["runs"], started=s["started"],
                ended=s["ended"], inputs=loads_or(s["inputs"], {}), node=s["node"])
            for s in db.execute("SELECT * FROM steps WHERE job_id = ? ORDER BY idx", (row["id"],))
        )
        fraction, current = row["fraction"] or 0.0, row["step_index"]
        overall = 1.0 if row["state"] == "done" else overall_progress(
            steps, current, fraction, row["progress_base"] or 0.0, row["base_steps"] or 0, PLAN_STAGE)
        return Job(
            id=row["id"], capture_id=row["capture_id"], state=row["state"], steps=steps,
            created=row["created"], updated=row["updated"], started=row["started"], ended=row["ended"],
            error=row["error"], error_type=row["error_type"], lease_pid=row["lease_pid"],
            lease_host=row["lease_host"], heartbeat=row["heartbeat"], child_pid=row["child_pid"],
            cancel_requested=bool(row["cancel_requested"]), attempts=row["attempts"], handle=row["handle"],
            progress=JobProgress(current, row["stage"], fraction, overall, row["eta_s"], row["message"]),
        )

    def _row(self, db: sqlite3.Connection, job_id: int) -> sqlite3.Row:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError("no such job", f"job {job_id}")
        return row

    def get(self, job_id: int) -> Job:
        db = self._db()
        db.execute("BEGIN")  # one snapshot for the job and its steps
        try:
            return self._job(db, self._row(db, job_id))
        finally:
            db.execute("COMMIT")

    def list(
        self, state: str | None = None, capture_id: str | None = None, limit: int | None = None
    ) -> list[Job]:
        """Jobs, newest first, optionally only those in ``state`` or of ``capture_id``."""
        if state is not None and state not in JOB_STATES:
            raise JobError(f"unknown job state {state!r} (known: {', '.join(JOB_STATES)})")
        sql, args = "SELECT * FROM jobs WHERE 1", []
        if state is not None:
            sql, args = sql + " AND state = ?", [*args, state]
        if capture_id is not None:
            sql, args = sql + " AND capture_id = ?", [*args, capture_id]
        sql += " ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        db = self._db()
        db.execute("BEGIN")
        try:
            return [self._job(db, row) for row in db.execute(sql, args).fetchall()]
        finally:
            db.execute("COMMIT")

    # -- what users do -------------------------------------------------------------------------

    def submit(self, capture_id: str, steps: Sequence[Step], *, validate: bool = True) -> Job:
        """Queue a job. With ``validate``, every stage is loaded and its config checked first."""
        self.workspace.capture(capture_id)  # NotFoundError / InputError naming the id
        if not steps:
            raise JobError("a job needs at least one step", capture_id)
        encoded = encode_steps(steps)
        if validate:
            for step in steps:
                make_config(load_stage(step.stage), step.config)
        now = time.time()
        with self._write() as db:
            job_id = db.execute(
                "INSERT INTO jobs (capture_id, state, created, updated) VALUES (?, 'queued', ?, ?)",
                (capture_id, now, now),
            ).lastrowid
            insert_steps(db, job_id, 0, steps, encoded)
            self._insert_state(db, job_id, "queued", now)
        return self.get(job_id)

    def cancel(self, job_id: int) -> Job:
        """Cancel a queued job now; ask a running one's worker to stop (it reaches the child)."""
        with self._write() as db:
            row = self._row(db, job_id)
            if row["state"] == "queued" or (row["state"] == "running" and self._lease_dead(row, 0)):
                self._set_ended(db, job_id, "cancelled", "cancelled by the user", "Cancelled")
            elif row["state"] == "running":
                db.execute("UPDATE jobs SET cancel_requested = 1, updated = ? WHERE id = ?",
                           (time.time(), job_id))
            else:
                raise JobError(f"cannot cancel a job that is {row['state']}", f"job {job_id}")
        return self.get(job_id)

    def resume(self, job_id: int) -> Job:
        """Queue a failed or cancelled job again; it continues from its first unfinished step."""
        return self._requeue(job_id, "resume", ("failed", "cancelled"), reset_steps=False)

    def retry(self, job_id: int) -> Job:
        """Queue an ended job again from its first step (finished run folders are still reused)."""
        return self._requeue(job_id, "retry", ("failed", "cancelled", "done"), reset_steps=True)

    def delete(self, job_id: int) -> None:
        """Forget a job that is not running (its run folders stay in the capture)."""
        with self._write() as db:
            row = self._row(db, job_id)
            if row["state"] == "running":
                raise JobError("cannot delete a running job; cancel it first", f"job {job_id}")
            for table, key in (("events", "job_id"), ("steps", "job_id"), ("jobs", "id")):
                db.execute(f"DELETE FROM {table} WHERE {key} = ?", (job_id,))

    def _requeue(self, job_id: int, verb: str, allowed: tuple[str, ...], *, reset_steps: bool) -> Job:
        now = time.time()
        with self._write() as db:
            row = self._row(db, job_id)
            if row["state"] not in allowed:
                raise JobError(f"cannot {verb} a job that is {row['state']}", f"job {job_id}")
            step_sql = "UPDATE steps SET state = 'pending' WHERE job_id = ?"
            db.execute(step_sql if reset_steps else step_sql + " AND state != 'done'", (job_id,))
            if reset_steps:
                db.execute("UPDATE jobs SET progress_base = NULL, base_steps = NULL WHERE id = ?", (job_id,))
            db.execute(
                "UPDATE jobs SET state = 'queued', updated = ?, ended = NULL, error = NULL, "
                "error_type = NULL, cancel_requested = 0, fraction = NULL, eta_s = NULL WHERE id = ?",
                (now, job_id),
            )
            self._insert_state(db, job_id, "queued", now)
        return self.get(job_id)

    # -- what workers do -----------------------------------------------------------------------

    def claim(self, pid: int | None = None, job_id: int | None = None) -> Lease | None:
        """Atomically take the oldest queued job (or ``job_id`` if it is queued) for a worker."""
        pid = os.getpid() if pid is None else pid
        token, now = uuid.uuid4().hex, time.time()
        with self._write() as db:
            sql = "SELECT id FROM jobs WHERE state = 'queued' AND (? IS NULL OR id = ?) ORDER BY id LIMIT 1"
            row = db.execute(sql, (job_id, job_id)).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', lease_token = ?, lease_pid = ?, lease_host = ?, "
                "heartbeat = ?, child_pid = NULL, handle = NULL, attempts = attempts + 1, updated = ?, "
                "started = COALESCE(started, ?) WHERE id = ?",
                (token, pid, self.host, now, now, now, row["id"]),
            )
            self._insert_state(db, row["id"], "running", now)
        return Lease(row["id"], token, pid)

    def _held(self, db: sqlite3.Connection, lease: Lease) -> sqlite3.Row:
        row = db.execute("SELECT * FROM jobs WHERE id = ? AND lease_token = ? AND state = 'running'",
                         (lease.job_id, lease.token)).fetchone()
        if row is None:
            raise LeaseLost("this worker no longer holds the job", f"job {lease.job_id}")
        return row

    def heartbeat(self, lease: Lease) -> bool:
        """Renew the lease; returns whether a cancel was requested. Raises LeaseLost."""
        with self._write() as db:
            row = self._held(db, lease)
            db.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", (time.time(), lease.job_id))
        return bool(row["cancel_requested"])

    def start_step(self, lease: Lease, index: int) -> None:
        now = time.time()
        with self._write() as db:
            self._held(db, lease)
            step = db.execute("SELECT stage, state FROM steps WHERE job_id = ? AND idx = ?",
                              (lease.job_id, index)).fetchone()
            if step is None or step["state"] == "done":
                raise JobError(f"step {index} cannot start (already finished?)", f"job {lease.job_id}")
            db.execute(
                "UPDATE steps SET state = 'running', runs = runs + 1, started = ?, ended = NULL, "
                "fraction = 0, eta_s = NULL, message = '' WHERE job_id = ? AND idx = ?",
                (now, lease.job_id, index),
            )
            db.execute(
                "UPDATE jobs SET step_index = ?, stage = ?, fraction = 0, eta_s = NULL, message = '', "
                "updated = ? WHERE id = ?", (index, step["stage"], now, lease.job_id),
            )

    def set_handle(self, lease: Lease, handle: str | None) -> None:
        """Record where the running step executes (core.executor's opaque handle) and its node."""
        local = parse_local_handle(handle)
        with self._write() as db:
            row = self._held(db, lease)
            db.execute("UPDATE jobs SET handle = ?, child_pid = ? WHERE id = ?",
                       (handle, local[1] if local else None, lease.job_id))
            db.execute("UPDATE steps SET node = ? WHERE job_id = ? AND idx = ?",
                       (node_of_handle(handle), lease.job_id, row["step_index"]))

    def finish_step(self, lease: Lease, index: int, outcome: StageOutcome,
                    next_steps: Sequence[Step] | None = None) -> None:
        """Record a finished step; with ``next_steps``, they become the job's steps after it (in
        place of any it had there), in the same transaction: how a plan step expands."""
        now = time.time()
        encoded = None if next_steps is None else encode_steps(next_steps)
        with self._write() as db:
            row = self._held(db, lease)
            if next_steps is not None and encoded is not None:
                base = base_after_plan(self._job(db, row).steps, row["progress_base"] or 0.0,
                                       row["base_steps"] or 0, PLAN_STAGE)
                db.execute("UPDATE jobs SET progress_base = ?, base_steps = ? WHERE id = ?",
                           (base, index + 1, lease.job_id))
                db.execute("DELETE FROM steps WHERE job_id = ? AND idx > ?", (lease.job_id, index))
                insert_steps(db, lease.job_id, index + 1, next_steps, encoded)
            db.execute(
                "UPDATE steps SET state = 'done', name = ?, run_dir = ?, result = ?, reused = ?, "
                "fraction = 1, eta_s = 0, ended = ? WHERE job_id = ? AND idx = ?",
                (outcome.stage, relative_to_workspace(self.workspace.root, outcome.run_dir),
                 json.dumps(outcome.result, default=str), int(outcome.reused), now, lease.job_id, index),
            )
            db.execute("UPDATE jobs SET child_pid = NULL, handle = NULL, updated = ? WHERE id = ?",
                       (now, lease.job_id))

    def finish_job(self, lease: Lease, state: str, error: BaseException | None = None) -> None:
        """End the job as done, failed or cancelled (the running step gets the same state)."""
        if state not in ("done", "failed", "cancelled"):
            raise JobError(f"a job cannot end as {state!r}")
        with self._write() as db:
            self._held(db, lease)
            message = str(error) if error is not None else None
            self._set_ended(db, lease.job_id, state, message, type(error).__name__ if error else None)

    def release(self, lease: Lease) -> None:
        """Give a job back to the queue unfinished (the worker is shutting down)."""
        now = time.time()
        with self._write() as db:
            self._held(db, lease)
            self._requeue_running(db, lease.job_id, now, "worker stopped; the job will resume")

    def _set_ended(self, db: sqlite3.Connection, job_id: int, state: str, error: str | None,
                   error_type: str | None) -> None:
        now = time.time()
        db.execute("UPDATE steps SET state = ?, ended = ? WHERE job_id = ? AND state = 'running'",
                   ("failed" if state == "failed" else "cancelled", now, job_id))
        db.execute(
            "UPDATE jobs SET state = ?, ended = ?, updated = ?, error = ?, error_type = ?, "
            "lease_token = NULL, lease_pid = NULL, lease_host = NULL, heartbeat = NULL, "
            "child_pid = NULL, handle = NULL, cancel_requested = 0, eta_s = NULL, "
            "message = COALESCE(?, message) WHERE id = ?",
            (state, now, now, error, error_type, error, job_id),
        )
        self._insert_state(db, job_id, state, now, error)

    def _requeue_running(self, db: sqlite3.Connection, job_id: int, now: float, why: str) -> None:
        db.execute("UPDATE steps SET state = 'pending' WHERE job_id = ? AND state = 'running'", (job_id,))
        db.execute(
            "UPDATE jobs SET state = 'queued', updated = ?, lease_token = NULL, lease_pid = NULL, "
            "lease_host = NULL, heartbeat = NULL, child_pid = NULL, handle = NULL, eta_s = NULL, message = ? "
            "WHERE id = ?", (now, why, job_id),
        )
        self._insert_state(db, job_id, "queued", now, why)

    def _lease_dead(self, row: sqlite3.Row, stale_after_s: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if row["lease_host"] == self.host and row["lease_pid"] and not pid_alive(row["lease_pid"]):
            return True
        return bool(stale_after_s) and (row["heartbeat"] or 0.0) < now - stale_after_s

    def recover(self, stale_after_s: float, now: float | None = None) -> list[int]:
        """Requeue jobs left running by a dead worker (pid gone here, or heartbeat stale).

        A job whose cancel was requested ends cancelled instead. A child the dead worker left
        behind on this machine is killed first, so it cannot write beside the restarted step.
        """
        now = time.time() if now is None else now
        recovered = []
        with self._write() as db:
            for row in db.execute("SELECT * FROM jobs WHERE state = 'running'").fetchall():
                if not self._lease_dead(row, stale_after_s, now):
                    continue
                host, pid = parse_local_handle(row["handle"]) or (row["lease_host"], row["child_pid"])
                if pid and host == self.host:
                    kill_orphan_stage(pid)
                if row["cancel_requested"]:
                    self._set_ended(db, row["id"], "cancelled", "cancelled by the user", "Cancelled")
                else:
                    why = f"worker {row['lease_pid']} on {row['lease_host']} died; resuming"
                    self._requeue_running(db, row["id"], now, why)
                recovered.append(row["id"])
        return recovered

