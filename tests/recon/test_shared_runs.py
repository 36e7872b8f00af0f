"""A job queued the server's way (ingest an upload, then plan) and one queued the CLI's way (plan
only) on the same capture share their SfM run: the real stages in real worker children."""

import json
import shutil

import cv2
import pytest

from core.capture import CaptureFolder, Manifest, utc_now
from core.jobs import JobQueue
from core.runner import Runner
from core.stages import load_stage, run_dir_for, wired_inputs
from core.submit import method_job
from core.worker import Worker
from core.workspace import Workspace
from recon.sample import render_orbit


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    views = render_orbit(12, (480, 360))
    for k, i in enumerate((0, 6, 1, 7, 2, 8)):
        cv2.imwrite(str(folder / f"image-{k + 1}.jpg"), views[i].rgb[:, :, ::-1])
    return sorted(folder.iterdir())


def test_server_and_cli_jobs_share_the_sfm_run_and_an_intrinsics_edit_does_not(tmp_path, photos):
    ws = Workspace(tmp_path / "ws")
    capture = CaptureFolder(ws.captures_dir / "phone")
    capture.raw_dir.mkdir(parents=True)
    for f in photos:
        shutil.copy(f, capture.raw_dir / f.name)
    capture.save(Manifest(id="phone", name="phone", created=utc_now(), mode="free", status="processing"))
    queue = JobQueue(ws)
    worker = Worker(queue, Runner(), heartbeat_s=60.0, progress_interval_s=0.0)

    server_steps = method_job(capture, "poses", "preview")
    assert [s.stage for s in server_steps] == ["ingest", "plan"]
    server = worker.run_job(queue.submit("phone", server_steps).id)
    assert server.job.state == "done", server.job.error
    cli_steps = method_job(capture, "poses", "preview")
    assert [s.stage for s in cli_steps] == ["plan"]
    cli = worker.run_job(queue.submit("phone", cli_steps).id)
    assert cli.job.state == "done", cli.job.error

    server_poses = next(o for o in server.outcomes if o.stage == "poses")
    cli_poses = next(o for o in cli.outcomes if o.stage == "poses")
    assert cli_poses.run_dir == server_poses.run_dir and cli_poses.reused

    # one frame's intrinsics edited in capture.json: the next poses run is a new one
    data = json.loads(capture.manifest_path.read_text())
    data["frames"][2]["camera"]["fx"] *= 1.01
    capture.manifest_path.write_text(json.dumps(data))
    spec = load_stage("poses")
    config = spec.config_cls(**cli.job.steps[1].config)
    edited = run_dir_for(capture, spec, config, wired_inputs(spec, {"ingest": server.outcomes[0].run_dir}))
    assert edited != server_poses.run_dir
