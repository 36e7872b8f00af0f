"""The whole job's share done never goes backwards when its plan step expands into the method's
stages (core.eta on the real queue: the plan step's steps are added by finish_step, as the worker
does), whatever the method adds: the usual stages, one short step, or many stages eta has no
typical duration for."""

from __future__ import annotations

import time

import pytest
from stages_for_tests import make_workspace

from core.eta import estimate
from core.jobs import JobQueue, Step
from core.progress import ProgressEvent
from core.stages import StageOutcome

USUAL = ["poses", "mvs", "fusion", "mesh", "texture", "export", "publish"]
SHORT = ["publish"]
UNKNOWN = [f"neural_{i}" for i in range(15)] + ["publish"]


def _report(queue: JobQueue, job_id: int, index: int, stage: str, fraction: float) -> None:
    event = ProgressEvent("progress", stage, fraction, None, "", "info", time.time())
    queue.record_event(job_id, index, event)


@pytest.mark.parametrize("added", [USUAL, SHORT, UNKNOWN], ids=["usual", "short", "unknown stages"])
def test_the_share_done_never_goes_backwards_when_the_plan_adds_steps(tmp_path, added):
    queue = JobQueue(make_workspace(tmp_path / "ws"))
    job = queue.submit("cap", [Step("ingest"), Step("plan", {"method": "auto"})], validate=False)
    lease = queue.claim()
    assert lease is not None
    seen: list[float] = []

    def look() -> None:
        seen.append(estimate(queue.get(job.id), now=time.time()).fraction)

    look()
    queue.start_step(lease, 0)
    for f in (0.3, 0.9):
        _report(queue, job.id, 0, "ingest", f)
        look()
    queue.finish_step(lease, 0, StageOutcome("ingest", tmp_path / "run0"))
    look()
    queue.start_step(lease, 1)
    look()
    queue.finish_step(lease, 1, StageOutcome("plan", tmp_path / "run1"), [Step(s) for s in added])
    after_plan = len(seen)
    look()
    for index, stage in enumerate(added, start=2):
        queue.start_step(lease, index)
        look()
        _report(queue, job.id, index, stage, 0.5)
        look()
        queue.finish_step(lease, index, StageOutcome(stage, tmp_path / f"run{index}"))
        look()
    queue.finish_job(lease, "done")
    look()

    assert seen[-1] == 1.0 and 0.0 < seen[after_plan - 1] < 1.0
    drops = [(i, a, b) for i, (a, b) in enumerate(zip(seen, seen[1:], strict=False)) if b < a - 1e-12]
    assert not drops, f"the share done went back: {seen}"
    assert seen[after_plan] >= seen[after_plan - 1]  # the moment the plan expanded
