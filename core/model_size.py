"""What a capture's latest model says about its size, read from the job that made it: the export
step's result (recon.export: ``scale``, ``size_estimated``, ``longest_side_m``), the same facts the
USDZ carries in its customLayerData. Reads only core.jobs records, so the server, the CLI and the
desktop can all use it without importing recon."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.jobs import Job, JobQueue

EXPORT_STAGE = "export"
PLAN_STAGE = "plan"


@dataclass(frozen=True)
class ModelSize:
    scale: str  # metric, aruco, user, estimated or unscaled
    estimated: bool  # the size is a guess: the user should set the real size
    longest_side_m: float | None

    def to_json(self) -> dict[str, Any]:
        return {"scale": self.scale, "estimated": self.estimated, "longest_side_m": self.longest_side_m}


def job_model_size(job: Job) -> ModelSize | None:
    """The size of the model ``job``'s finished export step wrote, or None when it has none."""
    for step in reversed(job.steps):
        if step.stage != EXPORT_STAGE or step.state != "done" or not isinstance(step.result, dict):
            continue
        scale = step.result.get("scale")
        if not isinstance(scale, str):
            return None
        side = step.result.get("longest_side_m")
        finite = isinstance(side, (int, float)) and not isinstance(side, bool) and math.isfinite(side)
        return ModelSize(scale, bool(step.result.get("size_estimated", scale in ("estimated", "unscaled"))),
                         float(side) if finite else None)
    return None


def latest_model_size(queue: JobQueue, capture_id: str) -> ModelSize | None:
    """The size of the capture's latest finished model (its latest done job with an export)."""
    for job in queue.list(state="done", capture_id=capture_id, limit=20):
        size = job_model_size(job)
        if size is not None:
            return size
    return None


def latest_plan(queue: JobQueue, capture_id: str) -> tuple[str, str] | None:
    """The method and detail of the capture's latest job that had a plan step."""
    for job in queue.list(capture_id=capture_id, limit=20):
        for step in job.steps:
            if step.stage == PLAN_STAGE and isinstance(step.config.get("method"), str) \
                    and isinstance(step.config.get("detail"), str):
                return step.config["method"], step.config["detail"]
    return None
