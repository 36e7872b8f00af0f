"""The job queue's events: progress, log lines and state changes, stored bounded per job and
told live to listeners in the same process.

A mixin of JobQueue (core.jobs): it uses the queue's connection and write transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from core.jobs_schema import MAX_LOG_EVENTS, JobEvent, Listener
from core.progress import ProgressEvent


class JobEventLog:
    """Events of the jobs in one queue database (see core.jobs.JobQueue)."""

    _local: threading.local
    _db: Callable[[], sqlite3.Connection]
    _write: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def _init_listeners(self) -> None:
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()

    def events(self, job_id: int, after_id: int = 0, limit: int = 1000) -> list[JobEvent]:
        """Stored events of a job with id > ``after_id``, oldest first."""
        rows = self._db().execute(
            "SELECT * FROM events WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?",
            (job_id, after_id, limit),
        ).fetchall()
        return [JobEvent(r["id"], r["job_id"], r["step_index"], r["kind"], r["stage"], r["fraction"],
                         r["eta_s"], r["message"], r["level"], r["time"]) for r in rows]

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event a worker in this process reports (live)."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self, event: JobEvent) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    def record_event(self, job_id: int, step_index: int | None, event: ProgressEvent,
                     *, store: bool = True, notify: bool = True) -> JobEvent:
        """Tell listeners about ``event`` and, with ``store``, keep it and the job's progress."""
        event_id = None
        if store:
            with self._write() as db:
                if event.kind == "progress":
                    db.execute(
                        "DELETE FROM events WHERE job_id = ? AND step_index IS ? AND kind = 'progress'",
                        (job_id, step_index),
                    )
                    db.execute(
                        "UPDATE steps SET fraction = ?, eta_s = ?, message = ? WHERE job_id = ? AND idx = ?",
                        (event.fraction, event.eta_s, event.message, job_id, step_index),
                    )
                    db.execute(
                        "UPDATE jobs SET stage = ?, fraction = ?, eta_s = ?, message = ?, updated = ? "
                        "WHERE id = ? AND state = 'running'",
                        (event.stage, event.fraction, event.eta_s, event.message, time.time(), job_id),
                    )
                if step_index is not None and event.stage:
                    db.execute("UPDATE steps SET name = COALESCE(name, ?) WHERE job_id = ? AND idx = ?",
                               (event.stage, job_id, step_index))
                event_id = self._insert(db, job_id, step_index, event)
                if event.kind == "log" and event_id % 64 == 0:
                    self._trim_logs(db, job_id)
        live = JobEvent(event_id, job_id, step_index, event.kind, event.stage, event.fraction,
                        event.eta_s, event.message, event.level, event.time or time.time())
        if notify:
            self._notify(live)
        return live

    def _insert(self, db: sqlite3.Connection, job_id: int, step_index: int | None, e: ProgressEvent) -> int:
        return db.execute(
            "INSERT INTO events (job_id, step_index, kind, stage, fraction, eta_s, message, level, time) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, step_index, e.kind, e.stage, e.fraction, e.eta_s, e.message, e.level,
             e.time or time.time()),
        ).lastrowid

    def _insert_state(self, db: sqlite3.Connection, job_id: int, state: str, now: float,
                      detail: str | None = None) -> None:
        row = db.execute("SELECT step_index, stage FROM jobs WHERE id = ?", (job_id,)).fetchone()
        level = "error" if state == "failed" else "info"
        event = ProgressEvent("state", row["stage"] or "", None, None, state, level, now)
        event_id = self._insert(db, job_id, row["step_index"], event)
        if detail and state != "cancelled":
            self._insert(db, job_id, row["step_index"],
                         ProgressEvent("log", row["stage"] or "", None, None, detail, level, now))
        self._local.state_events.append(JobEvent(event_id, job_id, row["step_index"], "state", event.stage,
                                       None, None, state, level, now))

    def _trim_logs(self, db: sqlite3.Connection, job_id: int) -> None:
        db.execute(
            "DELETE FROM events WHERE job_id = ? AND kind = 'log' AND id <= ("
            "SELECT id FROM events WHERE job_id = ? AND kind = 'log' ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (job_id, job_id, MAX_LOG_EVENTS),
        )

