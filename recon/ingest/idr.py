"""IDR / NeuS / MonoSDF datasets: images beside a cameras.npz of ``world_mat_i`` projections.

``world_mat_i`` is a 4x4 world-to-image projection K[R|t] (OpenCV axes). ``scale_mat_i``, which
maps the object into a unit sphere, is kept in the manifest's source info but not applied, so
poses stay in the dataset's own units (DTU: millimetres), and the capture is marked unscaled.
MonoSDF's DTU copy keeps the cameras of the original 1600x1200 photos while its images are a
centre crop to a square resized down; when the cameras' principal point lies outside the
images, that crop is undone in the intrinsics.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.capture import Camera, Frame
from core.errors import IngestError
from recon.ingest.common import IMAGE_SUFFIXES, IngestContext, SourceResult, files_with_suffix, link_or_copy

CAMERAS_FILE = "cameras.npz"
_INDEX_RE = re.compile(r"(\d+)")


def is_idr_dataset(root: Path) -> bool:
    return (root / CAMERAS_FILE).is_file()


def _images(root: Path) -> list[Path]:
    for sub in ("image", "images", "rgb"):
        if (root / sub).is_dir():
            found = files_with_suffix(root / sub, IMAGE_SUFFIXES, recursive=False)
            if found:
                return found
    return files_with_suffix(root, IMAGE_SUFFIXES, recursive=False)


def _index(path: Path) -> int:
    m = _INDEX_RE.search(path.stem)
    if m is None:
        raise IngestError("cannot tell which camera this image belongs to (no number in its name)", path)
    return int(m.group(1))


# Photo sizes the cameras of IDR-style datasets are known to be calibrated for (DTU's robot camera).
KNOWN_ORIGINAL_SIZES = ((1600, 1200),)


def _original_size(cx: float, cy: float) -> tuple[float, float]:
    """The original photo size behind a principal point: a known size within 5%, else (2cx, 2cy)."""
    for w, h in KNOWN_ORIGINAL_SIZES:
        if abs(2 * cx - w) < 0.05 * w and abs(2 * cy - h) < 0.05 * h:
            return float(w), float(h)
    return 2.0 * cx, 2.0 * cy


def camera_and_pose(P: np.ndarray, width: int, height: int) -> tuple[Camera, np.ndarray]:
    """Intrinsics at (width, height) and the OpenCV camera-to-world pose of a projection P (3x4)."""
    K, R, c, *_ = cv2.decomposeProjectionMatrix(P)
    K = K / K[2, 2]
    c = (c[:3] / c[3]).ravel()
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = R.T, c
    cx, cy = K[0, 2], K[1, 2]
    if cx > width or cy > height:  # cameras of a larger original: undo a centre crop to a square
        orig_w, orig_h = _original_size(cx, cy)
        side = min(orig_w, orig_h)
        K[0, 2] -= (orig_w - side) / 2.0
        K[1, 2] -= (orig_h - side) / 2.0
        K[:2] *= width / side
    # OpenCV puts pixel centres at integers; the capture format at +0.5.
    cam = Camera(width, height, float(K[0, 0]), float(K[1, 1]), float(K[0, 2]) + 0.5, float(K[1, 2]) + 0.5)
    return cam, c2w


def read_idr(root: Path, ctx: IngestContext) -> SourceResult:
    npz_path = root / CAMERAS_FILE
    try:
        cams = np.load(npz_path)
    except (OSError, ValueError) as e:
        raise IngestError(f"cannot read camera file: {e}", npz_path) from None
    images = _images(root)
    if not images:
        raise IngestError("no images beside cameras.npz", root)
    frames = []
    for n, path in enumerate(images):
        ctx.progress.update(n / len(images), path.name)
        key = f"world_mat_{_index(path)}"
        if key not in cams:
            raise IngestError(f"has no {key} for image {path.name}", npz_path)
        P = np.asarray(cams[key], np.float64)[:3]
        if P.shape != (3, 4) or not np.isfinite(P).all():
            raise IngestError("not a finite 3x4 projection", f"{npz_path}: {key}")
        try:
            with Image.open(path) as im:
                width, height = im.size
                im.verify()
        except Exception:
            raise IngestError("not an image this program can read", path) from None
        camera, c2w = camera_and_pose(P, width, height)
        dst = link_or_copy(path, ctx.capture.images_dir / path.name)
        frames.append(
            Frame(
                id=f"{n:06d}",
                camera=camera,
                image=f"images/{dst.name}",
                source_name=path.name,
                pose=tuple(tuple(float(x) for x in row) for row in c2w),
            )
        )
    if ctx.originals_to_raw:
        link_or_copy(npz_path, ctx.capture.raw_dir / CAMERAS_FILE)
        for path in images:
            link_or_copy(path, ctx.capture.raw_dir / path.name)
    return SourceResult(
        kind="idr",
        frames=tuple(frames),
        default_mode="import",
        scale="unscaled",
        info={"cameras": CAMERAS_FILE},
    )
