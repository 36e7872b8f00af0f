"""Model weights and the compute device, as a stage sees them (``ctx.models``, ``ctx.device``).

``ctx.models.resolve("depth-anything-small")`` gives the local path the user set for that id in
settings (``model_paths``) and the content hash of the file or folder there. Nothing is ever
downloaded: an id with no path, or a path that is not there, is a DependencyError that says
which setting to fill in. A stage that lists a model id in ``StageSpec.models`` gets that hash
in its run's identity, so new weights make a new run.

``ctx.device`` is "cpu", "cuda:N" or "mps": the settings' ``gpu`` ("auto", "cpu" or a CUDA
index) for a stage that declares it uses the GPU (``Resources(gpu=True)``), else "cpu".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError, DependencyError
from core.fsio import atomic_write_json, file_sha256

HASH_CACHE_NAME = ".model-hashes.json"  # beside the weights' folder: path -> (signature, sha256)


@dataclass(frozen=True)
class ResolvedModel:
    id: str
    path: Path
    sha256: str  # a file's sha256; a folder's: sha256 of "name\0sha256\0" per file, by relative name


class ModelStore:
    """The model ids the user installed (settings' model_paths: id -> local file or folder)."""

    def __init__(self, paths: Mapping[str, str] | None = None) -> None:
        self.paths = {str(k): str(v) for k, v in (paths or {}).items()}
        self._resolved: dict[str, ResolvedModel] = {}

    def resolve(self, model_id: str) -> ResolvedModel:
        if model_id in self._resolved:
            return self._resolved[model_id]
        where = f"model_paths.{model_id}"
        if model_id not in self.paths:
            known = ", ".join(sorted(self.paths)) or "none"
            raise DependencyError(
                f"model {model_id!r} is not installed: download its weights yourself and set their "
                f"path in the settings (installed: {known})", where)
        path = Path(self.paths[model_id]).expanduser()
        if not path.exists():
            raise DependencyError(f"model {model_id!r}: nothing at {path}", where)
        resolved = ResolvedModel(model_id, path.resolve(), content_hash(path))
        self._resolved[model_id] = resolved
        return resolved


def content_hash(path: Path) -> str:
    """sha256 of a file, or of a folder's files; remembered per file by size and mtime."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*")
                   if p.is_file() and p.name != HASH_CACHE_NAME)
    if not files:
        raise DependencyError("the model folder is empty", path)
    digest = hashlib.sha256()
    for name, file in files:
        digest.update(f"{name}\0{_file_sha256(file)}\0".encode())
    return digest.hexdigest()


def _file_sha256(file: Path) -> str:
    cache_path = file.parent / HASH_CACHE_NAME
    stat = file.stat()
    signature = f"{stat.st_size}:{stat.st_mtime_ns}"
    cache = _read_cache(cache_path)
    entry = cache.get(file.name)
    if isinstance(entry, list) and len(entry) == 2 and entry[0] == signature:
        return str(entry[1])
    digest = file_sha256(file)
    cache[file.name] = [signature, digest]
    if os.access(file.parent, os.W_OK):  # a read-only model folder is hashed each time instead
        try:
            atomic_write_json(cache_path, cache)
        except OSError:
            pass
    return digest


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def choose_device(gpu_setting: str, uses_gpu: bool) -> str:
    """"cpu", "cuda:N" or "mps" for a stage; torch is imported only for a GPU-declared stage."""
    if not uses_gpu or gpu_setting == "cpu":
        return "cpu"
    if gpu_setting != "auto" and not gpu_setting.isdigit():
        raise ConfigError(f'expected "auto", "cpu" or a CUDA device index, got {gpu_setting!r}', "gpu")
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        index = 0 if gpu_setting == "auto" else int(gpu_setting)
        if index >= torch.cuda.device_count():
            raise DependencyError(f"no CUDA device {index} (this machine has {torch.cuda.device_count()})",
                                  "gpu")
        return f"cuda:{index}"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if gpu_setting == "auto" and mps is not None and mps.is_available() else "cpu"
