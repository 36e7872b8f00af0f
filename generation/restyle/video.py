"""Writing restyled frames: an H.264 MP4 through PyAV (whose wheels ship FFmpeg with libx264) and PNGs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import DependencyError
from core.fsio import atomic_writer, fsync_dir


def _even(image: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row / column where a side is odd."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float = 12.0, crf: int = 18) -> Path:
    """Encode (H, W, 3) uint8 frames as an H.264 (yuv420p) MP4 at ``path``, published atomically."""
    import av

    if not frames:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    try:
        with av.open(str(tmp), mode="w") as container:
            try:
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            except (av.error.FFmpegError, ValueError) as e:
                raise DependencyError(f"this PyAV has no H.264 encoder: {e}", "libx264") from None
            first = _even(frames[0])
            stream.height, stream.width = first.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf)}
            for frame in frames:
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_even(frame)), format="rgb24")
                container.mux(stream.encode(video_frame))
            container.mux(stream.encode(None))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_frames(frames: Sequence[np.ndarray], folder: Path, names: Sequence[str]) -> list[Path]:
    """One PNG per frame, ``folder/<name>.png``, each written atomically."""
    out = []
    for frame, name in zip(frames, names, strict=True):
        path = Path(folder) / f"{name}.png"
        with atomic_writer(path) as f:
            Image.fromarray(frame).save(f, format="PNG")
        out.append(path)
    return out


def read_mp4(path: Path) -> list[np.ndarray]:
    """Decode every frame of a video as (H, W, 3) uint8 RGB (to check what was written)."""
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
