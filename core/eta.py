"""Whole-job progress and ETA from the job's steps, and whether a quiet job is still alive.

A step's progress only says how far that step is. The job's share of work done weights each
step by its stage's typical duration (learned from this workspace's finished jobs when there are
some, else the defaults below, from docs/benchmarks.md's CPU runs); the job's pace so far (the
seconds its steps took against their typical durations) turns what is left into seconds. The
estimate counts down between progress reports instead of freezing at the last one.

Reads only Job's public fields (core.jobs), so it works for the CLI, the server and the GUI.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.jobs import Job

# Typical seconds of each stage on a medium capture, CPU only (docs/benchmarks.md, DTU scan24 and
# the Stray fusion run). Only their ratios matter: the job's own pace scales them.
TYPICAL_S: dict[str, float] = {
    "ingest": 5.0, "poses": 10.0, "mvs": 107.0, "fusion": 20.0, "mesh": 40.0, "texture": 30.0,
    "export": 3.0,
}
UNKNOWN_STAGE_S = 20.0
MIN_FRACTION = 0.02  # below this a step's own progress is too little to extrapolate from
QUIET_AFTER_S = 10.0  # a running job that has not reported for this long is shown as quiet
HEARTBEAT_STALE_S = 30.0  # a worker that has not renewed its lease for this long may be gone


@dataclass(frozen=True)
class JobEstimate:
    fraction: float  # of the whole job, 0..1, steps weighted by their typical duration
    eta_s: float | None  # seconds left for the whole job; None until there is a pace to go by
    quiet_s: float | None  # seconds since the running job last reported anything
    heartbeat_age_s: float | None  # seconds since its worker last renewed the lease


def _stage_key(stage: str) -> str:
    return stage.rsplit(":", 1)[-1].lower() if ":" in stage else stage


def typical_durations(history: Iterable[Job] = ()) -> dict[str, float]:
    """Seconds per stage: the median of finished, not reused steps of done jobs in ``history``,
    else the defaults."""
    seen: dict[str, list[float]] = {}
    for job in history:
        if job.state != "done":
            continue
        for step in job.steps:
            if step.state == "done" and not step.reused and step.started and step.ended:
                seen.setdefault(_stage_key(step.stage), []).append(max(step.ended - step.started, 0.0))
    out = dict(TYPICAL_S)
    for stage, durations in seen.items():
        out[stage] = max(statistics.median(durations), 0.1)
    return out


def _weight(stage: str, typical: dict[str, float]) -> float:
    return typical.get(_stage_key(stage), UNKNOWN_STAGE_S)


def estimate(job: Job, now: float, typical: dict[str, float] | None = None) -> JobEstimate:
    """The job's weighted share done and seconds left at wall-clock time ``now``."""
    typical = typical or TYPICAL_S
    weights = [_weight(s.stage, typical) for s in job.steps]
    total = sum(weights) or 1.0
    running = job.state == "running"
    quiet = max(now - job.updated, 0.0) if running else None
    heartbeat = max(now - job.heartbeat, 0.0) if running and job.heartbeat else None
    if job.state == "done":
        return JobEstimate(1.0, 0.0, None, None)

    done_weight = spent = spent_weight = 0.0
    current_remaining: float | None = None
    current_weight = current_fraction = 0.0
    later_weight = 0.0
    current = job.progress.step_index
    for step, weight in zip(job.steps, weights, strict=True):
        if step.finished:
            done_weight += weight
            if not step.reused and step.started and step.ended:
                spent += max(step.ended - step.started, 0.0)
                spent_weight += weight
        elif running and step.index == current and step.started:
            current_weight = weight
            current_fraction = min(max(step.fraction or 0.0, 0.0), 1.0)
            if current_fraction >= MIN_FRACTION:
                # the step's total from its pace up to its last report; it counts down from there
                reported_at = max(job.updated, step.started)
                step_total = (reported_at - step.started) / current_fraction
                current_remaining = max(step_total - (now - step.started), 0.0)
                spent += step_total
                spent_weight += weight
        else:
            later_weight += weight
    fraction = min((done_weight + current_weight * current_fraction) / total, 1.0)
    if not running:
        return JobEstimate(fraction, None, None, None)
    if spent_weight <= 0.0:
        return JobEstimate(fraction, None, quiet, heartbeat)  # no pace yet: nothing has progressed
    pace = spent / spent_weight  # seconds this job takes per typical second
    if current_remaining is None:
        current_remaining = current_weight * pace * (1.0 - current_fraction)
    return JobEstimate(fraction, current_remaining + later_weight * pace, quiet, heartbeat)


def liveness(est: JobEstimate, quiet_after_s: float = QUIET_AFTER_S,
             stale_after_s: float = HEARTBEAT_STALE_S) -> str:
    """"" while a running job reports; else how long it has been quiet and whether its worker is
    still there (the heartbeat): "working… last update 40 s ago"."""
    if est.quiet_s is None or est.quiet_s < quiet_after_s:
        return ""
    quiet = _ago(est.quiet_s)
    if est.heartbeat_age_s is not None and est.heartbeat_age_s < stale_after_s:
        return f"working… last update {quiet} ago"
    beat = "no heartbeat" if est.heartbeat_age_s is None else f"no heartbeat for {_ago(est.heartbeat_age_s)}"
    return f"no sign of life: last update {quiet} ago, {beat} (is the worker still running?)"


def _ago(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h"
