"""Parse a COLMAP sparse model's cameras and images (binary or text), bounded and checked.

Only what ingest needs is read: each camera's model, size and parameters, and each registered
image's name, camera and pose. The newer rigs/frames files (COLMAP 3.12+) need no reading: the
images file still holds every registered image's cam_from_world. Point tracks are skipped. Every
count is checked against the bytes left in the file before anything is read, so a hostile file
can neither loop for ever nor ask for more memory than its own size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core.errors import IngestError
from recon.ingest.fields import MAX_PIXELS_PER_SIDE
from recon.ingest.geometry import quaternion_to_matrix

# COLMAP's camera models: id -> (name, number of parameters).
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
PARAM_COUNT = {name: n for name, n in CAMERA_MODELS.values()}
MAX_MODEL_FILE_BYTES = 4 << 30
POINT2D_BYTES = 24  # x, y (double), point3D_id (int64)
MAX_NAME_BYTES = 4096


@dataclass(frozen=True)
class ColmapCamera:
    model: str
    width: int
    height: int
    params: tuple[float, ...]


@dataclass(frozen=True)
class ColmapImage:
    name: str
    camera_id: int
    c2w: np.ndarray  # [4, 4] camera-to-world, OpenCV axes (COLMAP's own)


def _c2w(q_wxyz: tuple[float, ...], t: tuple[float, ...], where: str) -> np.ndarray:
    if not all(np.isfinite(q_wxyz)) or not all(np.isfinite(t)) or any(abs(v) > 1e9 for v in t):
        raise IngestError("pose holds a non-finite or huge number", where)
    w2c = np.eye(4)
    w2c[:3, :3] = quaternion_to_matrix(q_wxyz[1], q_wxyz[2], q_wxyz[3], q_wxyz[0], where)
    w2c[:3, 3] = t
    c2w = np.eye(4)
    c2w[:3, :3] = w2c[:3, :3].T
    c2w[:3, 3] = -w2c[:3, :3].T @ w2c[:3, 3]
    return c2w


def _camera(model: str, width: int, height: int, params: tuple[float, ...], where: str) -> ColmapCamera:
    if not (0 < width <= MAX_PIXELS_PER_SIDE and 0 < height <= MAX_PIXELS_PER_SIDE):
        raise IngestError(f"image size {width}x{height} is out of range", where)
    if not all(np.isfinite(params)) or any(abs(p) > 1e9 for p in params):
        raise IngestError("camera parameters must be finite numbers", where)
    return ColmapCamera(model, width, height, params)


# -- binary ------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, f: BinaryIO, size: int, where: str) -> None:
        self.f, self.left, self.where = f, size, where

    def take(self, fmt: str) -> tuple:
        n = struct.calcsize(fmt)
        if n > self.left:
            raise IngestError("truncated", self.where)
        self.left -= n
        return struct.unpack(fmt, self.f.read(n))

    def skip(self, n: int) -> None:
        if n > self.left:
            raise IngestError("truncated (a count is larger than the rest of the file)", self.where)
        self.left -= n
        self.f.seek(n, 1)

    def count(self, item_bytes: int) -> int:
        (n,) = self.take("<Q")
        if n * item_bytes > self.left:
            raise IngestError(f"says it holds {n} entries, more than the file's size allows", self.where)
        return n

    def name(self) -> str:
        raw = bytearray()
        while True:
            (b,) = self.take("<B")
            if b == 0:
                break
            raw.append(b)
            if len(raw) > MAX_NAME_BYTES:
                raise IngestError("an image name is longer than 4096 bytes", self.where)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise IngestError("an image name is not UTF-8", self.where) from None


def _open(path: Path, where: str) -> tuple[BinaryIO, int]:
    size = path.stat().st_size
    if size > MAX_MODEL_FILE_BYTES:
        raise IngestError(f"is {size} bytes, larger than this reader accepts", where)
    return open(path, "rb"), size


def read_cameras_bin(path: Path, where: str) -> dict[int, ColmapCamera]:
    f, size = _open(path, where)
    with f:
        r = _Reader(f, size, where)
        cameras = {}
        for _ in range(r.count(24)):
            camera_id, model_id, width, height = r.take("<iiQQ")
            if model_id not in CAMERA_MODELS:
                raise IngestError(f"camera {camera_id} has unknown model id {model_id}", where)
            model, n = CAMERA_MODELS[model_id]
            params = r.take(f"<{n}d")
            cameras[camera_id] = _camera(model, width, height, params, f"{where}: camera {camera_id}")
    return cameras


def read_images_bin(path: Path, where: str) -> list[ColmapImage]:
    f, size = _open(path, where)
    with f:
        r = _Reader(f, size, where)
        images = []
        for _ in range(r.count(4 + 56 + 4 + 1 + 8)):
            (image_id,) = r.take("<i")
            q_t = r.take("<7d")
            (camera_id,) = r.take("<i")
            name = r.name()
            r.skip(r.count(POINT2D_BYTES) * POINT2D_BYTES)
            images.append(ColmapImage(name, camera_id, _c2w(q_t[:4], q_t[4:], f"{where}: image {image_id}")))
    return images


# -- text --------------------------------------------------------------------------------------


def _lines(path: Path, where: str) -> list[str]:
    if path.stat().st_size > MAX_MODEL_FILE_BYTES:
        raise IngestError("is larger than this reader accepts", where)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise IngestError(f"not UTF-8 text ({e})", where) from None


def _floats(fields: list[str], where: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in fields)
    except ValueError:
        raise IngestError("expected numbers", where) from None


def _int(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise IngestError(f"expected a whole number, got {text[:40]!r}", where) from None


def read_cameras_txt(path: Path, where: str) -> dict[int, ColmapCamera]:
    cameras = {}
    for line_no, line in enumerate(_lines(path, where), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        at = f"{where}: line {line_no}"
        fields = line.split()
        if len(fields) < 4:
            raise IngestError("expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS...", at)
        model = fields[1]
        if model not in PARAM_COUNT:
            raise IngestError(f"unknown camera model {model[:40]!r}", at)
        if len(fields) != 4 + PARAM_COUNT[model]:
            raise IngestError(f"{model} takes {PARAM_COUNT[model]} parameters, got {len(fields) - 4}", at)
        camera_id = _int(fields[0], at)
        cameras[camera_id] = _camera(model, _int(fields[2], at), _int(fields[3], at),
                                     _floats(fields[4:], at), at)
    return cameras


def read_images_txt(path: Path, where: str) -> list[ColmapImage]:
    lines = _lines(path, where)
    images = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        at = f"{where}: line {i}"
        fields = line.split(maxsplit=9)
        if len(fields) != 10:
            raise IngestError("expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME", at)
        q_t = _floats(fields[1:8], at)
        images.append(ColmapImage(fields[9].strip(), _int(fields[8], at), _c2w(q_t[:4], q_t[4:], at)))
        i += 1  # the POINTS2D line that follows every image line, possibly empty
    return images


def model_files(model_dir: Path) -> tuple[Path, Path] | None:
    """(cameras, images) files of a COLMAP model folder, binary preferred; None if it is not one."""
    for ext in (".bin", ".txt"):
        cameras, images = model_dir / f"cameras{ext}", model_dir / f"images{ext}"
        if cameras.is_file() and images.is_file():
            return cameras, images
    return None


def read_model(cameras_path: Path, images_path: Path) -> tuple[dict[int, ColmapCamera], list[ColmapImage]]:
    """Cameras by id and registered images of one model; errors name the file (and line)."""
    binary = cameras_path.suffix == ".bin"
    cameras = (read_cameras_bin if binary else read_cameras_txt)(cameras_path, str(cameras_path))
    images = (read_images_bin if binary else read_images_txt)(images_path, str(images_path))
    for im in images:
        if im.camera_id not in cameras:
            raise IngestError(f"image {im.name!r} names camera {im.camera_id}, which is not in "
                              f"{cameras_path.name}", images_path)
    return cameras, images
