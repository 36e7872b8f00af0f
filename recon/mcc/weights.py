"""Reading and writing MCC weights: ours (config + state dict) and the published checkpoint.

Ours is ``{"format": FORMAT, "config": {...}, "model": state_dict, "about": {...}}``, readable with
``torch.load(weights_only=True)``. The published research checkpoint (CC-BY-NC, the user's own
download) is ``{"model": state_dict, "args": argparse.Namespace, ...}``: argparse.Namespace is the
one extra type allowed while loading it, and it is loaded into the published sizes strictly.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.errors import InputError
from recon.mcc.model import MCC, MCCConfig

FORMAT = "scanbridge-mcc-1"
DEFAULT_MODEL_FILE = Path(__file__).resolve().parents[2] / "resources" / "mcc" / "mcc-small.pt"
PUBLISHED_LICENCE = ("Meta's MCC weights are licensed CC-BY-NC 4.0 (non-commercial use only); "
                     "you downloaded them yourself and are responsible for using them within that licence")
MAX_CHECKPOINT_BYTES = 4 << 30


@dataclass
class LoadedModel:
    model: MCC
    source: str  # "default" | "published" | "scanbridge"
    about: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> MCCConfig:
        return self.model.config


def save_model(model: MCC, path: Path, about: dict[str, Any] | None = None, half: bool = True) -> None:
    """Write ``model`` in our format (float16 by default: half the size), atomically."""
    state = {k: (v.half() if half and v.is_floating_point() else v).clone()
             for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, "config": model.config.to_json(), "model": state,
                    "about": dict(about or {})}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read(path: Path) -> Any:
    if not path.is_file():
        raise InputError("no MCC weights file here", path)
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise InputError("this file is too large to be MCC weights", path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise InputError(f"cannot read MCC weights: {str(e).splitlines()[0][:200]}", path) from None


def load_model(path: Path | None = None, device: str = "cpu") -> LoadedModel:
    """Our weights or the published checkpoint at ``path`` (the shipped default when None),
    loaded strictly; InputError naming the file when it is neither."""
    path = Path(path) if path is not None else DEFAULT_MODEL_FILE
    data = _read(path)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise InputError("not an MCC checkpoint (expected a dict with a 'model' state dict)", path)
    if data.get("format") == FORMAT:
        config = MCCConfig.from_json(data.get("config"))
        source = "default" if path.resolve() == DEFAULT_MODEL_FILE else "scanbridge"
        about = dict(data.get("about") or {})
    else:
        config = MCCConfig()  # the published sizes
        source = "published"
        about = {"licence": PUBLISHED_LICENCE}
    state = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
             for k, v in data["model"].items()}
    with torch.device("meta"):  # no random init of weights that are replaced at once
        model = MCC(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"the weights do not fit the MCC layout: {str(e)[:300]}", path) from None
    model.reset_constants()
    return LoadedModel(model.to(device).eval(), source, about)
