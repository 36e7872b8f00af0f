"""The job queue's data: its SQLite schema, and the records it hands out (jobs, steps, events).

Plain frozen dataclasses, so the GUI, the CLI and the server can read them without a database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError, JobError, ScanBridgeError
from core.progress import ProgressEvent
from core.stages import StageOutcome

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
STEP_STATES = ("pending", "running", "done", "failed", "cancelled")
EVENT_KINDS = ("progress", "log", "state", "metric", "preview")
MAX_LOG_EVENTS = 2000
MAX_METRIC_EVENTS = 5000  # per job; a run's full history is in its metrics.jsonl
MAX_PREVIEW_EVENTS = 200  # per job
SCHEMA_VERSION = 3

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    capture_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    ended REAL,
    error TEXT,
    error_type TEXT,
    lease_token TEXT,
    lease_pid INTEGER,
    lease_host TEXT,
    heartbeat REAL,
    child_pid INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    step_index INTEGER,
    stage TEXT,
    fraction REAL,
    eta_s REAL,
    message TEXT NOT NULL DEFAULT '',
    handle TEXT,
    progress_base REAL,
    base_steps INTEGER
);
CREATE TABLE IF NOT EXISTS steps (
    job_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    stage TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    name TEXT,
    run_dir TEXT,
    result TEXT,
    reused INTEGER NOT NULL DEFAULT 0,
    fraction REAL,
    eta_s REAL,
    message TEXT NOT NULL DEFAULT '',
    runs INTEGER NOT NULL DEFAULT 0,
    started REAL,
    ended REAL,
    inputs TEXT,
    node TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    step_index INTEGER,
    kind TEXT NOT NULL,
    stage TEXT NOT NULL,
    fraction REAL,
    eta_s REAL,
    message TEXT NOT NULL,
    level TEXT NOT NULL,
    time REAL NOT NULL,
    step INTEGER,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, kind, id);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
"""

# Schema 1 -> 2: metric and preview events (a step number, and their values or image path as
# JSON), steps' input wiring (port -> earlier stage name), the executor's handle of a running job,
# and the part of the job's progress fixed when a plan step expanded (see overall_progress).
ADDED_COLUMNS = {2: (("events", "step", "INTEGER"), ("events", "data", "TEXT"), ("steps", "inputs", "TEXT"),
                     ("jobs", "handle", "TEXT"), ("jobs", "progress_base", "REAL"),
                     ("jobs", "base_steps", "INTEGER")),
                 3: (("steps", "node", "TEXT"),)}  # 2 -> 3: the machine each step ran on (core.executor)
# An unexpanded plan step counts as itself plus this many steps still to come.
PLAN_PLACEHOLDER_STEPS = 4


def apply_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables, or upgrade an older database's, inside the caller's write transaction."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise JobError(f"written by a newer ScanBridge (schema {version})", path)
    for statement in SCHEMA_SQL.split(";"):
        if statement.strip():
            db.execute(statement)
    for new in range((version or SCHEMA_VERSION) + 1, SCHEMA_VERSION + 1):  # an older database: upgrade
        for table, column, kind in ADDED_COLUMNS.get(new, ()):
            if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class LeaseLost(JobError):
    """The worker's lease on a job was taken over (it was judged dead) or the job was deleted."""


@dataclass(frozen=True)
class Step:
    """One step of a job: a registered stage name or a ``package.module:ATTR`` path, its config,
    and which earlier step (by stage name) each input port reads (core.ports; unwired ports read
    the latest earlier run of their kind)."""

    stage: str
    config: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    index: int
    stage: str  # as submitted
    config: dict[str, Any]
    state: str  # one of STEP_STATES
    name: str | None  # the StageSpec's name once it ran: later steps' inputs are keyed by it
    run_dir: Path | None
    result: dict[str, Any]
    reused: bool
    fraction: float | None
    eta_s: float | None
    message: str
    runs: int  # how many times a child process was started for it
    started: float | None
    ended: float | None
    inputs: dict[str, str] = field(default_factory=dict)  # port -> earlier stage name
    node: str | None = None  # the machine it ran (or runs) on: a host name, or a cluster node

    @property
    def finished(self) -> bool:
        return self.state == "done"

    def outcome(self) -> StageOutcome:
        if not self.finished or self.run_dir is None:
            raise JobError(f"step {self.index} ({self.stage}) has not finished")
        return StageOutcome(self.name or self.stage, self.run_dir, self.result, self.reused)


@dataclass(frozen=True)
class JobProgress:
    step_index: int | None  # the step running or last reported
    stage: str | None
    fraction: float  # of that step, 0..1
    overall: float  # of the whole job, 0..1
    eta_s: float | None  # of that step
    message: str


@dataclass(frozen=True)
class Job:
    id: int
    capture_id: str
    state: str  # one of JOB_STATES
    steps: tuple[StepRecord, ...]
    created: float
    updated: float
    started: float | None
    ended: float | None
    error: str | None
    error_type: str | None  # the core.errors class name of the failure
    lease_pid: int | None
    lease_host: str | None
    heartbeat: float | None
    child_pid: int | None
    cancel_requested: bool
    attempts: int  # how many times a worker claimed it
    progress: JobProgress
    handle: str | None = None  # where its running step executes (core.executor), opaque

    @property
    def node(self) -> str | None:
        """The machine its running step is on (None when no step runs)."""
        index = self.progress.step_index
        running = self.state == "running" and index is not None and index < len(self.steps)
        return self.steps[index].node if running else None

    @property
    def next_step(self) -> int | None:
        """Index of the first unfinished step (None when all finished)."""
        return next((s.index for s in self.steps if not s.finished), None)

    @property
    def ended_state(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (for the server's status endpoint and the GUI)."""
        d = asdict(self)
        for step in d["steps"]:
            step["run_dir"] = None if step["run_dir"] is None else str(step["run_dir"])
        return d


@dataclass(frozen=True)
class JobEvent:
    id: int | None  # None for a live event that was not stored (throttled progress)
    job_id: int
    step_index: int | None
    kind: str  # one of EVENT_KINDS; "state" events carry the new job state as their message
    stage: str
    fraction: float | None
    eta_s: float | None
    message: str
    level: str
    time: float
    step: int | None = None  # metric and preview events: the stage's step
    values: dict[str, float] | None = None  # metric events: name -> scalar
    path: str = ""  # preview events: the image, relative to the capture folder

    def to_progress_event(self) -> ProgressEvent:
        return ProgressEvent(self.kind, self.stage, self.fraction, self.eta_s, self.message,
                             self.level, self.time, self.step, self.values, self.path)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Lease:
    job_id: int
    token: str
    pid: int


Listener = Callable[[JobEvent], None]


def loads_or(text: str | None, default: Any) -> Any:
    return default if text is None else json.loads(text)


def describe_error(error: BaseException) -> str:
    """One line for a job's failure: the message of a ScanBridgeError, else type and message."""
    return str(error) if isinstance(error, ScanBridgeError) else f"{type(error).__name__}: {error}"


def encode_steps(steps: Sequence[Step]) -> list[str]:
    """Each step's config as JSON text; an error naming the step that is not a Step or not JSON."""
    encoded = []
    for i, step in enumerate(steps):
        if not isinstance(step, Step):
            raise JobError(f"expected a Step, got {type(step).__name__}", f"steps[{i}]")
        if not isinstance(step.inputs, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and k and v for k, v in step.inputs.items()):
            raise ConfigError('expected {"port": "earlier stage name"}', f"steps[{i}].inputs")
        try:
            encoded.append(json.dumps(dict(step.config), sort_keys=True))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"config is not JSON: {e}", f"steps[{i}].config") from None
    return encoded


def steps_from_json(data: Any, where: str) -> list[Step]:
    """Steps from ``[{"stage": NAME, "config": {...}}, ...]`` (a plan step's ``next_steps``)."""
    if not isinstance(data, list):
        raise JobError("expected a list of steps", where)
    steps = []
    for i, item in enumerate(data):
        stage = item.get("stage") if isinstance(item, dict) else None
        config = item.get("config", {}) if isinstance(item, dict) else None
        inputs = item.get("inputs", {}) if isinstance(item, dict) else None
        if not (isinstance(stage, str) and stage and isinstance(config, dict) and isinstance(inputs, dict)):
            raise JobError('expected {"stage": NAME, "config": {...}, "inputs": {...}}', f"{where}[{i}]")
        steps.append(Step(stage, config, inputs))
    return steps


def insert_steps(db: sqlite3.Connection, job_id: int, first: int, steps: Sequence[Step],
                 encoded: Sequence[str]) -> None:
    db.executemany(
        "INSERT INTO steps (job_id, idx, stage, config, inputs) VALUES (?, ?, ?, ?, ?)",
        [(job_id, first + i, st.stage, c, json.dumps(st.inputs) if st.inputs else None)
         for i, (st, c) in enumerate(zip(steps, encoded, strict=True))],
    )


def relative_to_workspace(root: Path, path: Path) -> str:
    """A path as stored: relative to the workspace, so a moved workspace keeps its records."""
    return Path(path).relative_to(root).as_posix() if Path(path).is_relative_to(root) else str(path)


def overall_progress(steps: Sequence[StepRecord], current: int | None, fraction: float, base: float,
                     base_steps: int, plan_stage: str) -> float:
    """The whole job's progress, 0..1, never going back when a plan step expands.

    Before it expands, a plan step weighs 1 + PLAN_PLACEHOLDER_STEPS and its own fraction is not
    counted; when it expands, the progress so far is fixed as ``base`` (``base_after_plan``) and
    the steps after ``base_steps`` share the rest.
    """
    done, total = _done_and_total(steps, base_steps, plan_stage)
    running = steps[current] if current is not None and base_steps <= current < len(steps) else None
    counted = running is not None and not running.finished and running.stage != plan_stage
    return base + (1.0 - base) * (done + (fraction if counted else 0.0)) / total


def base_after_plan(steps: Sequence[StepRecord], base: float, base_steps: int, plan_stage: str) -> float:
    """``base`` once the running plan step expands: what the job showed, plus the plan's own step."""
    done, total = _done_and_total(steps, base_steps, plan_stage)
    return base + (1.0 - base) * min(1.0, (done + 1) / total)


def _done_and_total(steps: Sequence[StepRecord], base_steps: int, plan_stage: str) -> tuple[int, int]:
    later = [s for s in steps if s.index >= base_steps]
    pending_plans = sum(1 for s in later if s.stage == plan_stage and not s.finished)
    return sum(1 for s in later if s.finished), max(1, len(later) + PLAN_PLACEHOLDER_STEPS * pending_plans)
