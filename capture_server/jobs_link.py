"""How the server hands finished captures to processing: core's job queue, seen as plain JSON.

The server plans nothing itself: it queues the same job as the CLI and the desktop
(core.submit.method_job) with the settings' default method and detail. The plan step expands
it in the worker's stage child (recon's method registry), after ingest reads what the phone
uploaded, and the job publishes to exports/ as its last step; nothing of recon is imported here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capture_server.errors import RequestError
from capture_server.export_request import export_options
from core.capture import CaptureFolder, Manifest
from core.errors import ConfigError
from core.eta import HISTORY_JOBS, estimate, liveness, typical_durations
from core.jobs import Job, JobQueue, Step
from core.model_size import job_model_size
from core.settings import Settings
from core.submit import INGEST_STAGE, PLAN_STAGE, method_job, method_names, needs_ingest, registered_stages
from core.worker import Worker
from core.workspace import Workspace


def plan_for(capture: CaptureFolder, manifest: Manifest, settings: Settings,
             request: FinishRequest | None = None) -> tuple[list[Step], str | None]:
    """The steps to queue for a finished capture (``manifest`` as it will be saved), or none and why.
    ``request``: the method (and frame) the phone asked for; else the settings' default method."""
    if not settings.process_on_finish:
        return [], "processing on finish is turned off in settings"
    wanted = [INGEST_STAGE, PLAN_STAGE] if needs_ingest(capture, manifest) else [PLAN_STAGE]
    missing = [name for name in wanted if name not in registered_stages()]
    if missing:
        return [], f"stage {', '.join(repr(m) for m in missing)} is not installed"
    method = request.method if request is not None and request.method else settings.default_method
    overrides = request.overrides() if request is not None else None
    try:
        return method_job(capture, method, settings.default_detail, overrides, manifest=manifest), None
    except ConfigError as e:
        return [], f"cannot process with the settings' default method: {e}"


MAX_FRAME = 10_000_000


@dataclass(frozen=True)
class FinishRequest:
    """What a phone may ask for when it finishes a capture: a method by name (``frame``: the
    frame that single-frame methods such as mcc complete)."""

    method: str | None = None
    frame: int | None = None
    export: dict[str, Any] = field(default_factory=dict)  # the export stage's options (export_request)

    @classmethod
    def from_json(cls, body: Any) -> FinishRequest:
        if not isinstance(body, dict):
            raise RequestError("expected a JSON object", "body")
        unknown = sorted(str(k)[:40] for k in body if k not in ("method", "frame", "export"))
        if unknown:
            raise RequestError(f"unknown fields: {', '.join(unknown[:5])} (known: method, frame, export)",
                               "body")
        method, frame = body.get("method"), body.get("frame")
        if method is not None:
            if not isinstance(method, str) or method not in method_names():
                shown = method[:40] if isinstance(method, str) else type(method).__name__
                raise RequestError(f"unknown method {shown!r} (known: {', '.join(method_names())})", "method")
        if frame is not None:
            if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame <= MAX_FRAME:
                raise RequestError("expected a frame number, 0 or more", "frame")
            if method != FRAME_METHOD:
                raise RequestError(f"a frame is for method {FRAME_METHOD!r}", "frame")
        export = export_options(body["export"]) if "export" in body else {}
        return cls(method, frame, export)

    def overrides(self) -> dict[str, dict[str, Any]] | None:
        """Per-stage options for the plan: the completed frame, the export options."""
        out: dict[str, dict[str, Any]] = {}
        if self.frame is not None:
            out[FRAME_METHOD] = {"frame": self.frame}
        if self.export:
            out["export"] = dict(self.export)
        return out or None


FRAME_METHOD = "mcc"  # the method whose stage of the same name takes a frame


def job_json(job: Job, typical: dict[str, float] | None = None, now: float | None = None) -> dict[str, Any]:
    """The job as the phone page and API clients see it: ``overall`` and ``eta_s`` are the whole
    job's (core.eta, as the desktop's Jobs view and ``scanbridge jobs`` show them); ``fraction``
    and ``step_eta_s`` are the current step's; ``size`` is what its export says of the model's
    size (``estimated``: a guess, the user should set the real size), None before it exports."""
    p = job.progress
    size = job_model_size(job)
    est = estimate(job, time.time() if now is None else now, typical)
    return {
        "id": job.id,
        "state": job.state,
        "error": job.error,
        "progress": {
            "step": p.step_index, "stage": p.stage, "fraction": p.fraction, "overall": est.fraction,
            "eta_s": est.eta_s if job.state == "running" else None, "step_eta_s": p.eta_s,
            "message": p.message, "liveness": liveness(est),
        },
        "steps": [{"stage": s.stage, "state": s.state, "fraction": s.fraction} for s in job.steps],
        "size": size.to_json() if size is not None else None,
    }


class JobLink:
    """The server's view of the job queue of its workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.queue = JobQueue(workspace)

    def submit(self, capture_id: str, steps: list[Step]) -> dict[str, Any]:
        # validate=False: checking configs would import the stages (recon) into the server.
        return job_json(self.queue.submit(capture_id, steps, validate=False))

    def latest(self, capture_id: str) -> dict[str, Any] | None:
        jobs = self.queue.list(capture_id=capture_id, limit=1)
        return job_json(jobs[0], self.typical()) if jobs else None

    def typical(self) -> dict[str, float]:
        return typical_durations(self.queue.list(limit=HISTORY_JOBS))

    def export_run_dir(self, capture_id: str) -> Path | None:
        """The run folder of the export step of the capture's latest finished job."""
        for job in self.queue.list(state="done", capture_id=capture_id, limit=1):
            for step in job.steps:
                if step.stage == "export" and step.run_dir is not None:
                    return step.run_dir
        return None

    def events(self, job_id: int, after_id: int = 0, limit: int = 200) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.queue.events(job_id, after_id, limit)]


def start_worker(workspace: Workspace, stop: threading.Event) -> threading.Thread:
    """Run core's job worker in a thread until ``stop`` is set (stages run in child processes)."""

    def run() -> None:
        Worker(JobQueue(workspace)).run_forever(stop)

    thread = threading.Thread(target=run, name="scanbridge-job-worker", daemon=True)
    thread.start()
    return thread
