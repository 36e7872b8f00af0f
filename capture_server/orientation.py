"""A photo's device orientation as the phone web page sends it, checked as hostile input.

The page sends each guided photo's W3C DeviceOrientation reading in the tus metadata key
``orientation``: compact JSON ``{"alpha", "beta", "gamma", "heading", "t"}`` (degrees; ``heading``
is a compass heading where the browser has one, else null; ``t`` is the shot's Unix time in ms).

How a reading becomes a direction around the object is core.device_orientation's job.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from capture_server.errors import RequestError
from core.device_orientation import camera_direction, view_azimuth_elevation

METADATA_KEY = "orientation"
MAX_TEXT_BYTES = 512
MAX_TIME_MS = 1e14  # about the year 5138: anything later is not a clock reading
# field -> (lowest, highest) allowed, inclusive
RANGES = {"alpha": (0.0, 360.0), "beta": (-180.0, 180.0), "gamma": (-90.0, 90.0),
          "heading": (0.0, 360.0), "t": (0.0, MAX_TIME_MS)}
REQUIRED = ("alpha", "beta", "gamma")


@dataclass(frozen=True)
class Orientation:
    alpha: float
    beta: float
    gamma: float
    heading: float | None = None
    t: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "heading": self.heading,
                "t": self.t}

    def camera_direction(self) -> tuple[float, float, float]:
        """Unit vector the back camera looks along, in the earth frame (east, north, up)."""
        return camera_direction(self.alpha, self.beta, self.gamma)

    def view_azimuth_deg(self) -> float:
        """Direction from the object to the phone, degrees clockwise from the alpha reference."""
        return view_azimuth_elevation(self.alpha, self.beta, self.gamma)[0]

    def view_elevation_deg(self) -> float:
        """Height of the phone above the object's level, in degrees (looking down = above)."""
        return view_azimuth_elevation(self.alpha, self.beta, self.gamma)[1]


def _no_constants(name: str) -> float:
    raise RequestError(f"{name} is not a number", f"Upload-Metadata {METADATA_KEY}")


def _number(value: Any, field: str) -> float:
    where = f"Upload-Metadata {METADATA_KEY}.{field}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"expected a number, got {type(value).__name__}", where)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    low, high = RANGES[field]
    if not math.isfinite(number) or not low <= number <= high:
        raise RequestError(f"expected a number from {low:g} to {high:g}, got {value!r}", where)
    return number


def parse_orientation(text: str) -> Orientation:
    """The checked orientation in ``text``; RequestError naming the field otherwise."""
    where = f"Upload-Metadata {METADATA_KEY}"
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise RequestError(f"longer than {MAX_TEXT_BYTES} bytes", where)
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except (json.JSONDecodeError, ValueError) as e:
        raise RequestError(f"not valid JSON ({e})", where) from None
    if not isinstance(data, dict):
        raise RequestError("expected a JSON object", where)
    unknown = sorted(set(data) - set(RANGES))
    if unknown:
        raise RequestError(f"unknown fields: {', '.join(unknown)[:100]}", where)
    for name in REQUIRED:
        if data.get(name) is None:
            raise RequestError("missing required field", f"{where}.{name}")
    values = {name: None if data.get(name) is None else _number(data[name], name) for name in RANGES}
    if values["alpha"] == 360.0:
        values["alpha"] = 0.0
    if values["heading"] == 360.0:
        values["heading"] = 0.0
    return Orientation(**values)  # type: ignore[arg-type]


def checked_upload_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """``metadata`` with its ``orientation`` (if any) checked and rewritten in canonical form."""
    if METADATA_KEY not in metadata:
        return metadata
    orientation = parse_orientation(metadata[METADATA_KEY])
    return {**metadata, METADATA_KEY: json.dumps(orientation.to_json(), separators=(",", ":"))}
