"""Which weights a name means on this machine, and the licence notes shown before first use.

A model is asked for by a preset name (see presets.MODELS), a folder path, or a hub id. A name
resolves, in order, to the user's folder for it (settings.json ``model_paths``), to
``<workspace>/models/<name>/``, and last to its hub id, which diffusers fetches on first use only
when downloads are allowed; otherwise loading it from the local cache fails with one
DependencyError that names the model and where to put it (see loader.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError, InputError
from core.fsio import atomic_write_json
from generation.models.presets import KINDS, MODELS

LEDGER_NAME = "licences-shown.json"


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user asked for
    kind: str
    location: str  # a local folder (absolute) or a hub id
    local: bool
    licence: str
    licence_url: str = ""
    hub_id: str = ""  # the hub id this name stands for, when known
    note: str = ""

    def where_to_put(self, models_dir: Path | None) -> str:
        folder = models_dir / self.name if models_dir is not None else Path("<workspace>/models") / self.name
        return f"put its files (the hub repository {self.hub_id or self.name}) in {folder}"

    def licence_notice(self) -> str:
        url = f" ({self.licence_url})" if self.licence_url else ""
        return f"model {self.name}: licence {self.licence}{url}; using it means accepting it"


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or "\\" in text or Path(text).expanduser().exists()


class ModelRegistry:
    """Resolves model names for one workspace (its settings' ``model_paths`` and its models/ folder)."""

    def __init__(self, models_dir: Path | None = None, local_paths: Mapping[str, str] | None = None,
                 *, allow_download: bool = False) -> None:
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.local_paths = dict(local_paths or {})
        self.allow_download = allow_download

    def resolve(self, requested: str, kind: str) -> ResolvedModel:
        if kind not in KINDS:
            raise ConfigError(f"unknown model kind (known: {', '.join(KINDS)})", kind)
        if not isinstance(requested, str) or not requested.strip():
            raise ConfigError("empty model name", kind)
        spec = MODELS.get(requested)
        if spec is not None and spec.kind != kind:
            raise ConfigError(f"is a {spec.kind} model, not a {kind}", requested)
        licence = spec.licence if spec else "as stated by its publisher (see its model card or LICENSE file)"
        known = {"licence": licence, "licence_url": spec.licence_url if spec else "",
                 "hub_id": spec.hub_id if spec else "", "note": spec.note if spec else ""}
        folder = self._local_folder(requested)
        if folder is not None:
            return ResolvedModel(requested, kind, str(folder), True, **known)
        if _looks_like_path(requested):
            raise InputError("no such model folder", requested)
        location = spec.hub_id if spec else requested
        if spec is None and location.count("/") != 1:
            raise ConfigError(
                f"not a known model ({', '.join(n for n, m in MODELS.items() if m.kind == kind)}), "
                "a folder, or a hub id like 'owner/name'", requested)
        return ResolvedModel(requested, kind, location, False, **{**known, "hub_id": location})

    def _local_folder(self, requested: str) -> Path | None:
        candidates = []
        if requested in self.local_paths:
            candidates.append(Path(self.local_paths[requested]).expanduser())
        if self.models_dir is not None and "/" not in requested and requested not in (".", ".."):
            candidates.append(self.models_dir / requested)
        if _looks_like_path(requested):
            candidates.append(Path(requested).expanduser())
        for path in candidates:
            if path.is_dir():
                return path.resolve()
        if requested in self.local_paths:
            raise InputError(f"the folder registered for model {requested!r} does not exist",
                             self.local_paths[requested])
        return None


class LicenceLedger:
    """The models whose licence this workspace has shown, so each is shown once, before first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def shown(self) -> set[str]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return set()
        return {str(x) for x in data} if isinstance(data, list) else set()

    def notices_to_show(self, models: Iterable[ResolvedModel]) -> list[str]:
        """Licence lines for the models not shown before; records them as shown."""
        seen = self.shown()
        fresh = [m for m in models if m.location not in seen]
        if fresh:
            atomic_write_json(self.path, sorted(seen | {m.location for m in fresh}))
        return [m.licence_notice() for m in fresh]
