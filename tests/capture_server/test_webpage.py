"""The phone web page: served without a token, and driven in real headless Chromium (Debian's
chromium, over the DevTools protocol) it pairs with the code from the QR URL and uploads files
with tus-js-client to the real server on loopback; the stored files are byte-identical."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_kit import INSTALL_CHROMIUM, find_chromium, require
from server_test_kit import LiveServer
from websockets.sync.client import connect

from capture_server.web import NODE_MODULES, TUS_BUNDLE
from core.settings import Settings
from core.workspace import Workspace

CHROMIUM = find_chromium()
FOX = Path(__file__).resolve().parents[3] / "shared" / "data" / "instant-ngp-fox" / "images"
if not FOX.is_dir():
    FOX = Path("/work/shared/data/instant-ngp-fox/images")
needs_fox = pytest.mark.skipif(not FOX.is_dir(), reason="shared data instant-ngp-fox is missing")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 60.0, fail: str | None = None) -> Any:
        """Poll ``expression`` until it is truthy; ``fail`` (an expression) ends the wait early."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            if fail and self.evaluate(fail):
                raise AssertionError(f"page failed: {self.evaluate(PAGE_STATE)}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}: {self.evaluate(PAGE_STATE)}")

    def set_files(self, selector: str, paths: list[Path]) -> None:
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        self.call("DOM.setFileInputFiles", nodeId=node, files=[str(p) for p in paths])


PAGE_STATE = ("JSON.stringify({stage: document.body.dataset.stage, "
              "message: document.getElementById('message').textContent, "
              "files: [...document.querySelectorAll('#file-list li')].map(li => li.textContent)})")


@contextlib.contextmanager
def chromium_session(profile: Path, *extra_args: str) -> Iterator[DevTools]:
    """Headless Chromium with a fresh profile; yields a DevTools client for its first page."""
    require(CHROMIUM is not None, "chromium", INSTALL_CHROMIUM)
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--ignore-certificate-errors", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", *extra_args, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        deadline, lines = time.monotonic() + 60, []
        port = None
        while time.monotonic() < deadline and port is None:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = int(found.group(1)) if found else None
        if port is None:
            raise RuntimeError("chromium did not start:\n" + "".join(lines))
        proc.stderr.close()  # nothing reads it from here on; closing keeps the pipe from filling
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
                 if t["type"] == "page"]
        with connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=20, proxy=None) as ws:
            devtools = DevTools(ws)
            devtools.call("Page.enable")
            devtools.call("Runtime.enable")
            yield devtools
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[DevTools]:
    with chromium_session(tmp_path / "chromium-profile") as devtools:
        yield devtools


def open_page(devtools: DevTools, url: str) -> None:
    devtools.call("Page.navigate", url=url)
    devtools.wait_for("document.readyState === 'complete' && !!document.body "
                      "&& !!document.body.dataset.stage")


@pytest.mark.usefixtures("tus_bundle")
def test_the_page_and_its_files_are_served_without_a_token(live_server: LiveServer) -> None:
    with live_server.client() as c:
        for path in ("/pair", "/app/"):
            page = c.get(path + "?code=12345678")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert 'accept="image/*,video/*" capture multiple' in page.text
            assert "default-src 'self'" in page.headers["content-security-policy"]
        assert c.get("/app").status_code == 308
        bundle = c.get("/app/vendor/tus.min.js")
        assert bundle.status_code == 200 and bundle.content == (NODE_MODULES / TUS_BUNDLE).read_bytes()
        assert c.get("/app/app.js").headers["content-type"].startswith("text/javascript")
        for bad in ("/app/nothing.js", "/app/..%2F..%2Fpyproject.toml", "/app/.hidden.js",
                    "/app/__init__.py"):
            assert c.get(bad).status_code == 404, bad
        assert c.post("/app/").status_code == 401  # pages are read-only: no token, no other method
        assert c.get("/").status_code == 401  # the API's rule for unknown paths is unchanged


def test_the_bundle_route_says_how_to_install_it(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from capture_server.web import pages_app

    app = pages_app(Workspace(tmp_path / "ws"), node_modules=tmp_path / "no-node-modules")
    with TestClient(app) as c:
        r = c.get("/app/vendor/tus.min.js")
    assert r.status_code == 404 and "npm ci" in r.json()["error"]


@pytest.fixture(params=["https", "http"])
def page_server(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[LiveServer]:
    """The real server, with its self-signed HTTPS certificate or as plain HTTP (allow_plain_http)."""
    plain = request.param == "http"
    settings = Settings(allow_plain_http=plain, max_upload_bytes=1 << 30)
    server = LiveServer(workspace, settings, plain_http=plain)
    yield server
    server.stop()


@pytest.mark.usefixtures("tus_bundle")
@needs_fox
def test_tus_js_client_in_chromium_uploads_through_the_page(page_server: LiveServer, chromium: DevTools,
                                                            tmp_path: Path) -> None:
    # Phone cameras name every photo image.jpg: the page must keep both.
    photos = []
    for i, src in enumerate(sorted(FOX.glob("*.jpg"))[:2]):
        (tmp_path / f"shot{i}").mkdir()
        photos.append(Path(shutil.copy(src, tmp_path / f"shot{i}" / "image.jpg")))
    clip = tmp_path / "clip.mp4"  # three tus chunks of 8 MiB (the bytes are what matters here)
    clip.write_bytes(os.urandom(20 * 1024 * 1024 + 123))
    code, _ = page_server.devices.new_code()

    open_page(chromium, f"{page_server.url}/pair?code={code}&fp=whatever")
    chromium.wait_for("document.body.dataset.stage === 'choose'",
                      fail="document.body.dataset.stage === 'pair'")
    assert chromium.evaluate("location.search") == ""  # the used code is out of the address bar
    assert chromium.evaluate("typeof tus !== 'undefined' && tus.isSupported") is True
    [device] = page_server.devices.devices()
    assert device.name == "Web page on browser"

    chromium.evaluate("document.querySelector('input[name=mode][value=free]').click()")
    chromium.set_files("#camera-input", photos)
    chromium.set_files("#library-input", [clip])
    assert chromium.evaluate("document.getElementById('send-button').disabled") is False
    chromium.evaluate("document.getElementById('send-button').click()")
    chromium.wait_for("['finished', 'result'].includes(document.body.dataset.stage)", timeout_s=120,
                      fail="['upload-failed', 'finish-failed'].includes(document.body.dataset.stage)")
    assert chromium.evaluate("[...document.querySelectorAll('#file-list li')]"
                             ".every(li => li.className === 'done')")

    cid = chromium.evaluate("document.body.dataset.captureId")
    capture = page_server.workspace.capture(cid)
    raw = capture.raw_dir
    assert sorted(p.name for p in raw.iterdir()) == ["clip.mp4", "image-2.jpg", "image.jpg"]
    assert sha256(raw / "image.jpg") == sha256(photos[0])
    assert sha256(raw / "image-2.jpg") == sha256(photos[1])
    assert sha256(raw / "clip.mp4") == sha256(clip)
    manifest = capture.load()
    assert manifest.mode == "free" and manifest.status in ("new", "processing")
    kinds = {f["name"]: (f["kind"], f["sha256"]) for f in manifest.source["files"]}
    assert kinds == {"image.jpg": ("image", sha256(photos[0])), "image-2.jpg": ("image", sha256(photos[1])),
                     "clip.mp4": ("video", sha256(clip))}
    assert manifest.source["device"]["app"] == "scanbridge-web"
    assert chromium.evaluate("document.getElementById('job-state').textContent")  # says what happens next


@pytest.fixture
def https_server(workspace: Workspace) -> Iterator[LiveServer]:
    server = LiveServer(workspace, Settings(max_upload_bytes=1 << 30))
    yield server
    server.stop()


@pytest.mark.usefixtures("tus_bundle")
def test_an_upload_cut_by_a_reload_resumes_where_it_stopped(https_server: LiveServer, chromium: DevTools,
                                                           tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(os.urandom(24 * 1024 * 1024 + 5))
    code, _ = https_server.devices.new_code()
    open_page(chromium, f"{https_server.url}/pair?code={code}")
    chromium.wait_for("document.body.dataset.stage === 'choose'")
    # Slow the browser's uploads to about 4 MB/s, so the reload lands in the middle of the file.
    chromium.call("Network.enable")
    chromium.call("Network.emulateNetworkConditions", offline=False, latency=0,
                  downloadThroughput=-1, uploadThroughput=4 * 1024 * 1024)
    chromium.evaluate("document.querySelector('input[name=mode][value=import]').click()")
    chromium.set_files("#library-input", [clip])
    chromium.evaluate("document.getElementById('send-button').click()")
    cid = chromium.wait_for("document.body.dataset.captureId")
    with https_server.client(https_server.token("observer")) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            uploads = c.get(f"/v1/captures/{cid}").json()["uploads"]
            if uploads and uploads[0]["offset"] > 0:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no bytes arrived")
        chromium.call("Page.reload")  # the phone's browser reloads mid-upload: the PATCH is cut
        chromium.wait_for("document.readyState === 'complete' && document.body.dataset.stage === 'choose'")
        cut = c.get(f"/v1/captures/{cid}").json()["uploads"]
        assert len(cut) == 1 and 0 < cut[0]["offset"] < clip.stat().st_size

        chromium.call("Network.emulateNetworkConditions", offline=False, latency=0,
                      downloadThroughput=-1, uploadThroughput=-1)
        chromium.evaluate("document.querySelector('input[name=mode][value=import]').click()")
        chromium.set_files("#library-input", [clip])  # the user picks the same file again
        chromium.evaluate("document.getElementById('send-button').click()")
        chromium.wait_for("document.body.dataset.stage === 'finished'", timeout_s=120,
                          fail="['upload-failed', 'finish-failed'].includes(document.body.dataset.stage)")
        assert chromium.evaluate("document.body.dataset.captureId") == cid  # the same capture goes on
        status = c.get(f"/v1/captures/{cid}").json()
    # One upload, resumed (a restart would have made a second one and been refused the same name).
    upload_states = list((https_server.workspace.capture(cid).root / ".uploads").glob("*.json"))
    assert [p.stem for p in upload_states] == [cut[0]["id"]]
    assert status["files"] == [{"name": "clip.mp4", "size": clip.stat().st_size, "kind": "video",
                                "sha256": sha256(clip)}]
    assert sha256(https_server.workspace.capture(cid).raw_dir / "clip.mp4") == sha256(clip)
