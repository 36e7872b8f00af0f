"""The Live view is fed by a real stream: ``scanbridge send --live`` replays Stray Scanner frames
to the server the app runs; the app switches to the Live view, the preview grows while frames
arrive, and it ends as the fusion of every frame the server stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_test_kit import REPO, STRAY, small_stray_folder

from desktop.live_session import PREVIEW_VOXEL_M
from recon.fusion.frames import read_frame
from recon.fusion.tsdf import TSDFFusion, preset

FRAMES = 60


def send_live(app, folder: Path, client: Path, speed: str, name: str) -> subprocess.Popen[str]:
    port = app.services.server_url.rsplit(":", 1)[1]
    env = {**os.environ, "SCANBRIDGE_CLIENT_DIR": str(client), "PYTHONPATH": str(REPO)}
    code = [] if (client / "servers.json").exists() else ["--code", app.services.new_pairing().code]
    return subprocess.Popen(
        [sys.executable, "-m", "capture_server", "send", str(folder), "--live", "--speed", speed,
         *code, "--server", f"127.0.0.1:{port}", "--name", name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def finish(phone: subprocess.Popen[str], qtbot) -> str:
    try:
        qtbot.waitUntil(lambda: phone.poll() is not None, timeout=120000)
        out, err = phone.communicate(timeout=30)
    finally:
        if phone.poll() is None:
            phone.kill()
    assert phone.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])["capture_id"]


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_send_live_feeds_the_live_view(sample_workspace, make_app, qtbot, tmp_path):
    app = make_app(sample_workspace, start_server=True)
    window, panel = app.window, app.window.live
    qtbot.waitUntil(lambda: app.services.server_url is not None, timeout=30000)
    assert window.current_panel() == "Library"

    # A first, short stream: the app switches to the Live view and starts its preview process.
    first = finish(send_live(app, small_stray_folder(tmp_path / "short", frames=5), tmp_path / "client",
                             "0", "First stream"), qtbot)
    qtbot.waitUntil(lambda: panel.status.text() == "Stream ended: 5 of 5 frames fused", timeout=120000)
    assert window.current_panel() == "Live capture"
    assert app.services.capture(first).load().name == "First stream"

    # The next stream, while the user is elsewhere: 60 frames recorded at 60 Hz sent at a tenth
    # of the speed (about 10 s); the view follows it as it grows.
    window.show_panel("Library")
    seen: list[tuple[int, bool]] = []  # (frames fused, stream still open) per preview update
    window.live_feed.mesh_updated.connect(
        lambda mesh, frames: seen.append((frames, bool(app.services.live_streams()))))
    phone = send_live(app, small_stray_folder(tmp_path / "stray", frames=FRAMES), tmp_path / "client",
                      "0.1", "Desk stream")
    qtbot.waitUntil(lambda: window.current_panel() == "Live capture", timeout=60000)
    capture = app.services.capture(finish(phone, qtbot))
    qtbot.waitUntil(lambda: panel.status.text().startswith("Stream ended"), timeout=60000)
    assert panel.status.text() == f"Stream ended: {FRAMES} of {FRAMES} frames fused"
    assert len(seen) >= 2 and seen[0][0] < FRAMES and seen[0][1]  # it grew while the phone streamed
    assert [n for n, _ in seen] == sorted(n for n, _ in seen) and seen[-1][0] == FRAMES

    # What the view shows at the end is the fusion of the frames the server stored.
    frames = capture.load().frames
    assert len(frames) == FRAMES
    fusion = TSDFFusion(preset("room", voxel_size_m=PREVIEW_VOXEL_M, refine_views=0))
    for f in frames:
        a = read_frame(capture, f)
        fusion.add_frame(a.depth, f.camera, a.c2w, a.color, a.confidence, depth_scale=f.depth_scale)
    expected = fusion.extract_mesh().triangle_count
    qtbot.waitUntil(lambda: not panel.viewer.busy, timeout=30000)
    shown = panel.viewer.scene.meshes[0]
    assert expected > 1000 and len(shown.faces) == expected
    assert panel.viewer.last_render is not None and panel.viewer.last_render.covered > 2000
