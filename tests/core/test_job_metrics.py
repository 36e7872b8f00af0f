"""Metric and preview events: from a stage in a child process, batched into the queue, out through
`scanbridge jobs show --json`; previews must be images inside the run folder; old databases upgrade."""

import json
import math
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from stages_for_tests import CountConfig, child_env, make_workspace

from core.errors import ConfigError
from core.jobs import JobQueue, Step
from core.progress import Progress
from core.runner import Runner
from core.stages import StageSpec, execute_stage
from core.worker import Worker

COUNT = "stages_for_tests:COUNT"


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


def test_metrics_and_previews_reach_jobs_show_json_in_few_writes(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    queue = JobQueue(ws)
    n = 150
    job = queue.submit("cap", [Step(COUNT, {"to": n, "every": 50, "preview_every": 50})])
    writes = []
    real_write = queue._write

    def counting_write():
        writes.append(1)
        return real_write()

    queue._write = counting_write
    heard = []
    queue.add_listener(heard.append)
    run = Worker(queue, Runner(), heartbeat_s=60.0, progress_interval_s=0.3).run_job(job.id)
    assert run.job.state == "done", run.job.error
    # 150 progress + 150 metric events + 3 previews + log lines, stored in a handful of transactions
    assert len(writes) < 20
    assert [e.step for e in heard if e.kind == "metric"] == list(range(1, n + 1))  # live, each one

    shown = subprocess.run(
        [sys.executable, "-m", "core.cli", "jobs", "--workspace", str(ws.root), "show", str(job.id),
         "--json"],
        capture_output=True, text=True, env=child_env(), timeout=120, check=True,
    )
    data = json.loads(shown.stdout)
    assert data["job"]["state"] == "done"
    metrics = data["metrics"]
    assert [m["step"] for m in metrics] == list(range(1, n + 1))
    assert metrics[-1]["values"] == {"count": float(n), "remaining": 0.0}
    assert all(m["stage"] == "count" and m["step_index"] == 0 for m in metrics)
    previews = data["previews"]
    assert [p["step"] for p in previews] == [50, 100, 150]
    run_dir = run.outcomes[0].run_dir
    for p in previews:
        assert p["path"] == f"runs/{run_dir.name}/previews/count-{p['step']}.png"
        assert open(p["file"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert any("count started" in line["message"] for line in data["log"])
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == list(range(1, n + 1))


def test_a_preview_outside_the_run_folder_or_not_an_image_is_not_shown(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\n")

    def run(ctx, cfg):
        (ctx.out_dir / "notes.txt").write_text("hi")
        ctx.progress.preview(outside, step=1)
        ctx.progress.preview("../../../../secret.png", step=2)
        ctx.progress.preview(ctx.out_dir / "notes.txt", step=3)
        ctx.progress.preview("missing.png", step=4)
        return {}

    events = []
    execute_stage(ws.capture("cap"), StageSpec("peek", CountConfig, run), sink=events.append)
    assert [e for e in events if e.kind == "preview"] == []
    warnings = [e.message for e in events if e.level == "warning"]
    assert len(warnings) == 4
    assert "outside the run folder" in warnings[0] and "outside the run folder" in warnings[1]
    assert "is not one of" in warnings[2] and "does not exist" in warnings[3]


@pytest.mark.parametrize("values", [{"loss": "0.1"}, {"loss": True}, {"loss": None}, {"": 1.0}, {}])
def test_a_metric_must_be_named_numbers(values):
    with pytest.raises(ConfigError):
        Progress("s").metric(1, values)


def test_a_diverged_value_is_left_out_with_a_warning_not_an_error():
    heard = []
    Progress("s", heard.append).metric(3, loss=math.nan, psnr=np.float32(21.5), big=10**400, neg=-math.inf)
    (warning,) = [e for e in heard if e.kind == "log"]
    assert warning.level == "warning" and all(name in warning.message for name in ("loss", "big", "neg"))
    (metric,) = [e for e in heard if e.kind == "metric"]
    assert metric.step == 3 and metric.values == {"psnr": 21.5}
    heard.clear()
    Progress("s", heard.append).metric(4, loss=math.inf)
    assert [e.kind for e in heard] == ["log"]


def test_a_schema_1_database_gains_the_metric_and_wiring_columns(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    db = sqlite3.connect(ws.jobs_db)
    db.executescript(
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL, "
        "step_index INTEGER, kind TEXT NOT NULL, stage TEXT NOT NULL, fraction REAL, eta_s REAL, "
        "message TEXT NOT NULL, level TEXT NOT NULL, time REAL NOT NULL); "
        "CREATE TABLE steps (job_id INTEGER NOT NULL, idx INTEGER NOT NULL, stage TEXT NOT NULL, "
        "config TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', name TEXT, run_dir TEXT, result TEXT, "
        "reused INTEGER NOT NULL DEFAULT 0, fraction REAL, eta_s REAL, message TEXT NOT NULL DEFAULT '', "
        "runs INTEGER NOT NULL DEFAULT 0, started REAL, ended REAL, PRIMARY KEY (job_id, idx)); "
        "PRAGMA user_version = 1;")
    db.close()
    queue = JobQueue(ws)
    job = queue.submit("cap", [Step(COUNT, inputs={"poses": "sfm"})], validate=False)
    assert queue.get(job.id).steps[0].inputs == {"poses": "sfm"}
    queue.record_event(job.id, 0, _metric_event())
    (metric,) = queue.events(job.id, kinds=["metric"])
    assert metric.step == 7 and metric.values == {"psnr": 21.5}


def _metric_event():
    heard = []
    Progress("count", heard.append).metric(7, psnr=21.5)
    return heard[0]
