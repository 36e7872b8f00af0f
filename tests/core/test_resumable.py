"""Resumable stages: checkpoints survive SIGKILL, cancel and restart; the next attempt continues."""

import os
import random
import signal
import threading

import pytest
from stages_for_tests import child_env, make_workspace

from core.checkpoints import Checkpoints
from core.jobs import JobQueue, Step
from core.runner import Runner
from core.stages import StageSpec, execute_stage, read_status
from core.worker import Worker

COUNT = "stages_for_tests:COUNT"


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


def test_a_checkpoint_is_seen_only_once_complete_and_old_ones_go(tmp_path):
    cps = Checkpoints(tmp_path / "cp", keep=2)
    assert cps.latest() is None
    cps.save_json(3, {"count": 3})
    with pytest.raises(RuntimeError), cps.writing(7) as folder:
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed while writing")
    assert cps.latest().step == 3 and cps.latest().read_json() == {"count": 3}
    cps.save_json(5, {"count": 5})
    cps.save_json(9, {"count": 9})
    assert [c.step for c in cps.all()] == [5, 9]
    # a temporary folder left by a SIGKILL is swept by the next attempt
    (tmp_path / "cp" / ".writing-000000011").mkdir()
    swept = Checkpoints(tmp_path / "cp")
    assert [c.step for c in swept.all()] == [5, 9]
    swept.sweep_partial()
    assert not (tmp_path / "cp" / ".writing-000000011").exists()


def _last_checkpoint(capture):
    runs = list(capture.runs_dir.glob("count-*"))
    if len(runs) != 1:
        return None
    latest = Checkpoints(runs[0] / "checkpoints").latest()
    return None if latest is None else latest.step


def test_count_to_n_survives_random_sigkills_and_a_cancel(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    capture = ws.capture("cap")
    queue = JobQueue(ws)
    n, starts = 60, tmp_path / "starts.txt"
    job = queue.submit("cap", [Step(COUNT, {"to": n, "every": 3, "tick_s": 0.03, "starts": str(starts)})])
    rng = random.Random(20261202)
    targets = sorted(rng.sample(range(4, n - 4), 4))
    interruptions = [("kill", t) for t in targets[:2]] + [("cancel", targets[2]), ("kill", targets[3])]
    worker = Worker(queue, Runner(grace_s=5.0), heartbeat_s=0.05, progress_interval_s=0.0)
    saved_at_stop = []
    for how, target in interruptions:
        thread = threading.Thread(target=worker.run_job, args=(job.id,))
        thread.start()
        stopped = False
        while thread.is_alive():
            thread.join(0.01)
            seen = _last_checkpoint(capture)
            if not stopped and seen is not None and seen >= target:
                if how == "kill":
                    os.kill(queue.get(job.id).child_pid, signal.SIGKILL)
                else:
                    queue.cancel(job.id)
                stopped = True
        assert stopped, f"the count ended before the {how} at {target}: {queue.get(job.id).error}"
        ended = queue.get(job.id)
        assert ended.state == ("failed" if how == "kill" else "cancelled"), ended.error
        (run_dir,) = capture.runs_dir.glob("count-*")
        assert read_status(run_dir)["state"] == ("running" if how == "kill" else "interrupted")
        saved_at_stop.append(_last_checkpoint(capture))
        queue.resume(job.id)

    final = worker.run_job(job.id)
    assert final.job.state == "done", final.job.error
    assert final.outcomes[0].result == {"count": n}
    (run_dir,) = capture.runs_dir.glob("count-*")
    assert read_status(run_dir)["attempt"] == 5
    assert Checkpoints(run_dir / "checkpoints").latest().read_json() == {"count": n}
    # each attempt began exactly where the last checkpoint before the stop left it
    attempts = [tuple(map(int, line.split())) for line in starts.read_text().splitlines()]
    assert attempts == [(1, 0)] + [(i + 2, saved) for i, saved in enumerate(saved_at_stop)]
    assert all(s % 3 == 0 and s >= t for s, (_, t) in zip(saved_at_stop, interruptions, strict=True))
    logs = [e.message for e in queue.events(job.id) if e.kind == "log"]
    assert any(f"from checkpoint {saved_at_stop[-1]} (attempt 5" in m for m in logs)


def test_a_non_resumable_stage_still_starts_clean(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    capture = ws.capture("cap")
    calls = []

    def run(ctx, cfg):
        calls.append((ctx.checkpoints, sorted(p.name for p in ctx.out_dir.iterdir())))
        (ctx.out_dir / "partial.txt").write_text("half")
        if len(calls) == 1:
            raise RuntimeError("crash")
        return {}

    from stages_for_tests import CountConfig

    spec = StageSpec(name="plain", config_cls=CountConfig, run=run)
    with pytest.raises(RuntimeError):
        execute_stage(capture, spec)
    execute_stage(capture, spec)
    assert calls[1][0] is None and "partial.txt" not in calls[1][1]
