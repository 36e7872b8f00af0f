"""Coverage of a guided orbit from the device poses that arrive with live frames."""

from __future__ import annotations

import io
import json
import math
import ssl

import numpy as np
from PIL import Image
from server_test_kit import LiveServer, new_capture
from websockets.sync.client import connect

from capture_server.replay import encode_frame

CAMERA = {"width": 32, "height": 24, "fx": 30.0, "fy": 30.0, "cx": 16.0, "cy": 12.0}


def arkit_looking_at(position: np.ndarray, target: np.ndarray) -> list[list[float]]:
    """ARKit camera-to-world (x right, y up, z backwards) at ``position`` facing ``target``."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, -forward, position
    return m.tolist()


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 120, 40)).save(buf, format="JPEG")
    return buf.getvalue()


def stream(server: LiveServer, token: str, capture_id: str, poses: list[list[list[float]]]) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    url = server.url.replace("https://", "wss://") + f"/v1/captures/{capture_id}/live"
    color = jpeg()
    with connect(url, ssl=context, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None) as ws:
        for i, pose in enumerate(poses):
            header = {"index": i, "timestamp": float(i), "camera": CAMERA, "pose": pose,
                      "color_bytes": len(color), "depth": None, "confidence": False}
            ws.send(encode_frame(header, color, None, None))
        acked = [json.loads(ws.recv())["ack"] for _ in poses]
    assert sorted(acked) == list(range(len(poses)))


def test_half_an_orbit_covers_half_the_azimuth_sectors_at_one_elevation(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c, "guided")
        assert c.get(f"/v1/captures/{cid}/coverage").json()["available"] is False
        elevation, target = math.radians(30), np.array([0.2, 0.1, -0.3])
        poses = []
        for deg in range(5, 180, 10):  # 18 views from 5 to 175 degrees of azimuth, 0.5 m away
            a = math.radians(deg)
            offset = 0.5 * np.array([math.cos(elevation) * math.sin(a), math.sin(elevation),
                                     math.cos(elevation) * math.cos(a)])
            poses.append(arkit_looking_at(target + offset, target))
        stream(live_server, token, cid, poses)
        cov = c.get(f"/v1/captures/{cid}/coverage").json()
    assert cov["available"] is True and cov["views"] == 18
    assert np.allclose(cov["centre"], [0.2, 0.1, -0.3], atol=1e-3)
    assert abs(cov["radius_m"] - 0.5) < 1e-3
    counts = np.asarray(cov["counts"])
    assert counts.shape == (4, 12)
    assert counts[2].tolist() == [3] * 6 + [0] * 6  # the 15..45 degree band, sectors 0..180 degrees
    assert counts.sum() == 18
    assert cov["azimuth_covered_fraction"] == 0.5 and cov["covered_fraction"] == 0.125
