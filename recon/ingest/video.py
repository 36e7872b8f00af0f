"""Video files: keep the sharpest frame of each of ``target_frames`` equal time windows.

The video is decoded once, as a stream: only the best frame of the current window is held, so
memory does not grow with the length of the video.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.capture import Frame
from core.errors import IngestError
from core.source_paths import open_regular
from recon.ingest.common import IngestContext, SourceResult, copy_file, default_camera, frame_id

SHARPNESS_MAX_SIDE = 480
JPEG_QUALITY = 95
# A video that decodes to fewer than this share of the frames its header promises is truncated.
MIN_DECODED_SHARE = 0.9  # headers of variable-frame-rate files may overestimate a little
# ISO-BMFF (MP4, MOV, M4V) box types that may open a file; QuickTime files may start with any.
MP4_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
HEADER_BYTES = 16
MAX_FRAME_PIXELS = 1 << 26  # 8K is 33 MP
MAX_FRAME_COUNT = 10_000_000


def container_of(head: bytes) -> str | None:
    """The video container the first bytes of a file say it is (mp4, avi, mkv), or None."""
    if len(head) >= 8 and head[4:8] in MP4_FIRST_BOXES:
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, WebM
        return "mkv"
    return None


def check_video_file(path: Path) -> None:
    """Refuse a file whose content is not a video container, whatever its suffix says (a JPEG named
    .mp4 would otherwise become a one-frame video; a playlist could make FFmpeg open other files)."""
    with open_regular(path, path) as f:
        head = f.read(HEADER_BYTES)
    if container_of(head) is None:
        raise IngestError("is not a video (its content is no MP4, MOV, AVI or MKV container)", path)


def sharpness(frame_bgr: np.ndarray, max_side: int = SHARPNESS_MAX_SIDE) -> float:
    """Variance of the Laplacian of a downscaled grey copy of ``frame_bgr`` [H, W, 3] (or [H, W])."""
    grey = frame_bgr if frame_bgr.ndim == 2 else cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1.0:
        grey = cv2.resize(
            grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@dataclass
class _Candidate:
    index: int
    score: float
    timestamp: float
    image: np.ndarray  # [H, W, 3] BGR


def open_video(path: Path) -> cv2.VideoCapture:
    """An opened capture of the video file ``path`` (checked by content first), through FFmpeg only:
    no image-sequence patterns in its name, no other protocol."""
    check_video_file(path)
    cap = cv2.VideoCapture(os.path.abspath(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise IngestError("cannot open this video (truncated, corrupt or an unknown codec)", path)
    width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    if not (math.isfinite(width) and math.isfinite(height) and width * height <= MAX_FRAME_PIXELS):
        cap.release()
        raise IngestError(f"declares {width:.0f}x{height:.0f} frames, larger than a video may have", path)
    return cap


def declared_frame_count(cap: cv2.VideoCapture) -> int:
    """The frame count a container declares; 0 when it does not say (or says nonsense)."""
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(n) if math.isfinite(n) and 0 < n <= MAX_FRAME_COUNT else 0


def _count_frames(path: Path) -> int:
    """Count frames by grabbing them, for containers whose header does not say how many there are."""
    cap = open_video(path)
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def _write_jpeg(image: np.ndarray, dst: Path, source: Path) -> None:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise IngestError(f"could not encode a frame as JPEG ({dst.name})", source)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(buf.tobytes())


def _window(index: int, timestamp: float, frame_count: int, fps: float, windows: int) -> int:
    """Which of ``windows`` equal time windows a frame falls in (by frame number without a frame rate)."""
    if fps <= 0:
        return index * windows // max(frame_count, 1)
    duration = frame_count / fps
    # Half a frame of slack, so a timestamp a hair below a window's start stays in that window.
    return int((timestamp + 0.5 / fps) * windows / duration)


def read_video(path: Path, ctx: IngestContext) -> SourceResult:
    """Sharpest frame per time window -> images/frame_NNNNNN.jpg (NNNNNN = frame number in the video)."""
    if ctx.target_frames <= 0:
        raise IngestError(f"must be a positive number of frames, got {ctx.target_frames}", "target_frames")
    cap = open_video(path)
    reported = declared_frame_count(cap)
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    fps = fps if math.isfinite(fps) and 0 < fps < 10_000 else 0.0
    if reported <= 0:
        cap.release()
        reported = _count_frames(path)
        cap = open_video(path)
    windows = max(1, min(ctx.target_frames, reported))
    progress = ctx.progress.sub(0.0, 0.95)
    frames: list[Frame] = []
    best: _Candidate | None = None
    best_window = -1
    decoded = 0

    def flush(c: _Candidate) -> None:
        h, w = c.image.shape[:2]
        name = f"frame_{c.index:06d}.jpg"
        _write_jpeg(c.image, ctx.capture.images_dir / name, path)
        frames.append(
            Frame(
                id=frame_id(len(frames)),
                camera=default_camera(w, h),
                image=f"images/{name}",
                source_name=name,
                timestamp=c.timestamp,
            )
        )

    try:
        while True:
            ok, image = cap.read()
            if not ok or image is None:
                break
            index = decoded
            decoded += 1
            msec = float(cap.get(cv2.CAP_PROP_POS_MSEC))
            ts = msec / 1000.0 if msec > 0 or index == 0 else (index / fps if fps > 0 else float(index))
            window = min(_window(index, ts, reported, fps, windows), windows - 1)
            if best is not None and window != best_window:
                flush(best)
                best = None
            score = sharpness(image)
            if best is None or score > best.score:
                best, best_window = _Candidate(index, score, ts, image), window
            if decoded % 10 == 0:
                progress.update(min(1.0, decoded / max(reported, 1)), f"video frame {decoded}/{reported}")
    finally:
        cap.release()
    if best is not None:
        flush(best)
    if decoded == 0:
        raise IngestError("no frame of this video could be decoded", path)
    if decoded < MIN_DECODED_SHARE * reported - 1:
        raise IngestError(
            f"truncated or corrupt: decoded {decoded} of the {reported} frames it declares", path
        )
    if ctx.originals_to_raw:
        copy_file(path, ctx.capture.raw_dir / path.name)
    ctx.progress.update(1.0, f"kept {len(frames)} of {decoded} video frames")
    return SourceResult(
        kind="video",
        frames=tuple(frames),
        info={"video": path.name, "fps": fps, "video_frames": decoded},
    )
