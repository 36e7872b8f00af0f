"""Whole-job ETA (core.eta) on jobs from the real queue, their timelines set by hand: the estimate
weights steps by their stage's typical duration, follows the job's own pace, counts down between
reports, and a quiet job says whether its worker is still alive."""

from __future__ import annotations

import dataclasses

import pytest
from stages_for_tests import make_workspace

from core.eta import TYPICAL_S, estimate, liveness, typical_durations
from core.jobs import Job, JobQueue, Step

PLAN = ("poses", "mvs", "mesh", "export")
T0 = 1_000_000.0


@pytest.fixture
def queued(tmp_path) -> Job:
    queue = JobQueue(make_workspace(tmp_path / "ws"))
    return queue.submit("cap", [Step(s) for s in PLAN], validate=False)


def at(job: Job, durations: list[float], current: int, fraction: float, reported: float,
       heartbeat: float | None = None) -> Job:
    """``job`` running its step ``current`` (``fraction`` done at time ``reported``); the steps
    before it took ``durations`` seconds each, one after the other from T0."""
    steps, t = [], T0
    for step in job.steps:
        if step.index < current:
            steps.append(dataclasses.replace(step, state="done", fraction=1.0, started=t,
                                             ended=t + durations[step.index]))
            t += durations[step.index]
        elif step.index == current:
            steps.append(dataclasses.replace(step, state="running", fraction=fraction, started=t))
        else:
            steps.append(step)
    progress = dataclasses.replace(job.progress, step_index=current, stage=PLAN[current], fraction=fraction)
    return dataclasses.replace(job, state="running", steps=tuple(steps), started=T0, updated=reported,
                               heartbeat=reported if heartbeat is None else heartbeat, progress=progress)


def test_a_job_at_a_steady_pace_gets_its_true_remaining_time(queued):
    # Every stage takes 3x its typical time: the truth is known at every moment.
    true = [3 * TYPICAL_S[s] for s in PLAN]  # 30, 321, 120, 9 seconds
    start_mvs = T0 + true[0]
    for elapsed in (32.1, 160.5, 288.9):  # mvs 10%, 50%, 90% done, reported just now
        job = at(queued, true, 1, elapsed / true[1], start_mvs + elapsed)
        est = estimate(job, now=start_mvs + elapsed)
        truth = (true[1] - elapsed) + true[2] + true[3]
        assert est.eta_s == pytest.approx(truth, rel=1e-6)
        done = (TYPICAL_S["poses"] + TYPICAL_S["mvs"] * elapsed / true[1]) / sum(TYPICAL_S[s] for s in PLAN)
        assert est.fraction == pytest.approx(done)
    # 2% of a 4-step job by equal shares would say nothing about the 3 minutes left; by typical
    # shares the bar is honest: mvs is two thirds of the job.
    assert estimate(at(queued, true, 2, 0.0, T0 + 351), now=T0 + 351).fraction == pytest.approx(117 / 160)


def test_the_estimate_counts_down_between_reports(queued):
    true = [20.0, 0, 0, 0]
    job = at(queued, true, 1, 0.25, reported=T0 + 20 + 50)  # mvs: a quarter in 50 s -> 200 s
    first = estimate(job, now=T0 + 20 + 50)
    later = estimate(job, now=T0 + 20 + 60)
    assert later.eta_s == pytest.approx(first.eta_s - 10.0)
    # by hand: pace (20 + 200) / (10 + 107) typical seconds; 150 s of mvs left, then mesh and export
    pace = 220.0 / 117.0
    assert first.eta_s == pytest.approx(150.0 + (40 + 3) * pace)


def test_no_pace_yet_gives_no_number(queued):
    job = at(queued, [], 0, 0.0, reported=T0)
    assert estimate(job, now=T0 + 5).eta_s is None


def test_durations_are_learned_from_finished_jobs(queued):
    done = at(queued, [4.0, 50.0, 20.0, 1.0], 3, 0.5, T0 + 80)
    steps = list(done.steps)
    steps[3] = dataclasses.replace(steps[3], state="done", ended=steps[3].started + 1.0)
    learned = typical_durations([dataclasses.replace(done, state="done", steps=tuple(steps))])
    assert (learned["poses"], learned["mvs"], learned["mesh"], learned["export"]) == (4.0, 50.0, 20.0, 1.0)
    assert learned["fusion"] == TYPICAL_S["fusion"]  # never seen here: the default


def test_a_quiet_job_says_whether_its_worker_is_alive(queued):
    job = at(queued, [30.0, 0, 0, 0], 1, 0.3, reported=T0 + 100, heartbeat=T0 + 139.5)
    assert liveness(estimate(job, now=T0 + 105)) == ""  # it reported 5 s ago
    assert liveness(estimate(job, now=T0 + 140)) == "working… last update 40 s ago"
    gone = estimate(job, now=T0 + 300)
    assert liveness(gone).startswith("no sign of life: last update 3 min ago, no heartbeat for 2 min")
