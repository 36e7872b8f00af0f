"""The phone page shows a live scan streaming from another device (issue 9 point 3): in real
headless Chromium, the paired page finds the stream through ``GET /v1/live`` while the real
Stray recording arrives over the live WebSocket, and shows its top-down preview (the server's
PNG, fetched with the page's token) and its coverage from the frames' poses."""

from __future__ import annotations

import json
import threading
import time

import pytest
from server_test_kit import STRAY, LiveServer, new_capture, ws_connect
from test_webpage import DevTools, chromium, open_page  # noqa: F401

from capture_server.send import stray_frames


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_the_page_shows_a_live_streams_preview_and_coverage(live_server: LiveServer,
                                                            chromium: DevTools) -> None:  # noqa: F811
    code, _ = live_server.devices.new_code()
    open_page(chromium, f"{live_server.url}/pair?code={code}&fp=whatever")
    chromium.wait_for("document.body.dataset.stage === 'choose'",
                      fail="document.body.dataset.stage === 'pair'")
    assert chromium.evaluate("document.getElementById('live-section').hidden") is True  # nothing streams

    token = live_server.token("lidar phone")
    with live_server.client(token) as c:
        cid = new_capture(c, mode="rgbd")
    stop = threading.Event()

    def stream() -> None:  # the recording's frames, a few per second, until the page has seen them
        with ws_connect(live_server, cid, token) as ws:
            for recorded in stray_frames(STRAY):
                if stop.is_set():
                    return
                ws.send(recorded.message)
                json.loads(ws.recv())
                time.sleep(0.05)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        chromium.wait_for(f"document.body.dataset.liveCapture === {json.dumps(cid)}", timeout_s=60)
        chromium.wait_for("document.getElementById('live-preview').naturalWidth === 256", timeout_s=60)
        chromium.wait_for("!document.getElementById('coverage-table').hidden", timeout_s=60)
    finally:
        stop.set()
        streamer.join(30)
    assert chromium.evaluate("document.getElementById('live-section').hidden") is False
    summary = chromium.evaluate("document.getElementById('coverage-summary').textContent")
    assert "% of directions seen" in summary
    assert "frames so far" in chromium.evaluate("document.getElementById('live-summary').textContent")
