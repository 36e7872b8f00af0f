"""H.264 MP4 output through the ffmpeg that imageio-ffmpeg ships (no system ffmpeg needed).

The file is written under a temporary name beside the target, fsynced and renamed, so a
cancelled or failed render never leaves a half-written clip under the real name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from core.errors import ConfigError, DependencyError, StageError

MAX_SIDE = 4096  # H.264 level 5.1 tops out around 4096 x 2304


def check_video_size(width: int, height: int) -> None:
    """H.264 in yuv420p needs even sides."""
    for value, name in ((width, "width"), (height, "height")):
        if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= MAX_SIDE or value % 2:
            raise ConfigError(f"must be an even number of pixels from 16 to {MAX_SIDE}, got {value!r}", name)


def write_mp4(frames: Iterable[np.ndarray], path: Path, width: int, height: int, fps: float,
              quality: int = 20) -> int:
    """Encode (height, width, 3) uint8 frames as H.264 (yuv420p, CRF ``quality``) into ``path``;
    returns the number of frames written."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise DependencyError("imageio-ffmpeg is not installed (pip install imageio-ffmpeg)",
                              "video") from None
    check_video_size(width, height)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial.mp4")
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (width, height), fps=float(fps), codec="libx264", pix_fmt_out="yuv420p", quality=None,
        macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-crf", str(int(quality)), "-preset", "veryfast", "-movflags", "+faststart"],
    )
    count = 0
    try:
        writer.send(None)  # start ffmpeg
        for frame in frames:
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise StageError(f"frame {count} is {frame.shape} {frame.dtype}, "
                                 f"expected ({height}, {width}, 3) uint8", path)
            writer.send(np.ascontiguousarray(frame))
            count += 1
        writer.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return count
