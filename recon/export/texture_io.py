"""Texture helpers shared by the writers: fit to a size limit, encode, sample."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from core.errors import ConfigError

IMAGE_FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg")}
JPEG_QUALITY = 92


def texture_format_name(fmt: str) -> str:
    """The texture format's file suffix (``jpeg`` is ``jpg``); ConfigError for any other format."""
    name = "jpg" if fmt == "jpeg" else fmt
    if name not in IMAGE_FORMATS:
        raise ConfigError(f"unknown texture format {fmt!r} (known: png, jpeg)", "texture_format")
    return name


def check_jpeg_quality(quality: int) -> int:
    """``quality`` when it is a JPEG quality (an integer 1..100); ConfigError otherwise."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"expected a JPEG quality from 1 to 100, got {quality!r}", "texture_quality")
    return quality


def fit_texture(texture: np.ndarray, max_size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> the same image downscaled (aspect kept) so both sides are <= max_size."""
    h, w = texture.shape[:2]
    if max(h, w) <= max_size:
        return texture
    scale = max_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(texture).resize(size, Image.Resampling.LANCZOS))


def encode_texture(texture: np.ndarray, fmt: str, quality: int = JPEG_QUALITY) -> bytes:
    """(H, W, 3) uint8 -> PNG or JPEG (at ``quality``, 1..100) file bytes."""
    fmt = texture_format_name(fmt)
    check_jpeg_quality(quality)
    buf = io.BytesIO()
    image = Image.fromarray(texture)
    if fmt == "png":
        image.save(buf, "PNG", compress_level=3)
    else:
        image.save(buf, "JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup with wrap-around. texture (H, W, 3) uint8, uv (..., 2) -> (..., 3) float32 0..255.

    uv (0, 0) is the bottom-left of the image, as in TexturedMesh.
    """
    h, w = texture.shape[:2]
    x = (uv[..., 0] % 1.0) * w - 0.5  # (...,)
    y = ((1.0 - uv[..., 1]) % 1.0) * h - 0.5  # (...,)
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0)[..., None].astype(np.float32)  # (..., 1)
    fy = (y - y0)[..., None].astype(np.float32)
    x0 = x0.astype(np.int64) % w
    y0 = y0.astype(np.int64) % h
    x1 = (x0 + 1) % w
    y1 = (y0 + 1) % h
    t = texture.astype(np.float32)
    top = t[y0, x0] * (1 - fx) + t[y0, x1] * fx  # (..., 3)
    bottom = t[y1, x0] * (1 - fx) + t[y1, x1] * fx
    return top * (1 - fy) + bottom * fy
