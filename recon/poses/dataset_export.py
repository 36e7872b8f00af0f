"""A poses run's transforms.json as a self-contained nerfstudio dataset folder.

The run's transforms.json names the capture's frames by paths that leave its own folder
(``../../images/...``), which no importer that keeps to its source's folder may follow. The
exported folder holds transforms.json beside copies of everything it names (images/, depth/,
masks/, the run's depth previews and sparse.ply), so nerfstudio and ``scanbridge import`` read it
as it is, and it re-imports with the same scale and frames. It is built beside the target and
renamed into place, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.fsio import atomic_write_json
from core.source_paths import copy_into

PATH_KEYS = ("file_path", "depth_file_path", "mask_path")


def _local_name(target: Path, capture_root: Path, run_dir: Path) -> str:
    """Where a named file goes inside the export: its place in the capture (or in the run)."""
    for base in (run_dir, capture_root):
        try:
            return target.relative_to(base).as_posix()
        except ValueError:
            continue
    raise InputError("names a file outside the capture", str(target))


def export_nerfstudio_dataset(run_dir: Path, capture_root: Path, out_dir: Path) -> Path:
    """Write ``out_dir`` (new, or an empty folder) with transforms.json and the files it names;
    returns the path of its transforms.json."""
    run_dir, capture_root, out_dir = run_dir.resolve(), capture_root.resolve(), Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError("already exists and is not an empty folder", out_dir)
    transforms: dict[str, Any] = json.loads((run_dir / "transforms.json").read_text(encoding="utf-8"))
    staging = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        copied: dict[Path, str] = {}

        def localise(rel: str) -> str:
            target = (run_dir / rel).resolve()
            if target not in copied:
                name = _local_name(target, capture_root, run_dir)
                copy_into(target, staging / name)
                copied[target] = name
            return copied[target]

        frames = []
        for frame in transforms.get("frames", []):
            frame = dict(frame)
            for key in PATH_KEYS:
                if isinstance(frame.get(key), str):
                    frame[key] = localise(frame[key])
            frames.append(frame)
        out = {**transforms, "frames": frames}
        if isinstance(out.get("ply_file_path"), str):
            out["ply_file_path"] = localise(out["ply_file_path"])
        atomic_write_json(staging / "transforms.json", out)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "transforms.json"
