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
    "export": 3.0, "plan": 0.5, "publish": 1.0,
}
# What an unexpanded plan step stands for: the stages a method may expand it into. The job's
# share done counts the steps after the plan against this fixed weight, so the bar never goes
# backwards when the plan step adds the method's steps (core.submit).
PLAN_STAGE = "plan"
PLANNED_STAGES = ("poses", "mvs", "fusion", "mesh", "texture", "export", "publish")
UNKNOWN_STAGE_S = 20.0
MIN_FRACTION = 0.02  # below this a step's own progress is too little to extrapolate from
QUIET_AFTER_S = 10.0  # a running job that has not reported for this long is shown as quiet
HEARTBEAT_STALE_S = 30.0  # a worker that has not renewed its lease for this long may be gone
HISTORY_JOBS = 200  # the latest jobs whose finished steps give the stages' typical durations


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
    running = job.state == "running"
    quiet = max(now - job.updated, 0.0) if running else None
    heartbeat = max(now - job.heartbeat, 0.0) if running and job.heartbeat else None
    if job.state == "done":
        return JobEstimate(1.0, 0.0, None, None)

    spent = spent_weight = 0.0
    current_remaining: float | None = None
    current_weight = current_fraction = 0.0
    later_weight = 0.0
    current = job.progress.step_index
    for step, weight in zip(job.steps, weights, strict=True):
        if step.finished:
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
    fraction = _share_done(job, weights, current_fraction if current_weight else 0.0, typical)
    if not running:
        return JobEstimate(fraction, None, None, None)
    if spent_weight <= 0.0:
        return JobEstimate(fraction, None, quiet, heartbeat)  # no pace yet: nothing has progressed
    if _unexpanded_plan(job) is not None:
        later_weight += _planned_weight(typical)  # the stages the plan step has still to add
    pace = spent / spent_weight  # seconds this job takes per typical second
    if current_remaining is None:
        current_remaining = current_weight * pace * (1.0 - current_fraction)
    return JobEstimate(fraction, current_remaining + later_weight * pace, quiet, heartbeat)


def _unexpanded_plan(job: Job) -> int | None:
    """The index of the job's plan step while it has not expanded yet (not finished)."""
    for step in job.steps:
        if _stage_key(step.stage) == PLAN_STAGE and not step.finished:
            return step.index
    return None


def _planned_weight(typical: dict[str, float]) -> float:
    return sum(_weight(stage, typical) for stage in PLANNED_STAGES)


def _share_done(job: Job, weights: list[float], current_fraction: float,
                typical: dict[str, float]) -> float:
    """Weighted share of the job done. Steps after a plan step (or, before it expands, what it
    stands for) weigh ``_planned_weight`` together, whatever stages the plan added."""
    current = job.progress.step_index if job.state == "running" else None
    done = [w if s.finished else (w * current_fraction if s.index == current else 0.0)
            for s, w in zip(job.steps, weights, strict=True)]
    plan = next((s.index for s in job.steps if _stage_key(s.stage) == PLAN_STAGE), None)
    if plan is None:
        return min(sum(done) / (sum(weights) or 1.0), 1.0)
    head_weight, head_done = sum(weights[:plan + 1]), sum(done[:plan + 1])
    planned = _planned_weight(typical)
    tail_weight, tail_done = sum(weights[plan + 1:]), sum(done[plan + 1:])
    if not job.steps[plan].finished:
        tail_share = 0.0
    elif tail_weight > 0.0:
        tail_share = planned * tail_done / tail_weight
    else:
        tail_share = planned  # the plan added nothing: all that is left is done
    return min((head_done + tail_share) / (head_weight + planned), 1.0)


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
