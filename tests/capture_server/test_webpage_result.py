"""The phone web page shows the AR model when the server's job is done (issue 9 point 2).

In real headless Chromium the page pairs, uploads an RGB-D scan as a zip (a synthetic orbit at
arm's length in nerfstudio's format, as an app's LiDAR export) with tus-js-client, and waits:
the server's worker ingests, plans, fuses, exports and publishes, and the page then shows the
AR Quick Look link of a share link that serves the published model.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_kit import needs_chromium, needs_tus
from server_test_kit import LiveServer
from test_webpage import DevTools, chromium, open_page  # noqa: F401

from core.settings import Settings
from core.workspace import Workspace
from recon.sample.dataset import write_capture_folder
from recon.sample.scene import render_orbit


@pytest.fixture
def processing_server(workspace: Workspace) -> Iterator[LiveServer]:
    settings = Settings(max_upload_bytes=1 << 30, default_detail="preview")
    server = LiveServer(workspace, settings, run_worker=True)
    yield server
    server.stop()


@needs_tus
@needs_chromium
def test_the_page_shows_the_ar_link_when_the_job_is_done(processing_server: LiveServer,
                                                         chromium: DevTools,  # noqa: F811
                                                         tmp_path: Path) -> None:
    views = render_orbit(8, (256, 192), elevations_deg=(20.0, 45.0), radius_m=0.55)
    scan = write_capture_folder(views, tmp_path / "scan", with_depth=True)
    archive = Path(shutil.make_archive(str(tmp_path / "lidar-scan"), "zip", scan))
    code, _ = processing_server.devices.new_code()

    open_page(chromium, f"{processing_server.url}/pair?code={code}&fp=whatever")
    chromium.wait_for("document.body.dataset.stage === 'choose'",
                      fail="document.body.dataset.stage === 'pair'")
    chromium.evaluate("document.querySelector('input[name=mode][value=import]').click()")
    chromium.set_files("#library-input", [archive])
    chromium.evaluate("document.getElementById('send-button').click()")
    chromium.wait_for("document.body.dataset.stage === 'result'", timeout_s=400,
                      fail="['upload-failed', 'finish-failed'].includes(document.body.dataset.stage)")

    cid = chromium.evaluate("document.body.dataset.captureId")
    capture = processing_server.workspace.capture(cid)
    assert capture.load().status == "processed"
    usdz_url = chromium.evaluate("document.querySelector('#ar-holder a[rel=ar]').href")
    assert usdz_url.endswith("/model.usdz")
    with httpx.Client(verify=False, timeout=30) as c:
        served = c.get(usdz_url)
    assert served.status_code == 200 and served.content == (capture.exports_dir / "model.usdz").read_bytes()
