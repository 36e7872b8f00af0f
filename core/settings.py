"""User settings, stored as settings.json in the workspace."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.fsio import atomic_write_json


@dataclass(frozen=True)
class Settings:
    server_port: int = 8765
    https: bool = True
    allow_plain_http: bool = False  # for the phone web page on networks where HTTPS is refused
    max_upload_bytes: int = 20 * 1024**3
    gpu: str = "auto"  # "auto", "cpu", or a CUDA device index such as "0"
    process_on_finish: bool = True
    default_method: str = "auto"
    default_detail: str = "medium"
    model_paths: dict[str, str] = field(default_factory=dict)
    # A Ray cluster's head ("HOST:PORT" or "auto") for `scanbridge worker`; "" runs stages on this
    # machine. Ray has no authentication: a private network only (docs/cluster.md).
    cluster_address: str = ""


def load_settings(path: Path) -> Settings:
    """Read settings.json; a missing file gives the defaults, a bad key an error naming it."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return Settings()
    except json.JSONDecodeError as e:
        raise ConfigError(f"not valid JSON (line {e.lineno})", path) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object", path)
    known = {f.name: f for f in dataclasses.fields(Settings)}
    defaults = Settings()
    for key, value in data.items():
        if key not in known:
            raise ConfigError("unknown setting", f"{path}: {key}")
        expected = type(getattr(defaults, key))
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"expected {expected.__name__}, got {value!r}", f"{path}: {key}")
    return Settings(**data)


def save_settings(path: Path, settings: Settings) -> Path:
    return atomic_write_json(path, dataclasses.asdict(settings))


def with_changes(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)
