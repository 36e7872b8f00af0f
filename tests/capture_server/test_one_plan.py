"""One plan and one publish for every entry point (issue 9 point 2, issue 11's method registry).

An RGB-D object scan with device poses (a synthetic orbit at arm's length, as a phone's LiDAR
export in nerfstudio's format) goes to the real server with `scanbridge send` (tus uploads); the
server's worker ingests, plans and publishes it,
and a share link works at once. The same capture is then processed from the CLI
(`scanbridge process`) and from the desktop's service facade. All three expand into the same
steps with the same configs (the object preset the CLI always chose for a scan this close) and
each publishes exports/model.usdz itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from server_test_kit import REPO, LiveServer

from capture_server.share import ShareStore
from core.cli import main as scanbridge
from core.jobs import Job, JobQueue
from core.settings import Settings, save_settings
from core.workspace import Workspace
from recon.sample.dataset import write_capture_folder
from recon.sample.scene import render_orbit

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def wait_ended(queue: JobQueue, job_id: int, timeout_s: float = 300.0) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = queue.get(job_id)
        if job.ended_state:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end: {queue.get(job_id)}")


def what_ran(job: Job, workspace: Workspace) -> tuple[list[tuple[str, dict, str]], list[str]]:
    """The steps the job's plan expanded into (stage, config, run folder), and what it published to exports/
    (which a share link can serve: making one fails without exports/model.usdz)."""
    assert job.state == "done", job.error
    ShareStore(workspace).create(job.capture_id)
    exports = workspace.capture(job.capture_id).exports_dir
    stages = [s.stage for s in job.steps]
    # (stage, config, run folder): the run folder's name is the run's hash
    planned = [(s.stage, s.config, s.run_dir.name) for s in job.steps[stages.index("plan") + 1:]]
    publish = job.steps[-1]
    files = sorted(publish.result["files"].values())
    assert publish.stage == "publish" and all((exports / name).is_file() for name in files)
    return planned, files


def test_cli_server_and_desktop_queue_one_plan_and_each_publish(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    settings = Settings(max_upload_bytes=64 * 1024 * 1024, default_detail="preview")
    save_settings(workspace.settings_path, settings)
    queue = JobQueue(workspace)
    views = render_orbit(8, (256, 192), elevations_deg=(20.0, 45.0), radius_m=0.55)
    folder = write_capture_folder(views, tmp_path / "scan", with_depth=True)

    # The server: a phone (the reference client) uploads the scan; the server's worker runs the job.
    server = LiveServer(workspace, settings, run_worker=True)
    try:
        port = server.url.rsplit(":", 1)[1]
        code, _ = server.devices.new_code()
        sent = subprocess.run(
            [sys.executable, "-m", "capture_server", "send", str(folder), "--code", code,
             "--server", f"127.0.0.1:{port}", "--name", "mug"],
            capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
            env={**os.environ, "SCANBRIDGE_CLIENT_DIR": str(tmp_path / "client"), "PYTHONPATH": str(REPO)},
        )
        assert sent.returncode == 0, sent.stderr
        (capture,) = workspace.captures()
        (server_job,) = queue.list(capture_id=capture.id)
        server_job = wait_ended(queue, server_job.id)
        assert [s.stage for s in server_job.steps[:2]] == ["ingest", "plan"]
        # Right away: the capture is processed, the model is shared, the link serves it.
        assert capture.load().status == "processed"
        with server.client(server.token()) as c:
            made = c.post(f"/v1/captures/{capture.id}/share", json={})
            assert made.status_code == 201, made.text
            link = made.json()
            usdz = c.get(link["usdz"])
            published = (capture.exports_dir / "model.usdz").read_bytes()
            assert usdz.status_code == 200 and usdz.content == published
            assert c.get(link["url"]).status_code == 200
    finally:
        server.stop()
    from_server = what_ran(server_job, workspace)

    # The CLI, on the same capture (its exports/ emptied first, to see this job publish).
    shutil.rmtree(capture.exports_dir)
    out = tmp_path / "cli" / "model.usdz"
    out.parent.mkdir()
    assert scanbridge(["process", capture.id, "--workspace", str(workspace.root), "-o", str(out)]) == 0
    assert out.is_file()
    from_cli = what_ran(queue.list(capture_id=capture.id, limit=1)[0], workspace)

    # The desktop's facade: Process with the settings' defaults, run by the app's worker.
    from desktop.services import Services

    shutil.rmtree(capture.exports_dir)
    services = Services(workspace)
    try:
        services.start_worker()
        desktop_job = wait_ended(queue, services.process(capture.id).id)
    finally:
        services.close()
    from_desktop = what_ran(desktop_job, workspace)

    assert from_server == from_cli == from_desktop
    steps, published = from_server
    assert [stage for stage, _, _ in steps] == ["fusion", "mesh", "export", "publish"]
    assert steps[0][1]["preset"] == "object"  # 0.55 m away: the CLI always chose this; the server did not
    assert steps[1][1]["detail"] == "preview" and steps[2][1]["name"] == "mug"
    assert "model.usdz" in published and "poster.png" in published
