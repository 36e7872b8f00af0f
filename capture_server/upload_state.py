"""One upload's saved state (``.uploads/<id>.json``), read back with every field checked, and the
quarantine that sets a damaged or unpublishable upload aside instead of failing every request
(and the server's start) on its capture."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capture_server.errors import RequestError
from capture_server.names import safe_relative_name
from core.errors import ManifestError

QUARANTINE_DIR = "quarantine"  # inside a capture's .uploads/
STATES = ("receiving", "complete")
_HEX_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadInfo:
    id: str
    capture_id: str
    filename: str  # relative to the capture's raw/
    kind: str
    length: int
    offset: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    expires: float = 0.0  # unix time; renewed by every write
    state: str = "receiving"  # "receiving" | "complete"
    sha256: str | None = None  # of the whole file, once complete

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any) -> UploadInfo:
        """Read a saved state back; ManifestError naming the first field that is not as written."""
        if not isinstance(d, dict):
            raise ManifestError("expected a JSON object", "upload state")

        def need(key: str, ok: bool) -> None:
            if not ok:
                raise ManifestError(f"bad value {str(d.get(key))[:60]!r}", key)

        def is_count(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63

        need("id", isinstance(d.get("id"), str) and bool(_HEX_ID.fullmatch(d["id"])))
        need("capture_id", isinstance(d.get("capture_id"), str))
        try:
            safe_relative_name(d.get("filename"))
        except RequestError:
            need("filename", False)
        need("kind", isinstance(d.get("kind"), str))
        need("length", is_count(d.get("length")))
        need("offset", is_count(d.get("offset", 0)) and d.get("offset", 0) <= d["length"])
        metadata = d.get("metadata", {})
        need("metadata", isinstance(metadata, dict)
             and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()))
        for key in ("created", "expires"):
            v = d.get(key, 0.0)
            need(key, isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
        need("state", d.get("state", "receiving") in STATES)
        sha = d.get("sha256")
        need("sha256", sha is None or isinstance(sha, str) and bool(_SHA256.fullmatch(sha)))
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def quarantine(uploads_dir: Path, upload_id: str, why: str) -> Path:
    """Move the upload's state and partial file to ``.uploads/quarantine/`` (kept for a person to
    look at, never served) and log a warning; returns the quarantine folder."""
    target = uploads_dir / QUARANTINE_DIR
    target.mkdir(exist_ok=True)
    for suffix in (".json", ".part"):
        src = uploads_dir / f"{upload_id}{suffix}"
        if src.exists() or src.is_symlink():
            os.replace(src, target / src.name)
    log.warning("upload %s in %s was set aside in %s: %s", upload_id, uploads_dir.parent.name, target, why)
    return target
