"""Done-when for splats, in the default suite: a splat job (plan, splat, mesh, export, publish;
each stage in a child process, as the server and the app run it) on a tiny synthetic capture is
cancelled while it trains and resumed to the planned final step; it reports PSNR as it learns
(held-out PSNR rises by at least 6 dB); its USDZ passes the ARKit checker at the object's true
height within 5 %.

Known gap, measured and left open: the footprint comes out 5.6-7.4 % wide on x (the 14 cm side).
The excess is a fin of the mesh at the base on the shadowed side (x < -0.07 m at y < 3 cm) plus
the hidden underside closing a few mm below the ground; fusing only the object's mask pixels or
halving the TSDF truncation did not remove it (recon.splat.mesh), so the sides are held to 8 %."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from core.jobs import JobQueue
from core.runner import Runner
from core.submit import method_job
from core.worker import Worker
from core.workspace import Workspace
from recon.export.check import check_usdz
from recon.ingest import ingest
from recon.sample.dataset import write_capture_folder
from recon.sample.scene import OBJECT_BOUNDS, render_orbit

STEPS = 300  # the preview preset's
# About 80 s of CPU on an idle machine; on the shared 2-core one under load 15 the module took
# over pytest's default 10 minutes.
pytestmark = pytest.mark.timeout(1500)


def _usdz_points(path):
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    mesh = next(UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    return np.array(mesh.GetPointsAttr().Get(), np.float64) * UsdGeom.GetStageMetersPerUnit(stage)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")  # the stage children: 2 shared cores, threads only fight
        return _run_job(tmp_path_factory.mktemp("splat-job"))


def _run_job(root):
    views = render_orbit(16, (160, 120), elevations_deg=(20.0, 45.0), radius_m=0.55)
    src = write_capture_folder(views, root / "src", with_depth=True)
    ws = Workspace(root / "ws")
    capture = ingest(src, ws, name="splat-orbit")
    queue = JobQueue(ws)
    submitted = queue.submit(capture.id, method_job(capture, "splat", "preview"))
    worker = Worker(queue, Runner(grace_s=30.0), heartbeat_s=0.5, progress_interval_s=0.2)

    # Cancel once the training has written its first checkpoint (step 100 of 300).
    thread = threading.Thread(target=worker.run_job, args=(submitted.id,))
    thread.start()
    cancelled = False
    while thread.is_alive():
        thread.join(0.2)
        if not cancelled and any(capture.runs_dir.glob("splat-*/train_checkpoints/step-*.pt")):
            queue.cancel(submitted.id)
            cancelled = True
    first = queue.get(submitted.id)
    queue.resume(submitted.id)
    started = time.time()
    run = worker.run_job(submitted.id)
    return {"capture": capture, "queue": queue, "job": submitted, "first": first, "run": run,
            "cancelled": cancelled, "resumed_at": started}


def test_cancelled_while_training_and_resumed_to_the_planned_step(job):
    assert job["cancelled"] and job["first"].state == "cancelled"
    run = job["run"]
    assert run.job.state == "done", run.job.error
    assert [o.stage for o in run.outcomes] == ["plan", "splat", "mesh", "export", "publish"]
    splat = next(o for o in run.outcomes if o.stage == "splat").result
    assert splat["steps"] == STEPS and 100 <= splat["resumed_from"] < STEPS
    # Only the remaining steps ran after the resume.
    metrics = [e for e in job["queue"].events(job["job"].id, limit=5000) if e.kind == "metric"]
    after = [e.step for e in metrics if e.time >= job["resumed_at"]]
    assert after and min(after) > splat["resumed_from"] and max(after) == STEPS


def test_progress_reports_psnr_and_held_out_psnr_rises_6_db(job):
    events = job["queue"].events(job["job"].id, limit=5000)
    metrics = [e for e in events if e.kind == "metric" and e.stage == "splat"]
    assert metrics and all("psnr" in e.values for e in metrics)
    assert any(e.kind == "preview" and e.stage == "splat" for e in events)
    history = next(o for o in job["run"].outcomes if o.stage == "splat").result["heldout_psnr"]
    (first_step, first), (last_step, last) = history[0], history[-1]
    assert first_step == 0 and last_step == STEPS
    assert last - first >= 6.0, history


def test_usdz_passes_arkit_at_true_size(job):
    capture = job["capture"]
    usdz = capture.exports_dir / "model.usdz"
    report = check_usdz(usdz)
    assert report.passed, (report.errors, report.warnings, report.failed_checks)
    mesh_run = next(o for o in job["run"].outcomes if o.stage == "mesh").run_dir
    placement = json.loads((mesh_run / "placement.json").read_text())
    assert placement["scale"] == "metric"
    matrix = np.array(placement["matrix"])
    pts = _usdz_points(usdz)
    world = (pts - matrix[:3, 3]) @ np.linalg.inv(matrix[:3, :3]).T
    lo, hi = np.array(OBJECT_BOUNDS[0]), np.array(OBJECT_BOUNDS[1])
    size = world.max(axis=0) - world.min(axis=0)
    error = np.abs(size - (hi - lo)) / (hi - lo)
    assert error[1] <= 0.05, (size, hi - lo)  # the height: what sets the scale in AR
    assert np.all(error <= 0.08), (size, hi - lo)  # the footprint: see the known gap above


def test_jobs_show_json_carries_the_psnr_curve_and_the_latest_preview(job, capsys):
    from core.cli import main as scanbridge

    ws = job["capture"].root.parent.parent
    assert scanbridge(["jobs", "--workspace", str(ws), "show", str(job["job"].id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    psnr = [(m["step"], m["values"]["psnr"]) for m in shown["metrics"] if m["stage"] == "splat"]
    history = dict(next(o for o in job["run"].outcomes if o.stage == "splat").result["heldout_psnr"])
    assert psnr[-1] == (STEPS, pytest.approx(history[STEPS], abs=1e-3))
    previews = [p for p in shown["previews"] if p["stage"] == "splat"]
    assert previews[-1]["step"] == STEPS
    with open(previews[-1]["file"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
