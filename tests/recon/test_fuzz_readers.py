"""A seeded, bounded fuzz suite over every ingest reader (issue 8, reader side).

Each case builds one malformed source beside a "victim" folder and imports it. Whatever the case,
the import must end in a capture or in one ScanBridgeError (never another exception); an error
names a file of the source as the user knows it (``archive.zip: member`` inside a zip, never a
staging path), and for the hand-made cases exactly the file that is wrong; no byte of the source
or the victim changes; the workspace holds the finished capture or nothing (no staging folder);
and a capture holds copies only (no links) and none of the victim's bytes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import random
import stat
import tempfile
import traceback
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # before OpenCV's first EXR call

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_ingest_support import (  # noqa: E402
    Recorder,
    captures_listing,
    make_victim,
    pattern,
    tree_digest,
    write_depth16,
    write_jpeg,
    write_png,
)

from core.errors import ScanBridgeError  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from recon.ingest import ingest  # noqa: E402

SEED = 8
POSE = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]]
INTRINSICS = {"fl_x": 20.0, "fl_y": 20.0, "cx": 8.0, "cy": 6.0, "w": 16, "h": 12}
BIG_INT = "1" + "0" * 400
# Markers replaced in JSON text by numbers json.dumps cannot write.
RAW_NUMBERS = {
    "@NAN@": "NaN",
    "@INF@": "Infinity",
    "@NINF@": "-Infinity",
    "@E400@": "1e400",
    "@BIGINT@": BIG_INT,
    "@NEGBIG@": "-" + BIG_INT,
}


@dataclass(frozen=True)
class Case:
    name: str
    # (source folder to build in, victim folder, rng) -> (what to import, acceptable `where` prefixes)
    build: Callable[[Path, Path, random.Random], tuple[Path, tuple[str, ...]]]
    must_fail: bool = True


# --- assets, made once ---------------------------------------------------------------------------


@functools.cache
def jpeg_bytes(width: int = 16, height: int = 12, seed: int = 1) -> bytes:
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(pattern(width, height, seed)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@functools.cache
def png_bytes(width: int = 16, height: int = 12, seed: int = 2) -> bytes:
    ok, buf = cv2.imencode(".png", pattern(width, height, seed))
    assert ok
    return buf.tobytes()


@functools.cache
def mp4_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
        for i in range(6):
            writer.write(np.ascontiguousarray(pattern(64, 48, seed=i)))
        writer.release()
        return path.read_bytes()


def exr_bytes(value: float = 2.0) -> bytes:
    ok, buf = cv2.imencode(".exr", np.full((6, 8), value, np.float32))
    assert ok
    return buf.tobytes()


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header says it is ``width`` x ``height``."""
    data = bytearray(jpeg_bytes(16, 12))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    data[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(data)


def png_declaring(width: int, height: int, depth: int = 16) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([depth, 0, 0, 0, 0])
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def flipped(data: bytes, rng: random.Random, flips: int) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def truncated(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, max(2, len(data) - 1))]


def json_text(obj) -> str:
    text = json.dumps(obj)
    for marker, raw in RAW_NUMBERS.items():
        text = text.replace(f'"{marker}"', raw)
    return text


# --- nerfstudio ----------------------------------------------------------------------------------


def ns_dataset(
    root: Path,
    frame: dict | None = None,
    top: dict | None = None,
    text: str | None = None,
    intrinsics: dict | None = None,
) -> Path:
    write_png(root / "images" / "a.png", 16, 12, seed=2)
    write_depth16(root / "depth" / "a.png", 1500)
    mask = np.zeros((12, 16), np.uint8)
    mask[2:6, 3:9] = 1
    (root / "masks").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "masks" / "a.png"), mask)
    entry = {
        "file_path": "images/a.png",
        "transform_matrix": POSE,
        "depth_file_path": "depth/a.png",
        "mask_path": "masks/a.png",
        **(frame or {}),
    }
    tf = root / "transforms.json"
    intrinsics = INTRINSICS if intrinsics is None else intrinsics
    tf.write_text(text if text is not None else json_text({**intrinsics, **(top or {}), "frames": [entry]}))
    return tf


def _path_value(kind: str, root: Path, victim: Path):
    """A hostile path for a frame field; some kinds also plant a link or a special file in ``root``."""
    links = root / "links"
    links.mkdir(parents=True, exist_ok=True)
    if kind == "absolute":
        return str(victim / "depth16.png")
    if kind == "dotdot":
        return "../victim/depth16.png"
    if kind == "deep-dotdot":
        return "images/../../victim/secret.png"
    if kind == "backslash-dotdot":
        return "..\\victim\\depth16.png"
    if kind == "symlink-file":
        os.symlink(victim / "depth16.png", links / "l.png")
        return "links/l.png"
    if kind == "symlink-dir":
        os.symlink(victim, links / "vdir")
        return "links/vdir/depth16.png"
    if kind == "symlink-relative":
        os.symlink("../../victim/secret.png", links / "r.png")
        return "links/r.png"
    if kind == "fifo":
        os.mkfifo(links / "f.png")
        return "links/f.png"
    if kind == "dev-zero":
        os.symlink("/dev/zero", links / "z.png")
        return "links/z.png"
    if kind == "directory":
        return "images"
    if kind == "proc":
        return "/proc/self/environ"
    values = {
        "nul": "images/a.png\x00.jpg",
        "empty": "",
        "number": 5,
        "list": ["images/a.png"],
        "dict": {"a": 1},
        "bool": True,
        "tilde": "~/depth16.png",
        "drive": "C:\\victim\\depth16.png",
        "unc": "\\\\server\\share\\x.png",
        "url": "file:///etc/passwd",
        "long": "a" * 5000 + ".png",
        "format": "%s%n%x.png",
        "missing": "images/nope.png",
        "trailing-slash": "images/a.png/",
    }
    return values[kind]


PATH_KINDS = [
    "absolute",
    "dotdot",
    "deep-dotdot",
    "backslash-dotdot",
    "symlink-file",
    "symlink-dir",
    "symlink-relative",
    "fifo",
    "dev-zero",
    "directory",
    "proc",
    "nul",
    "empty",
    "number",
    "list",
    "dict",
    "bool",
    "tilde",
    "drive",
    "unc",
    "url",
    "long",
    "format",
    "missing",
    "trailing-slash",
]
# Kinds a reader may treat as "file not there" (a warning) rather than an error.
MAY_BE_MISSING = {"tilde", "url", "long", "format", "missing", "trailing-slash", "directory", "unc"}


def ns_path_case(field: str, kind: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        tf = ns_dataset(src, {field: _path_value(kind, src, victim)})
        # The error names transforms.json (the field), or the file the field names when it is inside.
        return tf, (str(tf), str(src / "images"), str(src / "depth"), str(src / "masks"))

    may_succeed = kind == "trailing-slash" or (field != "file_path" and kind in MAY_BE_MISSING)
    return Case(f"nerfstudio-{field}-{kind}", build, must_fail=not may_succeed)


MATRICES = {
    "strings": [["1", "0", "0", "0"], ["0", "1", "0", "0"], ["0", "0", "1", "0"], ["0", "0", "0", "1"]],
    "booleans": [
        [True, False, False, False],
        [False, True, False, False],
        [False, False, True, False],
        [False, False, False, True],
    ],
    "nan": [["@NAN@", 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    "infinity": [[1, 0, 0, "@INF@"], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    "e400": [[1, 0, 0, "@E400@"], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    "bigint": [[1, 0, 0, "@BIGINT@"], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    "negbig": [["@NEGBIG@", 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    "huge-translation": [[1, 0, 0, 1e300], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    "huge-rotation": [[1e300, 0, 0, 0], [0, 1e300, 0, 0], [0, 0, 1e300, 0], [0, 0, 0, 1]],
    "zeros": [[0] * 4] * 4,
    "empty": [],
    "empty-rows": [[]],
    "3x3": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    "5x5": np.eye(5).tolist(),
    "ragged": [[1, 0, 0, 0], [0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    "nested": [[[1, 0, 0, 0]] * 4] * 4,
    "null": None,
    "string": "eye",
    "object": {"m": 1},
    "shear": [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    "bottom-row": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 1, 1, 1]],
    "tiny-scale": (np.eye(4) * 1e-12 + np.diag([0, 0, 0, 1 - 1e-12])).tolist(),
    "mirror": np.diag([1.0, 1.0, -1.0, 1.0]).tolist(),
}


def ns_matrix_case(name: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        tf = ns_dataset(src, {"transform_matrix": MATRICES[name]})
        # Numbers no float holds (NaN, 1e400, 400 digits) are refused as the file is parsed.
        unparsable = name in ("nan", "infinity", "e400", "bigint", "negbig")
        return tf, (str(tf) if unparsable else f"{tf}: frames[0].transform_matrix",)

    return Case(f"nerfstudio-transform_matrix-{name}", build)


VALUES = {
    "zero": 0,
    "negative": -1,
    "nan": "@NAN@",
    "infinity": "@INF@",
    "-infinity": "@NINF@",
    "e400": "@E400@",
    "bigint": "@BIGINT@",
    "string": "10",
    "bool": True,
    "list": [1],
    "e308": 1e308,
    "tiny": 1e-300,
    "half": 0.5,
}
FIELDS = [
    "fl_x",
    "fl_y",
    "cx",
    "cy",
    "w",
    "h",
    "camera_angle_x",
    "k1",
    "k3",
    "camera_model",
    "depth_unit_scale_factor",
]


def ns_value_case(field: str, value_name: str, per_frame: bool) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        value = VALUES[value_name]
        top = {} if per_frame else {field: value}
        frame = {field: value} if per_frame else {}
        # camera_angle_x is used only without fl_x
        intrinsics = {k: v for k, v in INTRINSICS.items() if field != "camera_angle_x" or k != "fl_x"}
        tf = ns_dataset(src, frame, top, intrinsics=intrinsics)
        return tf, (str(tf), str(src / "images" / "a.png"), str(src / "depth" / "a.png"))

    # What is not a finite number never passes; a number may be in range for one field and not another.
    not_a_number = value_name in ("nan", "infinity", "-infinity", "e400", "bigint", "string", "bool", "list")
    where = "frame" if per_frame else "top"
    read = not (per_frame and field == "depth_unit_scale_factor")  # a top-level key only
    return Case(f"nerfstudio-{where}-{field}-{value_name}", build, must_fail=not_a_number and read)


STRUCTURES = {
    "empty": "",
    "list": "[]",
    "string": '"x"',
    "number": "5",
    "null": "null",
    "frames-object": '{"frames": {}}',
    "frames-empty": '{"frames": []}',
    "frame-number": '{"frames": [5]}',
    "frame-null": '{"frames": [null]}',
    "deep": "[" * 100_000 + "]" * 100_000,
    "deep-object": '{"frames": ' + '{"a":' * 50_000 + "1" + "}" * 50_001,
    "bad-utf8": b'{"frames": [\xff\xfe]}'.decode("latin-1"),
    "bom": "\ufeff{}",
    "nan-top": "NaN",
    "bigint-top": BIG_INT,
    "unterminated": '{"frames": [',
    "comments": '{"frames": [] // no\n}',
}


def ns_structure_case(name: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        tf = ns_dataset(src)
        text = STRUCTURES[name]
        if name == "bad-utf8":
            tf.write_bytes(text.encode("latin-1"))
        else:
            tf.write_text(text, encoding="utf-8")
        return tf, (str(tf),)

    return Case(f"nerfstudio-structure-{name}", build)


def ns_file_case(which: str, content: str) -> Case:
    """The image, depth or mask file a valid transforms.json names is broken."""

    def build(src: Path, victim: Path, rng: random.Random):
        tf = ns_dataset(src)
        target = src / {"image": "images", "depth": "depth", "mask": "masks"}[which] / "a.png"
        data = target.read_bytes()
        payload = {
            "text": b"not a picture\n",
            "empty": b"",
            "truncated": data[: len(data) // 2],
            "bomb": png_declaring(60000, 60000),
            "wide": png_declaring(70000, 1, 8),
            "jpeg-small": jpeg_bytes(8, 6),
            "jpeg-bomb": jpeg_declaring(20000, 20000),
            "flipped": flipped(data, rng, 8),
        }[content]
        target.write_bytes(payload)
        return tf, (str(target), str(tf))

    return Case(f"nerfstudio-{which}-file-{content}", build, must_fail=content != "flipped")


def ns_duplicate_case(layout: str) -> Case:
    """Frames that share names must not write into one another (or into the user's files)."""

    def build(src: Path, victim: Path, rng: random.Random):
        write_png(src / "train" / "r_0.png", 16, 12, seed=3)
        write_png(src / "test" / "r_0.png", 16, 12, seed=4)
        write_jpeg(src / "a.jpg", 16, 12, seed=5)
        write_png(src / "a.png", 16, 12, seed=6)
        write_depth16(src / "d1.png", 1000)
        write_depth16(src / "d2.png", 2000)
        frames = {
            "train-test": [{"file_path": "./train/r_0"}, {"file_path": "./test/r_0"}],
            "jpg-png-depth": [
                {"file_path": "a.jpg", "depth_file_path": "d1.png"},
                {"file_path": "a.png", "depth_file_path": "d2.png"},
            ],
            "same-file-twice": [
                {"file_path": "a.png", "depth_file_path": "d1.png"},
                {"file_path": "a.png", "depth_file_path": "d1.png"},
            ],
        }[layout]
        tf = src / "transforms.json"
        tf.write_text(json.dumps({**INTRINSICS, "frames": [{"transform_matrix": POSE, **f} for f in frames]}))
        return tf, (str(tf),)

    return Case(f"nerfstudio-duplicates-{layout}", build, must_fail=False)


# --- zips ----------------------------------------------------------------------------------------


def _zip(
    path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]], compression=zipfile.ZIP_DEFLATED
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression) as zf:
        warnings.simplefilter("ignore", UserWarning)  # a duplicate name is what some cases want
        for name, data in entries:
            zf.writestr(name, data)
    return path


def _dataset_entries(frame: dict) -> list:
    tf = {**INTRINSICS, "frames": [{"file_path": "images/a.png", "transform_matrix": POSE, **frame}]}
    return [("scan/transforms.json", json.dumps(tf).encode()), ("scan/images/a.png", png_bytes())]


def _special_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def zip_case(kind: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        archive = src / "cap.zip"
        good = [("a.png", png_bytes()), ("b.jpg", jpeg_bytes())]
        if kind.startswith("points-"):
            value = {
                "points-absolute": str(victim / "secret.png"),
                "points-dotdot": "../../victim/secret.png",
                "points-far": "../" * 12 + str(victim / "secret.png")[1:],
                "points-proc": "/proc/self/environ",
            }[kind]
            _zip(archive, _dataset_entries({"file_path": value}))
        elif kind.startswith("depth-points-"):
            value = (
                str(victim / "depth16.png") if kind.endswith("absolute") else "../../../victim/depth16.png"
            )
            _zip(archive, _dataset_entries({"depth_file_path": value}))
        elif kind == "entry-dotdot":
            _zip(archive, [*good, ("../evil.png", png_bytes())])
        elif kind == "entry-absolute":
            _zip(archive, [*good, (str(victim / "evil.png"), png_bytes())])
        elif kind == "entry-backslash":
            _zip(archive, [*good, ("..\\..\\evil.png", png_bytes())])
        elif kind == "entry-drive":
            _zip(archive, [*good, ("C:/evil.png", png_bytes())])
        elif kind == "entry-symlink":
            _zip(
                archive,
                [*good, (_special_entry("c.png", stat.S_IFLNK | 0o777), str(victim / "secret.png").encode())],
            )
        elif kind == "entry-fifo":
            _zip(archive, [*good, (_special_entry("c.png", stat.S_IFIFO | 0o644), b"")])
        elif kind == "entry-device":
            _zip(archive, [*good, (_special_entry("c.png", stat.S_IFCHR | 0o644), b"")])
        elif kind == "entry-duplicate":
            _zip(archive, [*good, ("a.png", png_bytes(seed=9))])
        elif kind == "entry-file-dir-clash":
            _zip(archive, [("x", b"file"), ("x/a.png", png_bytes())])
        elif kind == "entry-case-clash":
            _zip(archive, [*good, ("A.PNG", png_bytes(seed=9))])
        elif kind == "bomb":
            _zip(archive, [*good, ("zeros.png", b"\0" * (8 << 20))])
        elif kind == "empty-archive":
            _zip(archive, [])
        elif kind == "only-junk":
            _zip(archive, [("__MACOSX/._a.png", b"junk"), (".hidden.png", png_bytes())])
        elif kind == "zip-in-zip":
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w") as zf:
                zf.writestr("a.png", png_bytes())
            _zip(archive, [("inner.zip", inner.getvalue())])
        elif kind == "corrupt-image-entry":
            _zip(archive, [*good, ("c.jpg", jpeg_bytes()[:100])])
        elif kind == "bad-transforms-entry":
            _zip(
                archive, [("scan/transforms.json", b'{"frames": [NaN]}'), ("scan/images/a.png", png_bytes())]
            )
        elif kind in ("encrypted", "corrupt-deflate"):
            _zip(archive, [*good, ("c.png", b"\0" * 4000)])
            data = bytearray(archive.read_bytes())
            info = zipfile.ZipFile(archive).getinfo("c.png")
            if kind == "encrypted":
                data[info.header_offset + 6] |= 1
                at = data.find(b"PK\x01\x02")
                while at >= 0:
                    n = int.from_bytes(data[at + 28 : at + 30], "little")
                    if data[at + 46 : at + 46 + n] == b"c.png":
                        data[at + 8] |= 1
                    at = data.find(b"PK\x01\x02", at + 4)
            else:
                n = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
                e = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
                start = info.header_offset + 30 + n + e
                data[start : start + 4] = b"\xff\xff\xff\xff"
            archive.write_bytes(bytes(data))
        elif kind == "not-a-zip":
            archive.write_bytes(b"PK\x03\x04 not really")
        elif kind == "empty-file":
            archive.write_bytes(b"")
        elif kind == "jpeg-named-zip":
            archive.write_bytes(jpeg_bytes())
        else:
            raise AssertionError(kind)
        return archive, (str(archive),)

    return Case(f"zip-{kind}", build, must_fail=kind not in ("entry-case-clash",))


ZIP_KINDS = [
    "points-absolute",
    "points-dotdot",
    "points-far",
    "points-proc",
    "depth-points-absolute",
    "depth-points-dotdot",
    "entry-dotdot",
    "entry-absolute",
    "entry-backslash",
    "entry-drive",
    "entry-symlink",
    "entry-fifo",
    "entry-device",
    "entry-duplicate",
    "entry-file-dir-clash",
    "entry-case-clash",
    "bomb",
    "empty-archive",
    "only-junk",
    "zip-in-zip",
    "corrupt-image-entry",
    "bad-transforms-entry",
    "encrypted",
    "corrupt-deflate",
    "not-a-zip",
    "empty-file",
    "jpeg-named-zip",
]


def zip_random_case(i: int, how: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        archive = src / "cap.zip"
        _zip(
            archive,
            [
                (
                    "scan/transforms.json",
                    json.dumps(
                        {**INTRINSICS, "frames": [{"file_path": "images/a.png", "transform_matrix": POSE}]}
                    ).encode(),
                ),
                ("scan/images/a.png", png_bytes()),
                ("scan/images/b.jpg", jpeg_bytes()),
            ],
        )
        data = archive.read_bytes()
        archive.write_bytes(flipped(data, rng, rng.randint(1, 12)) if how == "flip" else truncated(data, rng))
        return archive, (str(archive),)

    return Case(f"zip-random-{how}-{i}", build, must_fail=False)


# --- image folders and single files --------------------------------------------------------------

BAD_IMAGES = {
    "empty.jpg": lambda rng: b"",
    "text.jpg": lambda rng: b"hello, not a photo\n",
    "truncated.jpg": lambda rng: jpeg_bytes()[:120],
    "truncated.png": lambda rng: png_bytes()[:60],
    "bomb.png": lambda rng: png_declaring(60000, 60000, 8),
    "wide.png": lambda rng: png_declaring(1 << 30, 1, 8),
    "zero-size.png": lambda rng: png_declaring(0, 0, 8),
    "random.png": lambda rng: rng.randbytes(300),
    "png-magic-only.png": lambda rng: b"\x89PNG\r\n\x1a\n",
    "jpeg-magic-only.jpg": lambda rng: b"\xff\xd8\xff",
    "tiff-garbage.tif": lambda rng: b"II*\x00" + rng.randbytes(64),
    "heic-fake.heic": lambda rng: b"\0" * 32,
    "webp-truncated.webp": lambda rng: b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    "gif-named.jpg": lambda rng: b"GIF89a",
}


def images_case(bad: str, single: bool) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        write_jpeg(src / "good.jpg", 16, 12, seed=3)
        target = src / "sub" / bad
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(BAD_IMAGES[bad](rng))
        return (target if single else src), (str(target),)

    return Case(f"{'image' if single else 'images'}-{bad}", build)


def images_special_case(kind: str, single: bool) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        write_jpeg(src / "good.jpg", 16, 12, seed=3)
        target = src / "x.jpg"
        if kind == "symlink-out":
            os.symlink(victim / "secret.jpg", target)
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "dev-null":
            os.symlink("/dev/null", target)
        elif kind == "symlink-dir-out":
            os.symlink(victim, src / "vdir.jpg")
            target = src / "vdir.jpg"
        elif kind == "dangling":
            os.symlink(src / "nowhere.jpg", target)
        return (target if single else src), (str(target),)

    # A symlinked folder is not descended into; the folder import may then succeed without it.
    return Case(
        f"{'image' if single else 'images'}-special-{kind}",
        build,
        must_fail=single or kind not in ("symlink-dir-out", "dangling"),
    )


def images_random_case(i: int, fmt: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        data = jpeg_bytes(32, 24, seed=i) if fmt == "jpg" else png_bytes(32, 24, seed=i)
        target = src / f"r{i}.{fmt}"
        src.mkdir(parents=True, exist_ok=True)
        target.write_bytes(flipped(data, rng, rng.randint(1, 10)) if i % 3 else truncated(data, rng))
        return src, (str(target),)

    return Case(f"images-random-{fmt}-{i}", build, must_fail=False)


def exif_case(orientation) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        from PIL import Image

        exif = Image.Exif()
        exif[0x0112] = orientation
        exif.get_ifd(0x8769)[0xA405] = orientation if isinstance(orientation, int) else 0
        write_jpeg(src / "p.jpg", 16, 12, exif=exif)
        return src, (str(src / "p.jpg"),)

    return Case(f"images-exif-orientation-{orientation!r}", build, must_fail=False)


# --- video ---------------------------------------------------------------------------------------


def video_case(kind: str, in_folder: bool = False) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        src.mkdir(parents=True, exist_ok=True)
        target = src / "clip.mp4"
        good = mp4_bytes()
        payload = {
            "jpeg": jpeg_bytes(64, 48),
            "png-as-mov": png_bytes(),
            "text": b"just text\n",
            "empty": b"",
            "playlist": f"#EXTM3U\n#EXTINF:1,\nfile://{victim / 'secret.jpg'}\n#EXT-X-ENDLIST\n".encode(),
            "ffconcat": f"ffconcat version 1.0\nfile '{victim / 'secret.jpg'}'\n".encode(),
            "avi-garbage": b"RIFF\x00\x00\x00\x00AVI " + rng.randbytes(100),
            "mkv-garbage": b"\x1a\x45\xdf\xa3" + rng.randbytes(100),
            "ftyp-only": good[:32],
            "truncated": truncated(good, rng),
            "flipped": flipped(good, rng, rng.randint(1, 20)),
        }[kind.split("-")[0] if kind.startswith(("truncated", "flipped")) else kind]
        if kind == "png-as-mov":
            target = src / "clip.mov"
        target.write_bytes(payload)
        return (src if in_folder else target), (str(target),)

    random_kind = kind.startswith(("truncated", "flipped"))
    return Case(f"video-{'folder-' if in_folder else ''}{kind}", build, must_fail=not random_kind)


# --- Stray Scanner -------------------------------------------------------------------------------


def stray_export(root: Path, n: int = 3) -> Path:
    (root / "depth").mkdir(parents=True, exist_ok=True)
    (root / "confidence").mkdir(exist_ok=True)
    (root / "camera_matrix.csv").write_text("500.0, 0.0, 320.0\n0.0, 500.0, 240.0\n0.0, 0.0, 1.0\n")
    lines = ["timestamp, frame, x, y, z, qx, qy, qz, qw"]
    for i in range(n):
        lines.append(f"{100 + i / 60:.6f}, {i:06d}, {0.1 * i}, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0")
        write_depth16(root / "depth" / f"{i:06d}.png", 1000 + i, 8, 6)
        cv2.imwrite(str(root / "confidence" / f"{i:06d}.png"), np.full((6, 8), 2, np.uint8))
    (root / "odometry.csv").write_text("\n".join(lines) + "\n")
    return root


ODOMETRY_ROWS = {
    "nan": "100.0, 0, NaN, 0, 0, 0, 0, 0, 1",
    "inf": "100.0, 0, 0, inf, 0, 0, 0, 0, 1",
    "e400": "100.0, 0, 0, 0, 1e400, 0, 0, 0, 1",
    "text": "100.0, 0, zero, 0, 0, 0, 0, 0, 1",
    "short": "100.0, 0, 0",
    "zero-quaternion": "100.0, 0, 0, 0, 0, 0, 0, 0, 0",
    "huge-translation": "100.0, 0, 1e300, 0, 0, 0, 0, 0, 1",
    "negative-frame": "100.0, -1, 0, 0, 0, 0, 0, 0, 1",
    "fraction-frame": "100.0, 0.5, 0, 0, 0, 0, 0, 0, 1",
    "huge-frame": "100.0, 1e300, 0, 0, 0, 0, 0, 0, 1",
    "bigint-frame": f"100.0, {BIG_INT}, 0, 0, 0, 0, 0, 0, 1",
    "nan-timestamp": "nan, 0, 0, 0, 0, 0, 0, 0, 1",
}


def stray_case(kind: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        root = stray_export(src)
        odo, k = root / "odometry.csv", root / "camera_matrix.csv"
        expected = (str(root),)
        if kind in ODOMETRY_ROWS:
            odo.write_text("timestamp, frame, x, y, z, qx, qy, qz, qw\n" + ODOMETRY_ROWS[kind] + "\n")
            expected = (str(odo),)
        elif kind.startswith("odometry-"):
            odo.write_bytes(
                {
                    "odometry-empty": b"",
                    "odometry-header-only": b"timestamp, frame\n",
                    "odometry-binary": rng.randbytes(200),
                    "odometry-bad-utf8": b"\xff\xfe\x00t\n",
                    "odometry-missing-qw": b"timestamp, frame, x, y, z, qx, qy, qz\n0,0,0,0,0,0,0,0\n",
                }[kind]
            )
            expected = (str(odo),)
        elif kind.startswith("K-"):
            k.write_text(
                {
                    "K-2x2": "1, 0\n0, 1\n",
                    "K-nan": "nan, 0, 1\n0, 1, 1\n0, 0, 1\n",
                    "K-zero": "0, 0, 320\n0, 0, 240\n0, 0, 1\n",
                    "K-negative": "-5, 0, 1\n0, -5, 1\n0, 0, 1\n",
                    "K-text": "focal lengths\n",
                    "K-empty": "",
                    "K-huge": "1e300, 0, 1e300\n0, 1e300, 1e300\n0,0,1\n",
                }[kind]
            )
            expected = (str(k),)
        elif kind.startswith("depth-") or kind.startswith("confidence-"):
            folder, what = kind.split("-", 1)
            target = root / folder / "000001.png"
            target.unlink()
            if what == "text":
                target.write_text("not a map\n")
            elif what == "8bit":
                cv2.imwrite(str(target), np.full((6, 8), 2, np.uint8))
            elif what == "16bit":
                write_depth16(target, 2, 8, 6)
            elif what == "other-size":
                (write_depth16 if folder == "depth" else _u8)(target, 2, 4, 3)
            elif what == "values":
                cv2.imwrite(str(target), np.full((6, 8), 200, np.uint8))
            elif what == "bomb":
                target.write_bytes(png_declaring(60000, 60000))
            elif what == "truncated":
                target.write_bytes(png_declaring(8, 6)[:40])
            elif what == "symlink-out":
                os.symlink(victim / "depth16.png", target)
            elif what == "fifo":
                os.mkfifo(target)
            expected = (str(target),)
        elif kind.startswith("rgb-"):
            video = root / "rgb.mp4"
            what = kind[4:]
            if what == "symlink-out":
                os.symlink(victim / "secret.jpg", video)
            else:
                video.write_bytes({"jpeg": jpeg_bytes(64, 48), "text": b"hello\n", "empty": b""}[what])
            expected = (str(video),)
        elif kind == "files-symlink-out":
            odo.unlink()
            os.symlink(victim / "notes.txt", odo)
            expected = (str(odo),)
        else:
            raise AssertionError(kind)
        return root, expected

    return Case(f"stray-{kind}", build)


def _u8(path: Path, value: int, width: int, height: int) -> None:
    cv2.imwrite(str(path), np.full((height, width), value, np.uint8))


STRAY_KINDS = [
    *ODOMETRY_ROWS,
    "odometry-empty",
    "odometry-header-only",
    "odometry-binary",
    "odometry-bad-utf8",
    "odometry-missing-qw",
    "K-2x2",
    "K-nan",
    "K-zero",
    "K-negative",
    "K-text",
    "K-empty",
    "K-huge",
    "depth-text",
    "depth-8bit",
    "depth-other-size",
    "depth-bomb",
    "depth-truncated",
    "depth-symlink-out",
    "depth-fifo",
    "confidence-text",
    "confidence-16bit",
    "confidence-other-size",
    "confidence-values",
    "confidence-bomb",
    "confidence-truncated",
    "confidence-symlink-out",
    "confidence-fifo",
    "rgb-symlink-out",
    "rgb-jpeg",
    "rgb-text",
    "rgb-empty",
    "files-symlink-out",
]


# --- Record3D ------------------------------------------------------------------------------------


def r3d_export(root: Path, meta: dict | None = None, text: str | None = None) -> Path:
    (root / "rgbd").mkdir(parents=True, exist_ok=True)
    base = {
        "w": 16,
        "h": 12,
        "fps": 30,
        "K": [20.0, 0, 0, 0, 20.0, 0, 8.0, 6.0, 1],
        "poses": [[0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0.1, 0, 0]],
    }
    for i in range(2):
        (root / "rgbd" / f"{i}.jpg").write_bytes(jpeg_bytes(16, 12, seed=i))
        (root / "rgbd" / f"{i}.exr").write_bytes(exr_bytes(2.0 + i))
    meta_path = root / "metadata.json"
    meta_path.write_text(text if text is not None else json_text({**base, **(meta or {})}))
    return meta_path


R3D_META = {
    "w-nan": {"w": "@NAN@"},
    "w-inf": {"w": "@INF@"},
    "w-bigint": {"w": "@BIGINT@"},
    "w-string": {"w": "16"},
    "w-zero": {"w": 0},
    "w-huge": {"w": 10**9},
    "h-e400": {"h": "@E400@"},
    "K-nan": {"K": [20, 0, 0, 0, "@NAN@", 0, 8, 6, 1]},
    "K-short": {"K": [20, 0, 0]},
    "K-zero": {"K": [0] * 9},
    "K-negative": {"K": [-20, 0, 0, 0, -20, 0, 8, 6, 1]},
    "K-strings": {"K": ["20"] * 9},
    "poses-nan": {"poses": [["@NAN@", 0, 0, 1, 0, 0, 0]]},
    "poses-short": {"poses": [[0, 0, 1]]},
    "poses-zero-q": {"poses": [[0, 0, 0, 0, 0, 0, 0]]},
    "poses-huge-t": {"poses": [[0, 0, 0, 1, 1e300, 0, 0]]},
    "poses-bool": {"poses": [[False, 0, 0, True, 0, 0, 0]]},
    "poses-empty": {"poses": []},
    "poses-object": {"poses": {"0": 1}},
    "fps-inf": {"fps": "@INF@"},
    "fps-bool": {"fps": True},
    "timestamps-nan": {"frameTimestamps": ["@NAN@", 0]},
    "timestamps-bigint": {"frameTimestamps": ["@BIGINT@", 0]},
    "perframe-bad": {"perFrameIntrinsicCoeffs": [[20, 20, 8]] * 2},
    "perframe-count": {"perFrameIntrinsicCoeffs": [[20, 20, 8, 6]]},
    "perframe-zero": {"perFrameIntrinsicCoeffs": [[0, 0, 8, 6]] * 2},
}
R3D_TEXT = {
    "deep": '{"w": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "list": "[]",
    "invalid": "{w: 16}",
    "empty": "",
    "nan-literal": "NaN",
}


def r3d_case(kind: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        if kind in R3D_META:
            meta_path = r3d_export(src, R3D_META[kind])
            return src, (str(meta_path),)
        if kind in R3D_TEXT:
            meta_path = r3d_export(src, text=R3D_TEXT[kind])
            return src, (str(meta_path),)
        meta_path = r3d_export(src)
        target = src / "rgbd" / ("1.jpg" if kind.startswith("jpg") else "1.exr")
        target.unlink()
        what = kind.split("-", 1)[1]
        if what == "text":
            target.write_text("not a picture")
        elif what == "png16":
            write_depth16(target, 1000, 8, 6)
        elif what == "symlink-out":
            os.symlink(victim / ("secret.jpg" if kind.startswith("jpg") else "depth16.png"), target)
        elif what == "fifo":
            os.mkfifo(target)
        elif what == "flipped":
            data = jpeg_bytes(16, 12, seed=1) if kind.startswith("jpg") else exr_bytes(3.0)
            target.write_bytes(flipped(data, rng, 6))
        return src, (str(target),)

    return Case(f"record3d-{kind}", build, must_fail=not (kind.endswith("flipped") or kind == "fps-bool"))


R3D_FILE_KINDS = [
    "jpg-text",
    "jpg-symlink-out",
    "jpg-fifo",
    "jpg-flipped",
    "exr-text",
    "exr-png16",
    "exr-symlink-out",
    "exr-fifo",
    "exr-flipped",
]


# --- IDR / cameras.npz ---------------------------------------------------------------------------


def _npy_declaring(shape: tuple[int, ...]) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 128


def _npz_with_member(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


GOOD_P = np.array([[20.0, 0, 8, 0], [0, 20.0, 6, 0], [0, 0, 1, 2], [0, 0, 0, 1]])
IDR_CAMERAS = {
    "empty": lambda rng: b"",
    "random": lambda rng: rng.randbytes(400),
    "truncated": lambda rng: truncated(npz_bytes(world_mat_0=GOOD_P), rng),
    "flipped": lambda rng: flipped(npz_bytes(world_mat_0=GOOD_P), rng, 6),
    "object": lambda rng: npz_bytes(world_mat_0=np.array([{"a": 1}, None], dtype=object)),
    "strings": lambda rng: npz_bytes(world_mat_0=np.array([["1"] * 4] * 4)),
    "bools": lambda rng: npz_bytes(world_mat_0=np.eye(4, dtype=bool)),
    "complex": lambda rng: npz_bytes(world_mat_0=np.eye(4, dtype=complex)),
    "1d": lambda rng: npz_bytes(world_mat_0=np.arange(16.0)),
    "3x3": lambda rng: npz_bytes(world_mat_0=np.eye(3)),
    "nan": lambda rng: npz_bytes(world_mat_0=np.full((4, 4), np.nan)),
    "inf": lambda rng: npz_bytes(world_mat_0=np.where(GOOD_P != 0, np.inf, 0.0)),
    "zeros": lambda rng: npz_bytes(world_mat_0=np.zeros((4, 4))),
    "rank-deficient": lambda rng: npz_bytes(
        world_mat_0=np.array([[1.0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1]])
    ),
    "huge": lambda rng: npz_bytes(world_mat_0=GOOD_P * 1e300),
    "missing-key": lambda rng: npz_bytes(world_mat_7=GOOD_P),
    "declares-huge-shape": lambda rng: _npz_with_member("world_mat_0.npy", _npy_declaring((100000, 100000))),
    "declares-wrong-shape": lambda rng: _npz_with_member("world_mat_0.npy", _npy_declaring((4, 4000))),
    "pickle": lambda rng: _npz_with_member("world_mat_0.npy", b"\x80\x04K\x01."),
    "npy-not-npz": lambda rng: (lambda b: (np.save(b, GOOD_P), b.getvalue())[1])(io.BytesIO()),
    "negative-focal": lambda rng: npz_bytes(world_mat_0=GOOD_P @ np.diag([-1.0, 1, 1, 1])),
}


def idr_case(kind: str) -> Case:
    def build(src: Path, victim: Path, rng: random.Random):
        write_png(src / "image" / "000000.png", 16, 12, seed=1)
        cams = src / "cameras.npz"
        if kind == "image-text":
            cams.write_bytes(npz_bytes(world_mat_0=GOOD_P))
            (src / "image" / "000000.png").write_text("not an image")
            return src, (str(src / "image" / "000000.png"),)
        if kind == "image-symlink-out":
            cams.write_bytes(npz_bytes(world_mat_0=GOOD_P))
            (src / "image" / "000000.png").unlink()
            os.symlink(victim / "secret.png", src / "image" / "000000.png")
            return src, (str(src / "image" / "000000.png"),)
        if kind == "cameras-symlink-out":
            os.symlink(victim / "notes.txt", cams)
            return src, (str(cams),)
        cams.write_bytes(IDR_CAMERAS[kind](rng))
        return src, (str(cams),)

    # The random mutations may keep the matrix intact; "negative-focal" is a valid mirror-free camera.
    return Case(f"idr-{kind}", build, must_fail=kind not in ("flipped", "negative-focal"))


# --- the suite -----------------------------------------------------------------------------------


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for field in ("file_path", "depth_file_path", "mask_path"):
        cases += [ns_path_case(field, kind) for kind in PATH_KINDS]
    cases += [ns_matrix_case(name) for name in MATRICES]
    for per_frame in (False, True):
        cases += [
            ns_value_case(f, v, per_frame)
            for f in FIELDS
            for v in VALUES
            if per_frame or f not in ("w", "h") or v in ("zero", "nan", "bigint", "string")
        ]
    cases += [ns_structure_case(name) for name in STRUCTURES]
    cases += [
        ns_file_case(which, content)
        for which in ("image", "depth", "mask")
        for content in ("text", "empty", "truncated", "bomb", "wide", "jpeg-small", "jpeg-bomb", "flipped")
    ]
    cases += [ns_duplicate_case(layout) for layout in ("train-test", "jpg-png-depth", "same-file-twice")]
    cases += [zip_case(kind) for kind in ZIP_KINDS]
    cases += [zip_random_case(i, how) for how in ("flip", "truncate") for i in range(10)]
    for single in (False, True):
        cases += [images_case(bad, single) for bad in BAD_IMAGES]
        # A symlink the user hands over as the source itself is the user's choice; inside a folder it is not.
        specials = (
            ("fifo", "dev-null", "dangling")
            if single
            else ("symlink-out", "fifo", "dev-null", "symlink-dir-out", "dangling")
        )
        cases += [images_special_case(kind, single) for kind in specials]
    cases += [images_random_case(i, fmt) for fmt in ("jpg", "png") for i in range(12)]
    cases += [exif_case(o) for o in (0, 9, 65535)]
    for in_folder in (False, True):
        cases += [
            video_case(kind, in_folder)
            for kind in (
                "jpeg",
                "text",
                "empty",
                "playlist",
                "ffconcat",
                "avi-garbage",
                "mkv-garbage",
                "ftyp-only",
            )
        ]
    cases += [video_case("png-as-mov")]
    cases += [video_case(f"{how}-{i}") for how in ("truncated", "flipped") for i in range(6)]
    cases += [stray_case(kind) for kind in STRAY_KINDS]
    cases += [r3d_case(kind) for kind in [*R3D_META, *R3D_TEXT, *R3D_FILE_KINDS]]
    cases += [
        idr_case(kind) for kind in [*IDR_CAMERAS, "image-text", "image-symlink-out", "cameras-symlink-out"]
    ]
    return cases


CASES = all_cases()


def test_the_suite_is_big_enough_and_covers_every_reader():
    assert len(CASES) >= 300
    prefixes = {c.name.split("-")[0] for c in CASES}
    assert {"nerfstudio", "zip", "images", "image", "video", "stray", "record3d", "idr"} <= prefixes
    assert len({c.name for c in CASES}) == len(CASES)


def _digest_files(folder: Path) -> set[str]:
    return {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_source(tmp_path, case):
    victim = make_victim(tmp_path / "victim")
    src = tmp_path / "src"
    src.mkdir()
    source, expected = case.build(src, victim, random.Random(f"{SEED}:{case.name}"))
    ws = Workspace(tmp_path / "ws")
    before = {"victim": tree_digest(victim), "src": tree_digest(src)}
    victim_bytes = _digest_files(victim)
    try:
        capture = ingest(source, ws, target_frames=8, progress=Recorder().progress())
    except ScanBridgeError as e:
        text = str(e)
        assert ".staging-" not in text and ".unpacked" not in text, text
        assert e.where is not None and e.where.startswith(expected), (e.where, expected)
        assert captures_listing(ws) == []
    except Exception:  # noqa: BLE001 - the point of the suite: nothing else may escape
        pytest.fail(f"{case.name}: a traceback instead of a ScanBridgeError:\n{traceback.format_exc()}")
    else:
        assert not case.must_fail, f"{case.name}: imported, but it must be refused"
        assert captures_listing(ws) == [capture.id]
        manifest = capture.load()
        assert manifest.frames
        for p in capture.root.rglob("*"):
            assert not p.is_symlink(), p
            if p.is_file():
                assert p.stat().st_nlink == 1, p  # a copy, never a link to the user's file
        assert not victim_bytes & _digest_files(capture.root), (
            "the capture holds a file from outside its source"
        )
    assert {"victim": tree_digest(victim), "src": tree_digest(src)} == before
