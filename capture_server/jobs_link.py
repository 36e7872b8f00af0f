"""How the server hands finished captures to processing: core's job queue, seen as plain JSON.

The plan (which stages run for which mode) lives here; a stage that is not registered yet is
left out rather than queued to fail, and a plan whose first stage is missing queues nothing.
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from core.capture import Manifest
from core.jobs import Job, JobQueue, Step
from core.settings import Settings
from core.stages import STAGE_GROUP
from core.worker import Worker
from core.workspace import Workspace

# Stage names in run order, mirroring recon.pipeline.plan (which the server may not import):
# frames with metric depth and device poses are fused; photos go through SfM and dense stereo.
# Files that arrived as uploads (raw/ only, no frames yet) go through the in-place "ingest" stage
# first (recon.ingest.stage); an uploaded Stray Scanner or Record3D folder is then fused.
FUSION_PLAN = ("fusion", "mesh", "export")
PHOTO_PLAN = ("poses", "mvs", "mesh", "export")
INGEST_STAGE = "ingest"


def uploaded_rgbd_export(raw_dir: Path | None) -> bool:
    """Whether raw/ holds an RGB-D export folder with device poses and metric depth, by the
    files that name one (the server cannot ask recon's readers): Stray Scanner's odometry.csv,
    camera_matrix.csv and depth/, or Record3D's metadata.json with rgbd/. A zipped export is not
    looked into, so it takes the photo plan."""
    if raw_dir is None or not raw_dir.is_dir():
        return False
    roots = [raw_dir, *(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))]
    for root in roots:
        stray = all((root / n).is_file() for n in ("odometry.csv", "camera_matrix.csv"))
        if stray and (root / "depth").is_dir():
            return True
        if (root / "metadata.json").is_file() and (root / "rgbd").is_dir():
            return True
    return False


def registered_stages() -> set[str]:
    """Names from entry-point metadata only: nothing from recon is imported into the server."""
    return {ep.name for ep in entry_points(group=STAGE_GROUP)}


def plan_for(manifest: Manifest, settings: Settings, raw_dir: Path | None = None
             ) -> tuple[list[Step], str | None]:
    """The steps to queue for a finished capture (its uploads in ``raw_dir``), or none and why."""
    if not settings.process_on_finish:
        return [], "processing on finish is turned off in settings"
    frames = manifest.frames
    if frames and manifest.scale == "metric" and all(f.depth and f.pose is not None for f in frames):
        wanted: tuple[str, ...] = FUSION_PLAN
    elif any(f.image for f in frames):
        wanted = PHOTO_PLAN
    elif frames:
        return [], "frames have depth but not every one has a device pose, and there are no photos"
    elif uploaded_rgbd_export(raw_dir):
        wanted = (INGEST_STAGE, *FUSION_PLAN)
    else:
        wanted = (INGEST_STAGE, *PHOTO_PLAN)
    known = registered_stages()
    missing = [name for name in wanted if name not in known]
    if missing:
        return [], f"stage {', '.join(repr(m) for m in missing)} is not installed"
    # Stage options are not agreed with the server yet: every stage runs with its defaults.
    return [Step(name) for name in wanted], None


def job_json(job: Job) -> dict[str, Any]:
    p = job.progress
    return {
        "id": job.id,
        "state": job.state,
        "error": job.error,
        "progress": {
            "step": p.step_index, "stage": p.stage, "fraction": p.fraction, "overall": p.overall,
            "eta_s": p.eta_s, "message": p.message,
        },
        "steps": [{"stage": s.stage, "state": s.state, "fraction": s.fraction} for s in job.steps],
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
        return job_json(jobs[0]) if jobs else None

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
