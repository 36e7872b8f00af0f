"""Guided mode of the phone web page in real headless Chromium: the camera stream is Chromium's fake
capture device, the phone's orientation comes from the DevTools protocol's device-orientation
override. Photos are taken from the stream at several headings, uploaded with tus-js-client to
the real server on loopback, and the server's coverage rings them where they were taken."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser_kit import needs_chromium, needs_tus
from PIL import Image
from server_test_kit import LiveServer
from test_webpage import PAGE_STATE, DevTools, chromium_session, open_page
from test_webpage_orientation import w3c_rotation

from core.settings import Settings
from core.workspace import Workspace

FAKE_MEDIA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
BOX = "document.getElementById('guided-box').dataset"


@pytest.fixture
def camera_browser(tmp_path: Path) -> Iterator[DevTools]:
    with chromium_session(tmp_path / "chromium-profile", *FAKE_MEDIA) as devtools:
        yield devtools


@pytest.fixture
def server(workspace: Workspace) -> Iterator[LiveServer]:
    live = LiveServer(workspace, Settings(max_upload_bytes=1 << 30))
    yield live
    live.stop()


def tap(devtools: DevTools, element_id: str) -> None:
    """A click that counts as the user's gesture (camera and motion permissions need one)."""
    result = devtools.call("Runtime.evaluate", expression=f"document.getElementById('{element_id}').click()",
                           userGesture=True)
    assert "exceptionDetails" not in result, result


def expected_sector_band(alpha: float, beta: float, gamma: float) -> tuple[int, int]:
    """Where the server should ring a photo, computed here from the W3C rotation: the phone is on
    the far side of the object from where its back camera (-z) looks."""
    to_phone = -(w3c_rotation(alpha, beta, gamma) @ np.array([0.0, 0.0, -1.0]))
    azimuth = np.degrees(np.arctan2(to_phone[0], to_phone[1])) % 360.0
    elevation = np.degrees(np.arcsin(to_phone[2]))
    band = int(np.searchsorted([-90.0, -15.0, 15.0, 45.0, 90.0], elevation, side="right") - 1)
    return int(azimuth // 30), band


def start_guided(devtools: DevTools, server: LiveServer) -> None:
    code, _ = server.devices.new_code()
    open_page(devtools, f"{server.url}/pair?code={code}")
    devtools.wait_for("document.body.dataset.stage === 'choose'",
                      fail="document.body.dataset.stage === 'pair'")
    assert devtools.evaluate("document.querySelector('input[name=mode]:checked').value") == "guided"
    assert devtools.evaluate("!document.getElementById('guided-choice').hidden")
    tap(devtools, "camera-start")
    devtools.wait_for(f"{BOX}.camera === 'live' && !!{BOX}.brightness",
                      fail=f"{BOX}.camera === 'unavailable'")


def send_and_wait(devtools: DevTools) -> str:
    assert devtools.evaluate("document.getElementById('send-button').disabled") is False
    tap(devtools, "send-button")
    devtools.wait_for("['finished', 'result'].includes(document.body.dataset.stage)", timeout_s=120,
                      fail="['upload-failed', 'finish-failed'].includes(document.body.dataset.stage)")
    return devtools.evaluate("document.body.dataset.captureId")


@needs_tus
@needs_chromium
def test_guided_photos_at_several_headings_fill_the_servers_ring(server: LiveServer,
                                                                 camera_browser: DevTools) -> None:
    page = camera_browser
    # Looking 30 degrees down at the object (beta 60) from six sides, and once from high above.
    shots = [(alpha, 60.0, 0.0) for alpha in (0.0, 45.0, 100.0, 170.0, 250.0, 300.0)] + [(20.0, 30.0, 5.0)]
    page.call("DeviceOrientation.setDeviceOrientationOverride", alpha=shots[0][0], beta=shots[0][1],
              gamma=shots[0][2])
    start_guided(page, server)
    page.wait_for(f"{BOX}.sensor === 'orientation'", fail=f"{BOX}.sensor === 'none'")
    for i, (alpha, beta, gamma) in enumerate(shots):
        page.call("DeviceOrientation.setDeviceOrientationOverride", alpha=alpha, beta=beta, gamma=gamma)
        page.wait_for(f"{BOX}.alpha === '{alpha:g}'")
        tap(page, "shutter")
        page.wait_for(f"{BOX}.shots === '{i + 1}'")
    # Height hints: looking almost straight down is above the first round's band, level is below.
    page.call("DeviceOrientation.setDeviceOrientationOverride", alpha=0.0, beta=10.0, gamma=0.0)
    page.wait_for("document.getElementById('guide-hint').textContent.startsWith('Move lower')")
    page.call("DeviceOrientation.setDeviceOrientationOverride", alpha=0.0, beta=95.0, gamma=0.0)
    page.wait_for("document.getElementById('guide-hint').textContent.startsWith('Move higher')")
    # The ring on the page: six sides of the first round (the high shot belongs to the second).
    assert page.evaluate(f"{BOX}.filled") == "6"
    assert page.evaluate("document.querySelectorAll('#orbit-ring .sector.seen').length") == 6
    # Turning 60 degrees in 30 ms is too fast for sharp, overlapping photos.
    hint = page.evaluate("""(async () => {
        const turn = (alpha) => window.dispatchEvent(new DeviceOrientationEvent("deviceorientation",
            {alpha: alpha, beta: 60, gamma: 0}));
        const pause = () => new Promise((resolve) => setTimeout(resolve, 30));
        turn(0); await pause(); turn(60); await pause(); turn(120);
        return document.getElementById("guide-hint").textContent; })()""")
    assert hint.startswith("Too fast"), hint

    cid = send_and_wait(page)
    with server.client(server.token("observer")) as c:
        cov = c.get(f"/v1/captures/{cid}/coverage").json()
        status = c.get(f"/v1/captures/{cid}").json()
    expected = np.zeros((4, 12), dtype=int)
    for shot in shots:
        sector, band = expected_sector_band(*shot)
        expected[band, sector] += 1
    assert expected[2].sum() == 6 and expected[3].sum() == 1  # the shots cover what they should
    assert cov["available"] is True and cov["source"] == "orientation" and cov["views"] == len(shots)
    assert cov["counts"] == expected.tolist()

    files = sorted(status["files"], key=lambda f: f["name"])
    [session] = {re.fullmatch(r"guided-([0-9a-z]+)-\d{3}\.jpg", f["name"]).group(1) for f in files}
    assert [f["name"] for f in files] == [f"guided-{session}-{i:03d}.jpg" for i in range(1, len(shots) + 1)]
    for f, (alpha, beta, gamma) in zip(files, shots, strict=True):
        o = f["orientation"]
        assert (o["alpha"], o["beta"], o["gamma"]) == (alpha, beta, gamma)
        assert o["t"] > 1.6e12  # a Unix time in milliseconds
    raw = server.workspace.capture(cid).raw_dir
    with Image.open(io.BytesIO((raw / files[0]["name"]).read_bytes())) as photo:
        assert photo.format == "JPEG" and photo.width >= 320 and photo.height >= 240  # from the stream


@needs_tus
@needs_chromium
@pytest.mark.parametrize("why", ["no sensor", "motion access refused"])
def test_without_a_motion_sensor_the_ring_counts_photos(server: LiveServer, camera_browser: DevTools,
                                                        why: str) -> None:
    page = camera_browser  # headless Chromium has no motion sensor unless the override gives one
    if why == "motion access refused":
        # iOS: orientation events only after DeviceOrientationEvent.requestPermission() on a tap.
        page.call("DeviceOrientation.setDeviceOrientationOverride", alpha=0.0, beta=60.0, gamma=0.0)
        page.call("Page.addScriptToEvaluateOnNewDocument", source="""
            DeviceOrientationEvent.requestPermission = () => {
                window.motionAsked = navigator.userActivation.isActive;
                return Promise.resolve("denied");
            };""")
    start_guided(page, server)
    page.wait_for(f"{BOX}.sensor === 'none'", timeout_s=20)
    if why == "motion access refused":
        assert page.evaluate("window.motionAsked") is True  # asked, and on the user's tap
    for i in range(3):
        tap(page, "shutter")
        page.wait_for(f"{BOX}.shots === '{i + 1}'")
    assert page.evaluate(f"{BOX}.filled") == "3"
    hint = page.evaluate("document.getElementById('guide-hint').textContent")
    assert hint.startswith("Take a photo, then walk"), hint
    cid = send_and_wait(page)
    with server.client(server.token("observer")) as c:
        cov = c.get(f"/v1/captures/{cid}/coverage").json()
        status = c.get(f"/v1/captures/{cid}").json()
    assert len(status["files"]) == 3 and all("orientation" not in f for f in status["files"])
    assert cov["available"] is False and "orientation" in cov["reason"]
    assert json.loads(page.evaluate(PAGE_STATE))["stage"] in ("finished", "result")


def y4m_clip(path: Path, luma: np.ndarray, frames: int = 5) -> Path:
    """A Y4M clip (4:2:0) of ``luma`` (H, W) uint8 with neutral colour, for Chromium's fake camera."""
    h, w = luma.shape
    chroma = np.full((h // 2) * (w // 2), 128, dtype=np.uint8).tobytes()
    frame = b"FRAME\n" + luma.astype(np.uint8).tobytes() + chroma + chroma
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


@needs_tus
@needs_chromium
@pytest.mark.parametrize("scene,hint", [("dark", "Too dark"), ("flat", "Hold still"),
                                        ("bright", "Too bright"), ("textured", "Take a photo")])
def test_the_viewfinder_checks_exposure_and_sharpness(server: LiveServer, tmp_path: Path, scene: str,
                                                      hint: str) -> None:
    rng = np.random.default_rng(0)
    luma = {"dark": np.full((240, 320), 40), "flat": np.full((240, 320), 128),
            "bright": np.full((240, 320), 252),
            "textured": rng.integers(40, 200, (30, 40)).repeat(8, axis=0).repeat(8, axis=1)}[scene]
    clip = y4m_clip(tmp_path / f"{scene}.y4m", luma)
    fake_file = f"--use-file-for-fake-video-capture={clip}"
    with chromium_session(tmp_path / "profile", *FAKE_MEDIA, fake_file) as page:
        page.call("DeviceOrientation.setDeviceOrientationOverride", alpha=10.0, beta=60.0, gamma=0.0)
        start_guided(page, server)
        page.wait_for(f"{BOX}.sensor === 'orientation'")
        page.wait_for(f"document.getElementById('guide-hint').textContent.startsWith('{hint}')",
                      timeout_s=20)
        brightness = float(page.evaluate(f"{BOX}.brightness"))
    # The check reads the stream's real pixels: video luma is limited range (16..235 is black..white).
    expected = np.clip((luma.astype(float) - 16.0) * 255.0 / 219.0, 0, 255).mean()
    assert abs(brightness - expected) < 6


@needs_tus
@needs_chromium
def test_a_guided_capture_continued_after_a_reload_keeps_its_earlier_photos(server: LiveServer,
                                                                           camera_browser: DevTools) -> None:
    page = camera_browser
    page.call("DeviceOrientation.setDeviceOrientationOverride", alpha=0.0, beta=60.0, gamma=0.0)
    start_guided(page, server)
    tap(page, "shutter")
    page.wait_for(f"{BOX}.shots === '1'")
    page.call("Network.enable")
    page.call("Network.setBlockedURLs", urls=["*/finish"])  # the Wi-Fi drops as the capture finishes
    tap(page, "send-button")
    page.wait_for("document.body.dataset.stage === 'finish-failed'", timeout_s=60)
    cid = page.evaluate("document.body.dataset.captureId")

    page.call("Network.setBlockedURLs", urls=[])
    page.call("Page.reload")  # the photos taken so far are on the computer; the page starts anew
    page.wait_for("document.readyState === 'complete' && document.body.dataset.stage === 'choose'")
    page.call("DeviceOrientation.setDeviceOrientationOverride", alpha=90.0, beta=60.0, gamma=0.0)
    tap(page, "camera-start")
    page.wait_for(f"{BOX}.camera === 'live' && !!{BOX}.brightness && {BOX}.sensor === 'orientation' "
                  f"&& {BOX}.alpha === '90'")
    tap(page, "shutter")
    page.wait_for(f"{BOX}.shots === '1'")
    assert send_and_wait(page) == cid  # the same capture goes on, and takes the new photo too
    with server.client(server.token("observer")) as c:
        status = c.get(f"/v1/captures/{cid}").json()
        cov = c.get(f"/v1/captures/{cid}/coverage").json()
    assert len(status["files"]) == 2 and status["status"] in ("new", "processing")
    assert sorted(f["orientation"]["alpha"] for f in status["files"]) == [0.0, 90.0]
    assert cov["views"] == 2 and sum(map(sum, cov["counts"])) == 2
