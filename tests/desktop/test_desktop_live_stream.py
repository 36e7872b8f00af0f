"""The Live view is fed by a real stream: ``scanbridge send --live`` replays Stray Scanner frames
to the server the app runs; the app switches to the Live view, the preview grows while frames
arrive, and it ends as the fusion of every frame the server stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from server_test_kit import REPO, STRAY, small_stray_folder

from desktop.live_session import PREVIEW_VOXEL_M
from recon.fusion.frames import read_frame
from recon.fusion.tsdf import TSDFFusion, preset

FRAMES = 60


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_send_live_feeds_the_live_view(sample_workspace, make_app, qtbot, tmp_path):
    app = make_app(sample_workspace, start_server=True)
    window, panel = app.window, app.window.live
    qtbot.waitUntil(lambda: app.services.server_url is not None, timeout=30000)
    assert window.current_panel() == "Library"
    folder = small_stray_folder(tmp_path / "stray", frames=FRAMES)
    code = app.services.new_pairing().code
    port = app.services.server_url.rsplit(":", 1)[1]
    env = {**os.environ, "SCANBRIDGE_CLIENT_DIR": str(tmp_path / "client"), "PYTHONPATH": str(REPO)}
    # 60 frames recorded at 60 Hz, sent at 6% of the speed: a stream of about 17 s (the preview
    # process takes a few seconds to start)
    phone = subprocess.Popen(
        [sys.executable, "-m", "capture_server", "send", str(folder), "--live", "--speed", "0.06",
         "--code", code, "--server", f"127.0.0.1:{port}", "--name", "Desk stream"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    seen: list[tuple[int, bool]] = []  # (frames fused, stream still open) per preview update
    window.live_feed.mesh_updated.connect(
        lambda mesh, frames: seen.append((frames, bool(app.services.live_streams()))))
    try:
        qtbot.waitUntil(lambda: window.current_panel() == "Live capture", timeout=60000)
        qtbot.waitUntil(lambda: phone.poll() is not None, timeout=120000)
        out, err = phone.communicate(timeout=30)
        assert phone.returncode == 0, err
        qtbot.waitUntil(lambda: panel.status.text().startswith("Stream ended"), timeout=60000)
    finally:
        if phone.poll() is None:
            phone.kill()
    capture = app.services.capture(json.loads(out.strip().splitlines()[-1])["capture_id"])
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
