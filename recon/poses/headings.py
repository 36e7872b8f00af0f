"""Where around the object each photo of a guided web-page capture was taken, from the device
orientation the page sent with it (listed with its file in the manifest's ``source.files``,
docs/protocol.md "Photo orientation"). SfM pairs each such photo with its neighbours by direction.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any

from core.capture import Manifest
from core.device_orientation import Vector, direction_to_phone

ANGLES = ("alpha", "beta", "gamma")


def _angles(orientation: Any) -> tuple[float, float, float] | None:
    """The three angles when they are plain finite numbers of a sane size, else None."""
    if not isinstance(orientation, dict):
        return None
    values = [orientation.get(k) for k in ANGLES]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= 360
               for v in values):
        return None
    return float(values[0]), float(values[1]), float(values[2])


def frame_directions(manifest: Manifest) -> dict[str, Vector]:
    """Frame id -> unit vector from the object to the camera, for the frames whose uploaded file
    came with an orientation. The manifest is read as untrusted: malformed entries are skipped,
    and a file name that two uploads share (in different folders) gives no direction."""
    files = manifest.source.get("files") if isinstance(manifest.source, dict) else None
    if not isinstance(files, list):
        return {}
    by_name: dict[str, Vector | None] = {}
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        angles = _angles(entry.get("orientation"))
        if angles is None:
            continue
        base = PurePosixPath(entry["name"]).name
        by_name[base] = None if base in by_name else direction_to_phone(*angles)
    out = {}
    for frame in manifest.frames:
        direction = by_name.get(frame.source_name or "")
        if direction is not None:
            out[frame.id] = direction
    return out
