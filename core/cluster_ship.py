"""Shipping a stage's files between machines that share no storage (core.executor_ray).

A shipment is a list of ``ShippedFile`` (a relative POSIX path, the bytes, the modification time
in nanoseconds and the permission bits): plain data that Ray's object store carries. Times are
kept to the nanosecond because a run's hash fingerprints the capture's images by size and mtime
(core.ports), so a shipped copy hashes to the same run folder name as the original.

What arrives is hostile like any input: a path that is absolute, climbs out with ``..`` or is not
a plain relative name is refused, and nothing is written outside the destination. A run folder
coming back is published with the same discipline as a local one: written under a temporary
name, fsynced, then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import InputError
from core.fsio import fsync_dir

SKIPPED_CAPTURE_PARTS = ("runs", "exports")  # what a stage never reads from the capture itself


@dataclass(frozen=True)
class ShippedFile:
    path: str  # relative, POSIX
    data: bytes
    mtime_ns: int
    mode: int


def safe_relative(path: str, where: str) -> PurePosixPath:
    """``path`` as a plain relative path inside its root, else InputError naming it."""
    rel = PurePosixPath(path) if isinstance(path, str) else None
    if rel is None or not path or rel.is_absolute() or "\\" in path or "\0" in path \
            or any(part in ("", ".", "..") for part in path.split("/")):
        raise InputError(f"refusing a shipped file named {path!r}: not a plain relative path", where)
    return rel


def pack_tree(root: Path, prefix: str = "", skip_top: Sequence[str] = ()) -> list[ShippedFile]:
    """Every regular file under ``root`` (symlinks and special files are left out), as ``prefix/rel``."""
    out: list[ShippedFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in skip_top]
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
        for name in sorted(filenames):
            path = here / name
            st = path.lstat()
            if not path.is_file() or path.is_symlink():
                continue
            rel = path.relative_to(root).as_posix()
            out.append(ShippedFile(f"{prefix}/{rel}" if prefix else rel, path.read_bytes(), st.st_mtime_ns,
                                   st.st_mode & 0o777))
    return out


def pack_capture(capture_root: Path, run_dirs: Iterable[Path], with_raw: bool) -> list[ShippedFile]:
    """What a stage on another machine reads: the capture (less runs/, exports/ and, unless the
    stage reads it, raw/) and the earlier run folders wired into it, under ``runs/<name>``."""
    skip = (*SKIPPED_CAPTURE_PARTS, *(() if with_raw else ("raw",)))
    files = pack_tree(capture_root, "", skip)
    for run in run_dirs:
        files += pack_tree(Path(run), f"runs/{Path(run).name}")
    return files


def unpack(files: Sequence[ShippedFile], dest: Path, where: str, *, fsync: bool = False) -> None:
    """Write a shipment under ``dest`` (which must be new or empty), keeping times and modes."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in files:
        rel = safe_relative(item.path, where)
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(item.data)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(target, (item.mode & 0o777) | 0o600)
        os.utime(target, ns=(item.mtime_ns, item.mtime_ns))


def publish_run(files: Sequence[ShippedFile], runs_dir: Path, name: str,
                path_map: dict[str, str] | None = None) -> Path:
    """Publish a run folder that came back from a node as ``runs_dir/name``: temporary name,
    fsync, rename. ``path_map`` rewrites the node's paths in its config.json to this machine's."""
    safe_relative(name, "run folder")
    if "/" in name:
        raise InputError(f"refusing a run folder named {name!r}", "run folder")
    runs_dir.mkdir(parents=True, exist_ok=True)
    incoming = runs_dir / f".{name}.incoming-{uuid.uuid4().hex[:8]}"
    try:
        unpack(files, incoming, f"run {name}", fsync=True)
        if path_map:
            _rewrite_inputs(incoming / "config.json", path_map)
        fsync_dir(incoming)
        target = runs_dir / name
        old = runs_dir / f".{name}.old-{uuid.uuid4().hex[:8]}"
        if target.exists():  # an interrupted run that this one resumed, or a failed one
            os.rename(target, old)
        os.rename(incoming, target)
        fsync_dir(runs_dir)
        shutil.rmtree(old, ignore_errors=True)
        return target
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _rewrite_inputs(config_path: Path, path_map: dict[str, str]) -> None:
    try:
        data = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(inputs, dict):
        return
    data["inputs"] = {k: path_map.get(str(v), v) for k, v in inputs.items()}
    stat = config_path.stat()
    config_path.write_text(json.dumps(data, indent=2))
    os.utime(config_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
