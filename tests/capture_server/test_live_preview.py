"""The phone page's look at a live stream: ``GET /v1/live`` names the captures streaming now and
``GET /v1/captures/{id}/live/preview.png`` draws what their depth frames saw, from above. Real
server on loopback: a hand-made frame over a flat floor (where the picture must match the
camera's footprint, worked out by hand), and the real Stray recording sent by ``send --live``."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from server_test_kit import STRAY, LiveServer, new_capture, small_stray_folder, ws_connect
from test_server_live import send_cli

from capture_server.replay import encode_frame

BACKGROUND = (24, 26, 30)
RED = (230, 60, 50)
FLIP_Y_Z = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes <-> ARKit's (docs/protocol.md)


def preview(server: LiveServer, token: str, capture_id: str) -> np.ndarray:
    with server.client(token) as c:
        r = c.get(f"/v1/captures/{capture_id}/live/preview.png")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))  # (H, W, 3)


def test_a_floor_seen_from_above_fills_the_cameras_footprint(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c, mode="rgbd")
        assert c.get(f"/v1/captures/{cid}/live/preview.png").status_code == 404  # nothing streamed yet
    # A camera 2 m above the floor looking straight down (OpenCV axes: x right, y towards world
    # +z, z down), 64 x 48 pixels at f = 50: it sees 2.56 m by 1.92 m of floor, a 4:3 footprint
    # centred under the camera.
    c2w = np.eye(4)
    c2w[:3, :3] = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]).T
    c2w[:3, 3] = [0.0, 2.0, 0.0]
    assert np.isclose(np.linalg.det(c2w[:3, :3]), 1.0)
    header = {"index": 0, "timestamp": 1.0, "pose": (c2w @ FLIP_Y_Z).tolist(), "color_bytes": 0,
              "camera": {"width": 64, "height": 48, "fx": 50.0, "fy": 50.0, "cx": 32.0, "cy": 24.0},
              "depth": {"width": 64, "height": 48}, "confidence": False}
    with ws_connect(live_server, cid, token) as ws:
        ws.send(encode_frame(header, b"", np.full((48, 64), 2000, dtype=np.uint16), None))
        json.loads(ws.recv())

    image = preview(live_server, token, cid)
    floor = np.all(image != BACKGROUND, axis=2) & np.any(image != RED, axis=2)
    rows, cols = np.nonzero(floor)
    width, height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    assert width / height == pytest.approx(2.56 / 1.92, rel=0.1)
    assert width > image.shape[1] / 2  # the floor is most of the picture
    red_rows, red_cols = np.nonzero(np.all(image == RED, axis=2))
    assert red_cols.mean() == pytest.approx((cols.min() + cols.max()) / 2, abs=3)
    assert red_rows.mean() == pytest.approx((rows.min() + rows.max()) / 2, abs=3)


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_a_stray_stream_is_listed_and_previewed(live_server: LiveServer, tmp_path) -> None:
    folder = small_stray_folder(tmp_path / "stray", frames=6)
    code, _ = live_server.devices.new_code()
    port = live_server.url.rsplit(":", 1)[1]
    result = send_cli(tmp_path / "client", str(folder), "--live", "--speed", "0", "--code", code,
                      "--server", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    cid = json.loads(result.stdout.strip().splitlines()[-1])["capture_id"]
    token = live_server.token()
    with live_server.client(token) as c:
        streaming = c.get("/v1/live").json()
    (listed,) = [s for s in streaming["captures"] if s["id"] == cid]
    assert listed["frames"] == 6

    image = preview(live_server, token, cid)
    assert image.shape == (256, 256, 3)
    seen = np.all(image != BACKGROUND, axis=2)
    assert seen.mean() > 0.05  # the room's points, not an empty picture
    assert np.all(image == RED, axis=2).any()  # where the phone was
    with live_server.client() as c:
        assert c.get(f"/v1/captures/{cid}/live/preview.png").status_code == 401  # needs the token
