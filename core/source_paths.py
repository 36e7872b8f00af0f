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

from core.errors import UnsafeSourceError


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
    root_resolved = root.resolve()
    candidate = root_resolved.joinpath(*parts) if parts else root_resolved
    resolved = candidate.resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise UnsafeSourceError(f"names {name!r}, which links outside the source's folder", where)
    try:
        mode = os.stat(resolved).st_mode
    except FileNotFoundError:
        return resolved
    except OSError as exc:
        raise UnsafeSourceError(f"names {name!r}, which cannot be read ({exc.strerror})", where) from None
    if not stat.S_ISREG(mode):
        raise UnsafeSourceError(f"names {name!r}, which is not a regular file", where)
    return resolved


def copy_into(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` (a new name; never a hard link to the user's file); returns ``dst``.

    An existing ``dst`` is an error, not overwritten: names in a capture are unique by construction.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return dst
