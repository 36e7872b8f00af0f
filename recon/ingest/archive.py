"""Safe unpacking of .zip sources: every entry is checked before a single byte is extracted.

Refused with UnsafeArchiveError naming the archive and the entry: absolute paths, ``..``,
symbolic links, device files, and anything that expands beyond ``ArchiveLimits`` (a zip bomb).
Encrypted, corrupt or truncated entries are one IngestError naming ``archive.zip: entry``.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import IngestError, UnsafeArchiveError
from core.progress import Progress

GIB = 1 << 30


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 8 * GIB  # sum of the declared uncompressed sizes
    max_entries: int = 200_000
    max_ratio: float = 200.0  # uncompressed / compressed, per entry and overall
    ratio_floor_bytes: int = 1 << 20  # entries smaller than this are never called bombs


def _entry_path(archive: Path, info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename
    where = f"{archive}: {name}"
    if "\x00" in name:
        raise UnsafeArchiveError("entry name contains a NUL byte", where)
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError("entry has an absolute path", where)
    parts = PurePosixPath(posix).parts
    if ".." in parts:
        raise UnsafeArchiveError("entry path leaves the archive folder ('..')", where)
    mode = info.external_attr >> 16
    file_type = stat.S_IFMT(mode) if info.create_system == 3 else 0  # made on Unix: st_mode bits
    if file_type == stat.S_IFLNK:
        raise UnsafeArchiveError("entry is a symbolic link", where)
    if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchiveError("entry is not a regular file or folder", where)
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def check_archive(archive: Path, limits: ArchiveLimits) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Every file entry with its safe relative path; raises before anything is extracted."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError) as e:
        raise IngestError(f"not a readable zip archive ({e})", archive) from None
    if len(infos) > limits.max_entries:
        raise UnsafeArchiveError(
            f"has {len(infos)} entries, more than the limit {limits.max_entries}", archive
        )
    total = compressed = 0
    entries = []
    seen: set[str] = set()
    for info in infos:
        rel = _entry_path(archive, info)
        where = f"{archive}: {info.filename}"
        if info.is_dir() or not rel.parts:
            continue
        if info.flag_bits & 0x1:
            raise IngestError("entry is encrypted; only unencrypted archives can be read", where)
        if rel.as_posix().lower() in seen:
            raise UnsafeArchiveError("entry appears twice in the archive", where)
        seen.add(rel.as_posix().lower())
        total += info.file_size
        compressed += info.compress_size
        if total > limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"expands to more than {limits.max_total_bytes} bytes (limit reached at this entry)", where
            )
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise UnsafeArchiveError(
                f"compression ratio {info.file_size / max(info.compress_size, 1):.0f}:1 "
                f"exceeds {limits.max_ratio:.0f}:1 (zip bomb?)",
                where,
            )
        entries.append((info, rel))
    if total > limits.ratio_floor_bytes and total > limits.max_ratio * max(compressed, 1):
        raise UnsafeArchiveError(
            f"overall compression ratio {total / max(compressed, 1):.0f}:1 exceeds {limits.max_ratio:.0f}:1",
            archive,
        )
    if not entries:
        raise IngestError("the archive is empty", archive)
    return entries


def extract_archive(archive: Path, dest: Path, limits: ArchiveLimits, progress: Progress) -> Path:
    """Check, then unpack ``archive`` into the empty folder ``dest``; returns ``dest``."""
    entries = check_archive(archive, limits)
    dest.mkdir(parents=True, exist_ok=True)
    total = sum(info.file_size for info, _ in entries) or 1
    done = 0
    with zipfile.ZipFile(archive) as zf:
        for info, rel in entries:
            target = dest.joinpath(*rel.parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, open(target, "xb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            except (FileExistsError, NotADirectoryError):
                raise UnsafeArchiveError(
                    "entry collides with another entry", f"{archive}: {info.filename}"
                ) from None
            except (
                zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError,
                ValueError, zlib.error,
            ) as e:
                where = f"{archive}: {info.filename}"
                reason = f"cannot extract this entry: corrupt, truncated or encrypted ({e})"
                raise IngestError(reason, where) from None
            done += info.file_size
            progress.update(done / total, f"unpacking {info.filename}")
    return dest
