import json
from dataclasses import dataclass

import pytest

from core.capture import CaptureFolder
from core.errors import Cancelled, ConfigError, NotFoundError, StageError
from core.progress import CancelToken, Progress
from core.stages import StageSpec, execute_stage, is_done, read_status


@dataclass(frozen=True)
class CountConfig:
    n: int = 3
    fail: bool = False


def _count_run(ctx, cfg):
    calls = ctx.capture.root / "calls.txt"
    calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
    for i in range(cfg.n):
        ctx.cancel.check()
        ctx.progress.update((i + 1) / cfg.n, f"step {i}")
    if cfg.fail:
        raise StageError("too few frames registered (2 of 50)")
    (ctx.out_dir / "out.txt").write_text(str(cfg.n))
    return {"n": cfg.n}


COUNT = StageSpec(name="count", config_cls=CountConfig, run=_count_run)
NEEDS = StageSpec(name="needs", config_cls=CountConfig, run=_count_run, requires=("count",))


def test_run_is_hashed_reused_and_remade_on_change(tmp_path):
    cap = CaptureFolder(tmp_path)
    events = []
    a = execute_stage(cap, COUNT, {"n": 3}, sink=events.append)
    assert a.run_dir.name.startswith("count-") and not a.reused
    assert (a.run_dir / "out.txt").read_text() == "3"
    assert json.loads((a.run_dir / "config.json").read_text())["config"] == {"n": 3, "fail": False}
    assert read_status(a.run_dir)["result"] == {"n": 3}
    assert "finished" in (a.run_dir / "log.txt").read_text()
    fractions = [e.fraction for e in events if e.kind == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    b = execute_stage(cap, COUNT, {"n": 3})
    assert b.reused and b.run_dir == a.run_dir and b.result == {"n": 3}
    assert (tmp_path / "calls.txt").read_text() == "x"  # not run twice

    c = execute_stage(cap, COUNT, {"n": 4})
    assert c.run_dir != a.run_dir and not c.reused


def test_upstream_change_changes_downstream_folder(tmp_path):
    cap = CaptureFolder(tmp_path)
    up1 = execute_stage(cap, COUNT, {"n": 1}).run_dir
    up2 = execute_stage(cap, COUNT, {"n": 2}).run_dir
    d1 = execute_stage(cap, NEEDS, {}, inputs={"count": up1}).run_dir
    d2 = execute_stage(cap, NEEDS, {}, inputs={"count": up2}).run_dir
    assert d1 != d2
    with pytest.raises(ConfigError, match="needs the output of count"):
        execute_stage(cap, NEEDS, {})


def test_failure_is_recorded_and_rerun_starts_clean(tmp_path):
    cap = CaptureFolder(tmp_path)
    with pytest.raises(StageError, match="too few frames"):
        execute_stage(cap, COUNT, {"fail": True})
    (run_dir,) = cap.runs_dir.iterdir()
    status = read_status(run_dir)
    assert status["state"] == "failed" and "too few frames" in status["error"]
    assert not is_done(run_dir)
    (run_dir / "stale.txt").write_text("left by the failed run")
    with pytest.raises(StageError):
        execute_stage(cap, COUNT, {"fail": True})
    assert not (run_dir / "stale.txt").exists()


def test_cancel_marks_run_cancelled(tmp_path):
    cap = CaptureFolder(tmp_path)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        execute_stage(cap, COUNT, {}, cancel=token)
    (run_dir,) = cap.runs_dir.iterdir()
    assert read_status(run_dir)["state"] == "cancelled"


def test_bad_config_and_unknown_stage_are_named(tmp_path):
    cap = CaptureFolder(tmp_path)
    with pytest.raises(ConfigError, match="count.colour"):
        execute_stage(cap, COUNT, {"colour": 1})
    with pytest.raises(NotFoundError, match="no-such-stage"):
        execute_stage(cap, "no-such-stage", {})
    assert not cap.runs_dir.exists()


def test_progress_sub_ranges_and_eta():
    now = [0.0]
    events = []
    p = Progress("poses", events.append, clock=lambda: now[0])
    now[0] = 10.0
    p.sub(0.5, 1.0).update(0.5)
    ev = events[-1]
    assert ev.fraction == pytest.approx(0.75)
    assert ev.eta_s == pytest.approx(10.0 * 0.25 / 0.75)
