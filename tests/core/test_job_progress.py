"""The whole job's progress never goes back when its plan step expands into more steps."""

from pathlib import Path

import pytest
from stages_for_tests import make_workspace

from core.jobs import JobQueue, Step
from core.progress import ProgressEvent
from core.stages import StageOutcome


@pytest.mark.parametrize("expanded", [1, 4, 9])
def test_overall_progress_only_goes_up_through_ingest_plan_and_the_planned_steps(tmp_path, expanded):
    ws = make_workspace(tmp_path / "ws")
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step("ingest"), Step("plan", {"method": "auto"})], validate=False)
    lease = queue.claim(job_id=job.id)
    seen = []

    def run_step(index, stage, next_steps=None):
        queue.start_step(lease, index)
        seen.append(queue.get(job.id).progress.overall)
        for fraction in (0.25, 0.5, 1.0):
            queue.record_event(job.id, index, ProgressEvent("progress", stage, fraction, time=1.0))
            seen.append(queue.get(job.id).progress.overall)
        run_dir = ws.capture("cap").runs_dir / f"{stage}-{index}"
        queue.finish_step(lease, index, StageOutcome(stage, Path(run_dir), {}), next_steps)
        seen.append(queue.get(job.id).progress.overall)

    run_step(0, "ingest")
    run_step(1, "plan", [Step(f"stage{i}") for i in range(expanded)])
    assert len(queue.get(job.id).steps) == 2 + expanded
    for i in range(expanded):
        run_step(2 + i, f"stage{i}")
    queue.finish_job(lease, "done")
    seen.append(queue.get(job.id).progress.overall)

    assert all(b >= a for a, b in zip(seen, seen[1:], strict=False)), seen
    assert 0.0 < seen[1] < 0.25 and seen[-2] == pytest.approx(1.0) and seen[-1] == 1.0

    queue.retry(job.id)  # from the start again: the fixed part is forgotten
    assert queue.get(job.id).progress.overall == 0.0
