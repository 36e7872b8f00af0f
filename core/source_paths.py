"""The trust boundary for what a capture's source names: files inside its own root, and nothing else.

Every reader that follows a path written in a file a user or a phone sent (a transforms.json, a
metadata file, an archive member) resolves it through ``inside_root``. The error names the path
as the source wrote it and the file that named it, never a resolved or staging path.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from core.errors import IngestError, UnsafeSourceError

COPY_CHUNK = 1 << 20


def inside_root(root: Path, name: str, where: str | Path) -> Path:
    """The regular file ``name`` (as written in the source) under ``root``.

    Refused with UnsafeSourceError (``where`` names the file that holds ``name``): absolute paths,
    drive letters, ``..`` parts, NUL bytes, symlinks that resolve outside ``root``, and anything
    that is not a regular file (devices, FIFOs, sockets). A missing file is the caller's business:
    the returned path may not exist.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise UnsafeSourceError("names an empty or invalid file path", where)
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith(("/", "\\")):
        raise UnsafeSourceError(f"names {name!r}, an absolute path; only files inside the source are read",
                                where)
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeSourceError(f"names {name!r}, which leaves the source's folder", where)
    root_resolved = Path(os.path.abspath(root)).resolve()
    candidate = root_resolved.joinpath(*parts) if parts else root_resolved
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name too long, a lone surrogate
        raise UnsafeSourceError(f"names {name!r}, which cannot be resolved", where) from None
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise UnsafeSourceError(f"names {name!r}, which links outside the source's folder", where)
    try:
        mode = os.stat(resolved).st_mode
    except FileNotFoundError:
        return resolved
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "invalid name"
        raise UnsafeSourceError(f"names {name!r}, which cannot be read ({reason})", where) from None
    if not stat.S_ISREG(mode):
        raise UnsafeSourceError(f"names {name!r}, which is not a regular file", where)
    return resolved


def _open_regular(src: Path, where: str | Path) -> int:
    """A read-only descriptor of ``src``, refused unless it is a regular file (a FIFO never blocks)."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise IngestError(f"cannot read ({exc.strerror})", where) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeSourceError("is not a regular file", where)
    os.set_blocking(fd, True)
    return fd


def copy_into(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` (a new name; never a hard link to the user's file); returns ``dst``.

    An existing ``dst`` is an error, not overwritten: names in a capture are unique by construction.
    ``src`` must be a regular file when it is opened (a FIFO or device swapped in is refused).
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_regular(src, src)
    with os.fdopen(fd, "rb") as fin, open(dst, "xb") as fout:
        try:  # in the kernel, sharing extents where the file system offers reflinks
            while os.copy_file_range(fin.fileno(), fout.fileno(), COPY_CHUNK * 64):
                pass
        except (AttributeError, OSError):
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
            shutil.copyfileobj(fin, fout, COPY_CHUNK)
    return dst


def open_regular(path: Path, where: str | Path) -> BinaryIO:
    """``path`` opened for reading, refused unless it is a regular file (a FIFO never blocks)."""
    return os.fdopen(_open_regular(path, where), "rb")


def read_regular(path: Path, max_bytes: int, where: str | Path) -> bytes:
    """The bytes of the regular file ``path``, refused when it holds more than ``max_bytes``."""
    with open_regular(path, where) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise IngestError(f"is larger than the {max_bytes} bytes such a file may hold", where)
    return data


def check_regular_or_dir(path: Path, where: str | Path) -> None:
    """Refuse a source that is neither a folder nor a regular file (a FIFO, a device, a socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise IngestError(f"cannot read ({exc.strerror})", where) from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UnsafeSourceError("is not a regular file or folder (a device, pipe or socket is never read)",
                                where)
