"""Live RGB-D frames over a WebSocket: decode and check each frame, store it in the capture folder
as it arrives (images/, depth/, confidence/ and a journal), and build the manifest's frames at finish.

One binary message per frame::

    uint32 big-endian N | N bytes of JSON header | colour JPEG | depth | confidence

The header: ``index`` (int >= 0, unique), ``timestamp`` (s), ``camera`` (``width``, ``height``,
``fx``, ``fy``, ``cx``, ``cy`` at the colour resolution), ``pose`` (4x4 camera-to-world in ARKit
axes: x right, y up, z backwards; or null), ``color_bytes`` (length of the JPEG, 0 for none),
``depth`` (``width``, ``height``: uint16 little-endian millimetres, row-major), ``confidence``
(bool: uint8 0..2 at the depth size follows).
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from capture_server.bounded import parse_json
from capture_server.errors import Conflict, RequestError
from core.capture import CaptureFolder, Frame, parse_camera, parse_pose
from core.errors import ManifestError
from core.fsio import fsync_dir

JOURNAL = "live-frames.jsonl"  # in raw/: one JSON line per stored frame
MAX_HEADER = 64 * 1024
MAX_DEPTH_PIXELS = 1024 * 1024
ARKIT_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])  # flips the camera's y and z axes


@dataclass(frozen=True)
class LiveFrame:
    index: int
    header: dict[str, Any]
    color: bytes
    depth: np.ndarray | None  # (H, W) uint16 millimetres
    confidence: np.ndarray | None  # (H, W) uint8


def _field(header: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = header.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise RequestError(f"expected {getattr(kind, '__name__', kind)}, got {value!r}", key)
    return value


def parse_frame_message(message: bytes) -> LiveFrame:
    """Split and check one binary frame; every error names the field at fault."""
    if len(message) < 4:
        raise RequestError("frame is shorter than its 4-byte header length", "frame")
    (n,) = struct.unpack(">I", message[:4])
    if n == 0 or n > MAX_HEADER or 4 + n > len(message):
        raise RequestError(f"header length {n} does not fit the frame of {len(message)} bytes", "frame")
    header = parse_json(bytes(message[4:4 + n]), "header")
    if not isinstance(header, dict):
        raise RequestError("header must be a JSON object", "header")
    index = _field(header, "index", int)
    if index < 0 or index > 10_000_000:
        raise RequestError("must be between 0 and 10,000,000", "index")
    _field(header, "timestamp", (int, float))
    try:
        parse_camera(header.get("camera"), "camera")
        pose = header.get("pose")
        if pose is not None:
            parse_pose(pose, "pose")
    except ManifestError as e:
        raise RequestError(e.reason, e.where) from None
    color_bytes = _field(header, "color_bytes", int)
    body = memoryview(message)[4 + n:]
    depth_spec = header.get("depth")
    depth_w = depth_h = 0
    if depth_spec is not None:
        if not isinstance(depth_spec, dict):
            raise RequestError("expected {width, height} or null", "depth")
        depth_w, depth_h = _field(depth_spec, "width", int), _field(depth_spec, "height", int)
        if depth_w <= 0 or depth_h <= 0 or depth_w * depth_h > MAX_DEPTH_PIXELS:
            raise RequestError(f"bad depth size {depth_w}x{depth_h}", "depth")
    has_conf = bool(header.get("confidence"))
    if has_conf and depth_spec is None:
        raise RequestError("confidence needs a depth map", "confidence")
    if color_bytes == 0 and depth_spec is None:
        raise RequestError("a frame needs colour, depth or both", "frame")
    expected = color_bytes + depth_w * depth_h * 2 + (depth_w * depth_h if has_conf else 0)
    if color_bytes < 0 or len(body) != expected:
        raise RequestError(f"payload is {len(body)} bytes, the header describes {expected}", "frame")
    color = bytes(body[:color_bytes])
    if color and not color.startswith(b"\xff\xd8"):
        raise RequestError("colour is not a JPEG", "color_bytes")
    depth = confidence = None
    if depth_spec is not None:
        end = color_bytes + depth_w * depth_h * 2
        depth = np.frombuffer(body[color_bytes:end], dtype="<u2").reshape(depth_h, depth_w)  # (H, W)
        if has_conf:
            confidence = np.frombuffer(body[end:], dtype=np.uint8).reshape(depth_h, depth_w)  # (H, W)
            if confidence.max(initial=0) > 2:
                raise RequestError("confidence values must be 0, 1 or 2", "confidence")
    return LiveFrame(index, header, color, depth, confidence)


def _png(array: np.ndarray) -> bytes:
    """16-bit (uint16) or 8-bit (uint8) single-channel PNG."""
    buf = io.BytesIO()
    # I;16 or L from the dtype; zlib level 1 is 3x faster than the default and 20% larger
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class LiveRecorder:
    """Stores the frames of one capture (one stream at a time). ``store`` writes a frame's files
    (temporary name, then rename) and its journal line; ``commit`` makes everything stored since
    the last commit durable with one fsync per file and folder, so the server acknowledges
    frames in groups instead of paying several fsyncs per frame."""

    def __init__(self, capture: CaptureFolder) -> None:
        self.capture = capture
        self.journal = capture.raw_dir / JOURNAL
        self._lock = threading.Lock()
        self._seen = {r["index"] for r in read_journal(self.journal)}
        self._unsynced: list[Path] = []

    @property
    def stored(self) -> int:
        return len(self._seen)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._unsynced.append(path)

    def store(self, frame: LiveFrame) -> int:
        """Write the frame's files, then its journal line; durable after the next ``commit``."""
        with self._lock:
            if frame.index in self._seen:
                raise Conflict("a frame with this index was already stored", f"index {frame.index}")
            name = f"frame_{frame.index:06d}"
            record: dict[str, Any] = {k: frame.header.get(k)
                                      for k in ("index", "timestamp", "camera", "pose")}
            if frame.color:
                self._write(self.capture.images_dir / f"{name}.jpg", frame.color)
                record["image"] = f"images/{name}.jpg"
            if frame.depth is not None:
                self._write(self.capture.depth_dir / f"{name}.png", _png(frame.depth))
                record["depth"] = f"depth/{name}.png"
            if frame.confidence is not None:
                self._write(self.capture.confidence_dir / f"{name}.png", _png(frame.confidence))
                record["confidence"] = f"confidence/{name}.png"
            with open(self.journal, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            self._seen.add(frame.index)
            return len(self._seen)

    def commit(self) -> int:
        """fsync the files written since the last commit, their folders, then the journal."""
        with self._lock:
            paths, self._unsynced = self._unsynced, []
            for path in paths:
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
            for folder in {p.parent for p in paths}:
                fsync_dir(folder)
            if self.journal.exists():
                with open(self.journal, "rb") as f:
                    os.fsync(f.fileno())
                fsync_dir(self.journal.parent)
            return len(self._seen)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Frame records in arrival order; a torn last line (crash mid-append) is ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def frames_from_journal(capture: CaptureFolder) -> list[Frame]:
    """Manifest frames for the live frames, in index order, with poses in OpenCV axes."""
    frames = []
    for r in sorted(read_journal(capture.raw_dir / JOURNAL), key=lambda r: r["index"]):
        named = [r.get(k) for k in ("image", "depth", "confidence") if r.get(k)]
        if not all((capture.root / n).is_file() and (capture.root / n).stat().st_size for n in named):
            continue  # its files were lost in a crash before the frame was acknowledged
        pose = None
        if r.get("pose") is not None:
            c2w = np.asarray(r["pose"], dtype=float) @ ARKIT_TO_OPENCV  # (4, 4)
            pose = tuple(tuple(float(x) for x in row) for row in c2w)
        frames.append(Frame(
            id=f"frame_{r['index']:06d}", camera=parse_camera(r["camera"], "camera"), image=r.get("image"),
            pose=pose, depth=r.get("depth"), depth_scale=0.001, confidence=r.get("confidence"),
            timestamp=float(r["timestamp"]),
        ))
    return frames
