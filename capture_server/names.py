"""Checks on what clients name: file names inside a capture, tus metadata, upload kinds."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from capture_server.errors import RequestError

KINDS = ("image", "video", "archive", "depth", "confidence", "metadata", "other")
_EXT_KIND = {
    ".jpg": "image", ".jpeg": "image", ".png": "image", ".heic": "image", ".heif": "image",
    ".tif": "image", ".tiff": "image", ".webp": "image",
    ".mp4": "video", ".mov": "video", ".m4v": "video", ".avi": "video", ".mkv": "video",
    ".zip": "archive",
    ".csv": "metadata", ".json": "metadata", ".txt": "metadata", ".exr": "depth",
}
MAX_DEPTH = 4


def safe_relative_name(name: object, where: str = "filename") -> str:
    """A relative POSIX path with no way out of its folder: no ``..``, no absolute paths,
    no backslashes, no hidden or empty parts, no control characters."""
    if not isinstance(name, str) or not name:
        raise RequestError("expected a non-empty file name", where)
    if len(name.encode("utf-8")) > 1024:
        raise RequestError("file name is too long", where)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or "\\" in name:
        raise RequestError(f"file name has control characters or backslashes: {name!r}", where)
    if name.startswith("/"):
        raise RequestError(f"file name must be relative, got {name!r}", where)
    parts = name.split("/")
    if len(parts) > MAX_DEPTH:
        raise RequestError(f"file name nests more than {MAX_DEPTH} folders: {name!r}", where)
    for part in parts:
        if part in ("", ".", ".."):
            raise RequestError(f"file name may not contain empty, '.' or '..' parts: {name!r}", where)
        if part.startswith("."):
            raise RequestError(f"file name parts may not start with '.': {name!r}", where)
        if len(part.encode("utf-8")) > 255:
            raise RequestError("a part of the file name is longer than 255 bytes", where)
    return str(PurePosixPath(*parts))


def path_inside(folder: Path, rel: str, where: str = "filename") -> Path:
    """``folder / rel``, refusing anything that resolves outside ``folder`` (symlinks included)."""
    target = folder / rel
    base = folder.resolve()
    if not target.resolve().is_relative_to(base):
        raise RequestError(f"file name leads outside the capture: {rel!r}", where)
    return target


def name_clash(name: str, taken: Iterable[str]) -> str | None:
    """The taken name that ``name`` cannot live beside: the same name ignoring case (the same file
    on case-insensitive disks), or one of the two would be both a file and a folder
    (``clash`` and ``clash/inner.bin``)."""
    key = name.casefold()
    for other in taken:
        folded = other.casefold()
        if folded == key or folded.startswith(key + "/") or key.startswith(folded + "/"):
            return other
    return None


def files_below(folder: Path) -> list[str]:
    """Every file below ``folder`` (anything but a folder), relative to it."""
    if not folder.is_dir():
        return []
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()]


def kind_for(name: str, kind: str | None, where: str = "kind") -> str:
    if kind is None or kind == "":
        return _EXT_KIND.get(PurePosixPath(name).suffix.lower(), "other")
    if kind not in KINDS:
        raise RequestError(f"must be one of {', '.join(KINDS)}, got {kind!r}", where)
    return kind


def parse_tus_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64value,key2 base64value2`` into a dict of text values."""
    out: dict[str, str] = {}
    if not header:
        return out
    for item in header.split(","):
        pieces = item.strip().split(" ")
        key = pieces[0]
        if not key or len(pieces) > 2:
            raise RequestError(f"malformed pair {item.strip()!r}", "Upload-Metadata")
        if key in out:
            raise RequestError(f"duplicate key {key!r}", "Upload-Metadata")
        value = ""
        if len(pieces) == 2:
            try:
                value = base64.b64decode(pieces[1], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise RequestError(f"value of {key!r} is not base64 of UTF-8 text",
                                   "Upload-Metadata") from None
        out[key] = value
    return out


def encode_tus_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode('utf-8')).decode('ascii')}" for k, v in metadata.items())
