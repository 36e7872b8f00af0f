"""The job queue's events: progress, log lines, metrics, previews and state changes, stored
bounded per job (in batches) and told live to listeners in the same process.

A mixin of JobQueue (core.jobs): it uses the queue's connection and write transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from core.errors import ScanBridgeError
from core.jobs_schema import MAX_LOG_EVENTS, MAX_METRIC_EVENTS, MAX_PREVIEW_EVENTS, JobEvent, Listener
from core.progress import ProgressEvent

MAX_PENDING_EVENTS = 10_000  # a step's events held while the database is busy


class JobEventLog:
    """Events of the jobs in one queue database (see core.jobs.JobQueue)."""

    _local: threading.local
    _db: Callable[[], sqlite3.Connection]
    _write: Callable[[], AbstractContextManager[sqlite3.Connection]]
    close: Callable[[], None]

    def _init_listeners(self) -> None:
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()

    def events(self, job_id: int, after_id: int = 0, limit: int = 1000,
               kinds: Sequence[str] | None = None) -> list[JobEvent]:
        """Stored events of a job with id > ``after_id``, oldest first (only ``kinds`` if given)."""
        sql, args = "SELECT * FROM events WHERE job_id = ? AND id > ?", [job_id, after_id]
        if kinds is not None:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            args.extend(kinds)
        rows = self._db().execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [_from_row(r) for r in rows]

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
        if store:
            (live,) = self.record_events(job_id, step_index, [event], notify=notify)
            return live
        live = _live(None, job_id, step_index, event)
        if notify:
            self._notify(live)
        return live

    def record_events(self, job_id: int, step_index: int | None, events: Sequence[ProgressEvent],
                      *, notify: bool = True) -> list[JobEvent]:
        """Store a batch of a step's events in one transaction (the last progress sets the job's)."""
        stored: list[JobEvent] = []
        if not events:
            return stored
        with self._write() as db:
            progress = [e for e in events if e.kind == "progress"]
            if progress:
                self._store_progress(db, job_id, step_index, progress[-1])
            stage = next((e.stage for e in events if e.stage), "")
            if step_index is not None and stage:
                db.execute("UPDATE steps SET name = COALESCE(name, ?) WHERE job_id = ? AND idx = ?",
                           (stage, job_id, step_index))
            for event in events:
                if event.kind == "progress" and event is not progress[-1]:
                    continue  # only the latest progress of a step is kept
                stored.append(_live(self._insert(db, job_id, step_index, event), job_id, step_index, event))
            kinds = {e.kind for e in events}
            for kind, most in (("log", MAX_LOG_EVENTS), ("metric", MAX_METRIC_EVENTS),
                               ("preview", MAX_PREVIEW_EVENTS)):
                if kind in kinds:
                    self._trim(db, job_id, kind, most)
        if notify:
            for live in stored:
                self._notify(live)
        return stored

    def _store_progress(self, db: sqlite3.Connection, job_id: int, step_index: int | None,
                        event: ProgressEvent) -> None:
        db.execute("DELETE FROM events WHERE job_id = ? AND step_index IS ? AND kind = 'progress'",
                   (job_id, step_index))
        db.execute("UPDATE steps SET fraction = ?, eta_s = ?, message = ? WHERE job_id = ? AND idx = ?",
                   (event.fraction, event.eta_s, event.message, job_id, step_index))
        db.execute(
            "UPDATE jobs SET stage = ?, fraction = ?, eta_s = ?, message = ?, updated = ? "
            "WHERE id = ? AND state = 'running'",
            (event.stage, event.fraction, event.eta_s, event.message, time.time(), job_id),
        )

    def _insert(self, db: sqlite3.Connection, job_id: int, step_index: int | None, e: ProgressEvent) -> int:
        return db.execute(
            "INSERT INTO events (job_id, step_index, kind, stage, fraction, eta_s, message, level, time, "
            "step, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, step_index, e.kind, e.stage, e.fraction, e.eta_s, e.message, e.level,
             e.time or time.time(), e.step, _data(e)),
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

    def _trim(self, db: sqlite3.Connection, job_id: int, kind: str, most: int) -> None:
        db.execute(
            "DELETE FROM events WHERE job_id = ? AND kind = ? AND id <= ("
            "SELECT id FROM events WHERE job_id = ? AND kind = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (job_id, kind, job_id, kind, most),
        )


def _data(event: ProgressEvent) -> str | None:
    if event.kind == "metric":
        return json.dumps(event.values or {})
    if event.kind == "preview":
        return json.dumps({"path": event.path})
    return None


def _from_row(r: sqlite3.Row) -> JobEvent:
    data = json.loads(r["data"]) if r["data"] else {}
    values = data if r["kind"] == "metric" else None
    return JobEvent(r["id"], r["job_id"], r["step_index"], r["kind"], r["stage"], r["fraction"], r["eta_s"],
                    r["message"], r["level"], r["time"], r["step"], values, data.get("path", "") if
                    r["kind"] == "preview" else "")


def _live(event_id: int | None, job_id: int, step_index: int | None, e: ProgressEvent) -> JobEvent:
    return JobEvent(event_id, job_id, step_index, e.kind, e.stage, e.fraction, e.eta_s, e.message, e.level,
                    e.time or time.time(), e.step, e.values, e.path)


class StepEventSink:
    """Records a step's events: listeners hear each one at once; the database gets them in
    batches (one transaction every ``interval_s``, from a flusher thread), and the rest on ``close``.
    With ``interval_s`` 0 every event is stored as it comes."""

    def __init__(self, queue: JobEventLog, job_id: int, step_index: int, interval_s: float) -> None:
        self.queue, self.job_id, self.step_index = queue, job_id, step_index
        self.interval_s = interval_s
        self._pending: list[ProgressEvent] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        if interval_s > 0:
            self._flusher = threading.Thread(target=self._flush_every, daemon=True,
                                             name=f"job-{job_id}-step-{step_index}-events")
            self._flusher.start()

    def __call__(self, event: ProgressEvent) -> None:
        if self._flusher is None:
            self.queue.record_event(self.job_id, self.step_index, event)
            return
        with self._lock:
            self._pending.append(event)
            if len(self._pending) > MAX_PENDING_EVENTS:  # the database is stuck: keep the newest
                del self._pending[: len(self._pending) - MAX_PENDING_EVENTS]
        self.queue.record_event(self.job_id, self.step_index, event, store=False)

    def _flush_every(self) -> None:
        try:
            while not self._closed.wait(self.interval_s):
                self._store()
        finally:
            self.queue.close()  # this thread's connection

    def _store(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            self.queue.record_events(self.job_id, self.step_index, batch, notify=False)
        except ScanBridgeError:
            with self._lock:  # the database was busy: try again with the next batch
                self._pending[:0] = batch

    def close(self) -> None:
        """Store what is still held back, so a failed step shows where it stopped."""
        if self._flusher is not None:
            self._closed.set()
            self._flusher.join()
            self._store()
