"""Replaying a recorded RGB-D capture (a Stray Scanner folder) as a live stream, the way the phone
sends it: one binary WebSocket message per frame (capture_server.live), paced at the recorded
frame rate, with a window of frames in flight that the server acknowledges in groups."""

from __future__ import annotations

import csv
import json
import ssl
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from capture_server.client import PinMismatch, ServerSession
from capture_server.identity import der_fingerprint
from capture_server.live import ARKIT_TO_OPENCV
from core.errors import IngestError, ScanBridgeError

# ARKit's colour-stream sizes (4:3 and 16:9), largest first: the camera matrix's principal point
# says which one it was made for (it is near the centre, but not at it).
ARKIT_COLOR_SIZES = ((3840, 2880), (1920, 1440), (1920, 1080), (1440, 1080), (1280, 960), (640, 480))


@dataclass(frozen=True)
class RecordedFrame:
    index: int
    timestamp: float
    message: bytes


def pose_from_quaternion(t: list[float], q: list[float]) -> list[list[float]]:
    """4x4 camera-to-world from a translation and a unit quaternion (x, y, z, w)."""
    x, y, z, w = np.asarray(q, dtype=float) / np.linalg.norm(q)
    rot = np.array([  # (3, 3)
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, t
    return m.tolist()


def color_size_for(k: np.ndarray, depth_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the colour stream that ``k`` (3, 3) describes: the ARKit size with the
    depth map's aspect whose centre is within 5% of the principal point, else twice the
    principal point (with the depth map's aspect)."""
    depth_w, depth_h = depth_size
    cx, cy = float(k[0, 2]), float(k[1, 2])
    for w, h in ARKIT_COLOR_SIZES:
        same_aspect = abs(w * depth_h - h * depth_w) <= 0.02 * w * depth_h
        if same_aspect and abs(w / 2 - cx) < 0.05 * w and abs(h / 2 - cy) < 0.05 * h:
            return w, h
    w = round(2 * cx)
    return w, round(w * depth_h / depth_w)


def stray_pose_as_arkit(t: list[float], q: list[float]) -> list[list[float]]:
    """A Stray Scanner odometry row as the protocol's pose. Stray writes camera-to-world with
    OpenCV camera axes (x right, y down, z forward; see recon/ingest/strayscanner.py), the
    protocol carries ARKit camera axes (y up, z backwards): flip the camera's y and z."""
    return (np.asarray(pose_from_quaternion(t, q)) @ ARKIT_TO_OPENCV).tolist()  # the flip is its own inverse


def encode_frame(header: dict[str, Any], color: bytes, depth: np.ndarray | None,
                 confidence: np.ndarray | None) -> bytes:
    head = json.dumps(header).encode("utf-8")
    parts = [struct.pack(">I", len(head)), head, color]
    if depth is not None:
        parts.append(np.ascontiguousarray(depth, dtype="<u2").tobytes())
    if confidence is not None:
        parts.append(np.ascontiguousarray(confidence, dtype=np.uint8).tobytes())
    return b"".join(parts)


def is_stray_folder(path: Path) -> bool:
    return (path / "odometry.csv").is_file() and (path / "depth").is_dir()


def stray_frames(folder: Path) -> Iterator[RecordedFrame]:
    """The frames of a Stray Scanner export as the phone would stream them (depth, confidence,
    camera-to-world in ARKit axes; colour from an rgb.mp4 is not replayed yet, so frames are
    depth-only)."""
    try:
        k = np.loadtxt(folder / "camera_matrix.csv", delimiter=",")  # (3, 3) at the RGB resolution
    except (OSError, ValueError) as e:
        raise IngestError(f"cannot read intrinsics ({e})", folder / "camera_matrix.csv") from None
    intrinsics = {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2])}
    camera: dict[str, Any] | None = None
    with open(folder / "odometry.csv", newline="") as f:
        rows = list(csv.reader(f, skipinitialspace=True))
    for line, row in enumerate(rows[1:], start=2):
        try:
            timestamp, frame = float(row[0]), row[1].strip()
            t, q = [float(v) for v in row[2:5]], [float(v) for v in row[5:9]]
        except (IndexError, ValueError):
            raise IngestError(f"line {line} is not timestamp, frame, x, y, z, qx, qy, qz, qw",
                              folder / "odometry.csv") from None
        depth_path = folder / "depth" / f"{frame}.png"
        if not depth_path.is_file():
            continue
        depth = np.asarray(Image.open(depth_path), dtype=np.uint16)  # (H, W) millimetres
        conf_path = folder / "confidence" / f"{frame}.png"
        confidence = np.asarray(Image.open(conf_path), dtype=np.uint8) if conf_path.is_file() else None
        if camera is None:
            width, height = color_size_for(k, (depth.shape[1], depth.shape[0]))
            camera = {"width": width, "height": height, **intrinsics}
        header = {"index": int(frame), "timestamp": timestamp, "camera": camera,
                  "pose": stray_pose_as_arkit(t, q), "color_bytes": 0,
                  "depth": {"width": depth.shape[1], "height": depth.shape[0]},
                  "confidence": confidence is not None}
        yield RecordedFrame(int(frame), timestamp, encode_frame(header, b"", depth, confidence))


def stream_live(session: ServerSession, capture_id: str, frames: Iterator[RecordedFrame],
                speed: float = 1.0, window: int = 32) -> int:
    """Send ``frames`` over the capture's live WebSocket at ``speed`` times the recorded rate
    (0: as fast as the server acknowledges), with at most ``window`` frames not yet
    acknowledged. Returns the number of frames the server stored durably."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = session.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    context = None
    if url.startswith("wss://"):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # pinned below
    stored = 0
    with connect(f"{url}/v1/captures/{capture_id}/live", ssl=context, max_size=2**20,
                 additional_headers={"Authorization": f"Bearer {session.token}"}, proxy=None) as ws:
        if context is not None:
            seen = der_fingerprint(ws.socket.getpeercert(True))
            if session.fingerprint and seen != session.fingerprint:
                raise PinMismatch(f"certificate fingerprint is {seen}", session.base_url)
        start_wall = time.monotonic()
        start_ts: float | None = None
        unacked: list[int] = []

        def read_reply(index: int) -> None:
            nonlocal stored
            try:
                reply = json.loads(ws.recv())
            except ConnectionClosed as e:
                raise ScanBridgeError(f"the server closed the stream ({e})", f"frame {index}") from None
            if "error" in reply:
                raise ScanBridgeError(reply["error"], f"frame {unacked[0] if unacked else index}")
            unacked.remove(reply["ack"])
            stored = reply["frames"]

        for frame in frames:
            if start_ts is None:
                start_ts = frame.timestamp
            if speed > 0:
                wait = (frame.timestamp - start_ts) / speed - (time.monotonic() - start_wall)
                if wait > 0:
                    time.sleep(wait)
            while len(unacked) >= window:
                read_reply(frame.index)
            try:
                ws.send(frame.message)
            except ConnectionClosed:
                read_reply(frame.index)  # the server said why before closing
                raise
            unacked.append(frame.index)
        while unacked:
            read_reply(unacked[-1])
    return stored
