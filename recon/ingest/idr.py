"""IDR / NeuS / MonoSDF datasets: images beside a cameras.npz of ``world_mat_i`` projections.

``world_mat_i`` is a 4x4 world-to-image projection K[R|t] (OpenCV axes). ``scale_mat_i``, which
maps the object into a unit sphere, is kept in the manifest's source info but not applied, so
poses stay in the dataset's own units (DTU: millimetres), and the capture is marked unscaled.
MonoSDF's DTU copy keeps the cameras of the original 1600x1200 photos while its images are a
centre crop to a square resized down; when the cameras' principal point lies outside the
images, that crop is undone in the intrinsics.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np

from core.capture import Camera, Frame
from core.errors import IngestError
from core.source_paths import inside_root, read_regular
from recon.ingest.common import (
    IMAGE_SUFFIXES,
    IngestContext,
    RawMirror,
    SourceResult,
    copy_file,
    files_with_suffix,
)
from recon.ingest.depth import load_npy_bytes
from recon.ingest.images import open_image, suffix_for

CAMERAS_FILE = "cameras.npz"
_INDEX_RE = re.compile(r"(\d+)")
MAX_CAMERAS_BYTES = 64 << 20
MAX_MATRIX_BYTES = 1 << 16  # a 4x4 float64 array is 128 bytes and a header
MAX_COORDINATE = 1e9


def is_idr_dataset(root: Path) -> bool:
    return (root / CAMERAS_FILE).is_file()


def _images(root: Path) -> list[Path]:
    """The dataset's images; each one inside ``root`` (an image folder that links out is refused)."""
    for sub in ("image", "images", "rgb"):
        if (root / sub).is_dir():
            found = files_with_suffix(root / sub, IMAGE_SUFFIXES, recursive=False)
            for path in found:
                inside_root(root, path.relative_to(root).as_posix(), path)
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


class CameraFile:
    """The ``world_mat_i`` arrays of a cameras.npz, read from memory one at a time, each checked
    (numbers only, its declared size bounded) before numpy allocates it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(read_regular(path, MAX_CAMERAS_BYTES, path)))
            self._members = {info.filename: info for info in self._zip.infolist()}
        except (zipfile.BadZipFile, ValueError, EOFError, RuntimeError, NotImplementedError) as e:
            raise IngestError(f"not a readable .npz file ({e})", path) from None

    def __contains__(self, key: str) -> bool:
        return f"{key}.npy" in self._members

    def matrix(self, key: str) -> np.ndarray:
        """``key`` as a finite float64 3x4 projection (the top of a 4x4 one)."""
        where = f"{self.path}: {key}"
        info = self._members[f"{key}.npy"]
        if info.file_size > MAX_MATRIX_BYTES:
            raise IngestError(f"holds {info.file_size} bytes, not a 4x4 matrix", where)
        try:
            data = self._zip.read(info)
        except (zipfile.BadZipFile, ValueError, EOFError, RuntimeError, NotImplementedError, zlib.error) as e:
            raise IngestError(f"cannot read this array: corrupt or encrypted ({e})", where) from None
        array = load_npy_bytes(data, where)
        if array.dtype.kind not in "iuf" or array.ndim != 2 or array.shape[1] != 4 or array.shape[0] < 3:
            got = f"{array.dtype} {array.shape}"
            raise IngestError(f"expected a 3x4 or 4x4 matrix of numbers, got {got}", where)
        P = np.asarray(array[:3], np.float64)
        if not np.isfinite(P).all() or np.abs(P).max() > MAX_COORDINATE:
            raise IngestError("not a finite 3x4 projection", where)
        return P


def camera_and_pose(
    P: np.ndarray, width: int, height: int, where: str = "world_mat"
) -> tuple[Camera, np.ndarray]:
    """Intrinsics at (width, height) and the OpenCV camera-to-world pose of a projection P (3x4).

    A projection whose 3x3 part is singular, or whose camera centre is at infinity, is an
    IngestError naming ``where``.
    """
    M = P[:, :3]
    scale = np.abs(M).max()
    if scale == 0 or abs(np.linalg.det(M / scale)) < 1e-9:
        raise IngestError("a degenerate projection (its 3x3 part is singular)", where)
    K, R, c, *_ = cv2.decomposeProjectionMatrix(P)
    if abs(K[2, 2]) < 1e-12 or abs(c[3, 0]) < 1e-12 * max(np.abs(c[:3]).max(), 1.0):
        raise IngestError("a degenerate projection (no finite camera centre)", where)
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
    values = np.array([cam.fx, cam.fy, cam.cx, cam.cy, *c2w.ravel()])
    if not np.isfinite(values).all() or cam.fx <= 0 or cam.fy <= 0 or np.abs(c).max() > MAX_COORDINATE:
        raise IngestError("a projection that gives no usable camera (focal length not positive)", where)
    return cam, c2w


def read_idr(root: Path, ctx: IngestContext) -> SourceResult:
    npz_path = root / CAMERAS_FILE
    inside_root(root, CAMERAS_FILE, npz_path)
    cams = CameraFile(npz_path)
    images = _images(root)
    if not images:
        raise IngestError("no images beside cameras.npz", root)
    frames = []
    for n, path in enumerate(images):
        ctx.progress.update(n / len(images), path.name)
        key = f"world_mat_{_index(path)}"
        if key not in cams:
            raise IngestError(f"has no {key} for image {path.name}", npz_path)
        P = cams.matrix(key)
        with open_image(path) as im:
            (width, height), image_format = im.size, im.format
        camera, c2w = camera_and_pose(P, width, height, f"{npz_path}: {key}")
        if image_format not in ("JPEG", "MPO", "PNG"):
            raise IngestError(f"expected a JPEG or PNG image, got {image_format}", path)
        dst = copy_file(path, ctx.capture.images_dir / (path.stem + suffix_for(image_format, path.suffix)))
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
        raw = RawMirror(root, ctx.capture.raw_dir)
        raw.add(npz_path, CAMERAS_FILE)
        for path in images:
            raw.add(path, path.relative_to(root).as_posix())
    return SourceResult(
        kind="idr",
        frames=tuple(frames),
        default_mode="import",
        scale="unscaled",
        info={"cameras": CAMERAS_FILE},
    )
