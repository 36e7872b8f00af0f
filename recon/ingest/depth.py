"""Depth, confidence and mask maps into the capture format: 16-bit PNG millimetres, 8-bit PNGs."""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np

from core.errors import IngestError
from core.source_paths import open_regular, read_regular

# OpenCV reads and writes EXR only when this is set before its first EXR call.
os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

import cv2  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

MAX_DEPTH_MM = 65535
MAX_MAP_BYTES = 512 << 20
MAX_MAP_PIXELS = 1 << 26  # 67 MP; phone depth maps are well under 1 MP, photos under 50 MP
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXR_MAGIC = b"\x76\x2f\x31\x01"


def _exr_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from an OpenEXR header's dataWindow attribute, or None if not found."""
    pos = 8  # magic, version
    for _ in range(1000):
        end = data.find(b"\0", pos, pos + 256)
        if end <= pos:  # an empty name ends the header (or it is garbage)
            return None
        name = data[pos:end]
        type_end = data.find(b"\0", end + 1, end + 257)
        if type_end < 0 or type_end + 4 > len(data):
            return None
        (size,) = struct.unpack_from("<i", data, type_end + 1)
        value_at = type_end + 5
        if size < 0 or value_at + size > len(data):
            return None
        if name == b"dataWindow" and size == 16:
            x0, y0, x1, y1 = struct.unpack_from("<4i", data, value_at)
            return x1 - x0 + 1, y1 - y0 + 1
        pos = value_at + size
    return None


def load_npy_bytes(data: bytes, path: Path | str) -> np.ndarray:
    """A .npy array from memory, its declared shape checked before anything is allocated; numbers
    only (no objects, no pickles). ``path`` names it in errors."""
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy version {version}")
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, SyntaxError, TypeError, EOFError) as e:
        raise IngestError(f"cannot read this map ({e})", path) from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise IngestError(f"expected numbers, got {dtype}", path)
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count > MAX_MAP_PIXELS * 4 or count * dtype.itemsize > len(data):
        raise IngestError(f"declares shape {shape}, larger than the data it holds", path)
    f.seek(0)
    try:
        return np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise IngestError(f"cannot read this array ({e})", path) from None


def _check_declared_size(data: bytes, path: Path) -> None:
    """Refuse a picture whose header (PNG, EXR, or what Pillow identifies) declares more than
    MAX_MAP_PIXELS pixels, before anything is decoded."""
    size: tuple[int, int] | None = None
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24 and data[12:16] == b"IHDR":
        size = struct.unpack(">II", data[16:24])
    elif data.startswith(EXR_MAGIC):
        size = _exr_size(data)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as img:
                    size = img.size
        except Image.DecompressionBombError:
            reason = f"declares more than the {MAX_MAP_PIXELS} pixels a map may have"
            raise IngestError(reason, path) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            size = None
    if size is not None and size[0] * size[1] > MAX_MAP_PIXELS:
        w, h = size
        raise IngestError(f"declares {w}x{h} pixels, more than the {MAX_MAP_PIXELS} a map may have", path)


def is_png(path: Path) -> bool:
    """Whether the file's content (not its name) is a PNG."""
    with open_regular(path, path) as f:
        return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def _last_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[-1][:200] if lines else type(e).__name__


def read_raw_map(path: Path) -> np.ndarray:
    """A depth / mask / confidence map as stored: [H, W] (first channel of multi-channel files).

    Its size is checked from its header before it is decoded, so a file declaring 60000x60000
    pixels is one IngestError naming it, not a 7 GB allocation.
    """
    data = read_regular(path, MAX_MAP_BYTES, path)
    if not data:
        raise IngestError("is empty", path)
    try:
        if path.suffix.lower() == ".npy":
            decoded = load_npy_bytes(data, path)
        else:
            _check_declared_size(data, path)
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except (OSError, ValueError, EOFError, cv2.error) as e:
        raise IngestError(f"cannot read this map ({_last_line(e)})", path) from None
    if decoded is None:
        raise IngestError("cannot read this map (corrupt, truncated or an unsupported format)", path)
    data = decoded
    if data.ndim == 3:
        # OpenCV gives BGR(A); an RGB depth EXR keeps depth in R (index 2).
        is_rgb_exr = path.suffix.lower() == ".exr" and data.shape[2] >= 3
        data = data[..., 2] if is_rgb_exr else data[..., 0]
    if data.ndim != 2 or data.size == 0:
        raise IngestError(f"expected a single-channel 2D map, got shape {data.shape}", path)
    if data.dtype.kind not in "biuf":
        raise IngestError(f"expected numbers, got {data.dtype}", path)
    return data


def metres_to_mm_png(depth_m: np.ndarray, dst: Path) -> Path:
    """Write ``depth_m`` [H, W] (metres; NaN, inf, <= 0 mean no measurement) as 16-bit mm PNG."""
    mm = np.nan_to_num(depth_m.astype(np.float64) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
    mm = np.where((mm > 0) & (mm <= MAX_DEPTH_MM), np.rint(mm), 0).astype(np.uint16)  # [H, W]
    dst.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", mm)
    if not ok:
        raise IngestError("could not encode depth as PNG", dst)
    dst.write_bytes(buf.tobytes())
    return dst


def _write_map_png(data: np.ndarray, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", data)
    if not ok:
        raise IngestError("could not encode map as PNG", dst)
    dst.write_bytes(buf.tobytes())
    return dst


def write_uint16_png(data: np.ndarray, dst: Path) -> Path:
    """Write a 16-bit [H, W] map as PNG."""
    return _write_map_png(data.astype(np.uint16), dst)


def write_uint8_png(data: np.ndarray, dst: Path) -> Path:
    """Write an 8-bit [H, W] map as PNG."""
    return _write_map_png(data.astype(np.uint8), dst)
