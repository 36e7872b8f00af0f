"""The whole loop with the real server and its job worker: a phone uploads photos (or a Stray
Scanner folder) with tus, finishes the capture, the worker ingests and processes it, and the
phone downloads a USDZ that passes Apple's ARKit checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from server_test_kit import REPO, STRAY, LiveServer, new_capture, small_stray_folder
from tusclient import client as tus_client

from core.settings import Settings
from core.workspace import Workspace
from recon.sample import render_orbit

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def working_server(workspace: Workspace) -> Iterator[LiveServer]:
    server = LiveServer(workspace, Settings(max_upload_bytes=64 * 1024 * 1024), run_worker=True)
    yield server
    server.stop()


def wait_for_job(c, cid: str, timeout_s: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = c.get(f"/v1/captures/{cid}").json()["job"]
        if job and job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job not finished: {c.get(f'/v1/captures/{cid}').json()['job']}")


def check_usdz_result(c, cid: str, tmp_path: Path) -> None:
    from recon.export.check import check_usdz

    names = [r["name"] for r in c.get(f"/v1/captures/{cid}/results").json()["results"]]
    assert "model.usdz" in names and "poster.png" in names, names
    r = c.get(f"/v1/captures/{cid}/results/model.usdz")
    assert r.status_code == 200 and r.headers["content-type"] == "model/vnd.usdz+zip"
    usdz = tmp_path / "downloaded.usdz"
    usdz.write_bytes(r.content)
    report = check_usdz(usdz)
    assert report.passed, report.summary()


def test_uploaded_photos_are_processed_to_a_usdz(working_server: LiveServer, tmp_path: Path) -> None:
    views = render_orbit(12, (480, 360))
    photos = []
    for k, i in enumerate((0, 6, 1, 7, 2, 8, 3, 9)):  # 30 degree steps, alternating rings
        photos.append(tmp_path / f"IMG_{k:04d}.jpg")
        cv2.imwrite(str(photos[-1]), views[i].rgb[:, :, ::-1])
    token = working_server.token()
    with working_server.client(token) as c:
        cid = new_capture(c, "free")
        tus = tus_client.TusClient(f"{working_server.url}/v1/uploads",
                                   headers={"Authorization": f"Bearer {token}"})
        for p in photos:
            tus.uploader(str(p), metadata={"capture_id": cid, "filename": p.name}, chunk_size=1 << 20,
                         verify_tls_cert=False).upload()
        r = c.post(f"/v1/captures/{cid}/finish")
        assert r.status_code == 202, r.text
        assert [s["stage"] for s in r.json()["job"]["steps"]] == ["ingest", "plan"]
        job = wait_for_job(c, cid)
        assert job["state"] == "done", job
        assert [s["stage"] for s in job["steps"]] == ["ingest", "plan", "poses", "mvs", "mesh", "export",
                                                      "publish"]
        check_usdz_result(c, cid, tmp_path)
    manifest = working_server.workspace.capture(cid).load()
    assert len(manifest.frames) == len(photos) and manifest.source["kind"] == "images"
    assert manifest.status == "processed"


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_an_uploaded_stray_scanner_folder_is_fused(working_server: LiveServer, tmp_path: Path) -> None:
    folder = small_stray_folder(tmp_path / "stray", frames=40)
    port = working_server.url.rsplit(":", 1)[1]
    code, _ = working_server.devices.new_code()
    sent = subprocess.run(
        [sys.executable, "-m", "capture_server", "send", str(folder), "--code", code,
         "--server", f"127.0.0.1:{port}"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
        env={**os.environ, "SCANBRIDGE_CLIENT_DIR": str(tmp_path / "client"), "PYTHONPATH": str(REPO)},
    )
    assert sent.returncode == 0, sent.stderr
    (capture,) = working_server.workspace.captures()
    with working_server.client(working_server.token()) as c:
        job = wait_for_job(c, capture.id)
        assert [s["stage"] for s in job["steps"]] == ["ingest", "plan", "fusion", "mesh", "export", "publish"]
        assert job["state"] == "done", job
        check_usdz_result(c, capture.id, tmp_path)
    manifest = capture.load()
    assert manifest.scale == "metric" and all(f.depth and f.pose is not None for f in manifest.frames)
