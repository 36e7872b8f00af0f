"""The capture folder and its manifest, capture.json: the contract between all packages.

See docs/capture-format.md. Poses are OpenCV camera-to-world 4x4 matrices (x right, y down,
z forward); units are metres when ``scale == "metric"``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ManifestError, SchemaVersionError
from core.fsio import atomic_write_json

SCHEMA_VERSION = 1
MANIFEST_NAME = "capture.json"
MODES = ("guided", "free", "import", "rgbd")
STATUSES = ("new", "receiving", "ingested", "processing", "processed", "failed")
SCALES = ("metric", "unscaled")
CAMERA_MODELS = ("PINHOLE", "OPENCV", "OPENCV_FISHEYE")


@dataclass(frozen=True)
class Camera:
    """Intrinsics at the resolution ``width`` x ``height`` of the colour image."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    model: str = "PINHOLE"
    # OpenCV k1, k2, p1, p2 when model == "OPENCV"; fisheye k1, k2, k3, k4 when "OPENCV_FISHEYE".
    distortion: tuple[float, ...] = ()

    def scaled(self, width: int, height: int) -> Camera:
        """The same camera at another resolution (for example a depth map's)."""
        sx, sy = width / self.width, height / self.height
        return replace(
            self, width=width, height=height,
            fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy,
        )

    def matrix(self) -> list[list[float]]:
        return [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]]


@dataclass(frozen=True)
class Frame:
    """One view. Paths are relative to the capture folder."""

    id: str
    camera: Camera
    image: str | None = None
    source_name: str | None = None  # the file name it arrived with
    pose: tuple[tuple[float, ...], ...] | None = None  # 4x4 camera-to-world, OpenCV
    depth: str | None = None  # 16-bit PNG
    depth_scale: float = 0.001  # metres per depth unit
    confidence: str | None = None  # 8-bit PNG, 0 low .. 2 high (ARKit levels)
    mask: str | None = None  # 8-bit PNG, nonzero = object
    timestamp: float | None = None


@dataclass(frozen=True)
class Manifest:
    id: str
    name: str
    created: str
    mode: str
    frames: tuple[Frame, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    status: str = "new"
    scale: str = "unscaled"
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["frames"] = list(d["frames"])
        for fr in d["frames"]:
            fr["camera"]["distortion"] = list(fr["camera"]["distortion"])
            if fr["pose"] is not None:
                fr["pose"] = [list(r) for r in fr["pose"]]
        return {"schema_version": d.pop("schema_version"), **d}


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- validation: every error names the field it is about ---------------------------------------


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ManifestError("missing required field", f"{where}.{key}" if where else key)
    return d[key]


def _num(v: Any, where: str, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ManifestError(f"expected a finite number, got {v!r}", where)
    if positive and v <= 0:
        raise ManifestError(f"expected a positive number, got {v!r}", where)
    return float(v)


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ManifestError(f"expected a positive integer, got {v!r}", where)
    return v


def _str(v: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(v, str) or not v:
        raise ManifestError(f"expected a non-empty string, got {v!r}", where)
    if choices is not None and v not in choices:
        raise ManifestError(f"must be one of {', '.join(choices)}, got {v!r}", where)
    return v


def _rel_path(v: Any, where: str) -> str | None:
    if v is None:
        return None
    s = _str(v, where)
    p = Path(s)
    if p.is_absolute() or ".." in p.parts or "\\" in s:
        raise ManifestError(f"must be a path inside the capture folder, got {s!r}", where)
    return s


def parse_camera(d: Any, where: str) -> Camera:
    if not isinstance(d, dict):
        raise ManifestError("expected an object", where)
    model = _str(d.get("model", "PINHOLE"), f"{where}.model", CAMERA_MODELS)
    dist = d.get("distortion", [])
    if not isinstance(dist, list) or len(dist) not in (0, 4):
        raise ManifestError("expected a list of 4 numbers (k1, k2, p1, p2; fisheye k1..k4) or []",
                            f"{where}.distortion")
    return Camera(
        width=_int(_req(d, "width", where), f"{where}.width"),
        height=_int(_req(d, "height", where), f"{where}.height"),
        fx=_num(_req(d, "fx", where), f"{where}.fx", positive=True),
        fy=_num(_req(d, "fy", where), f"{where}.fy", positive=True),
        cx=_num(_req(d, "cx", where), f"{where}.cx"),
        cy=_num(_req(d, "cy", where), f"{where}.cy"),
        model=model,
        distortion=tuple(_num(x, f"{where}.distortion[{i}]") for i, x in enumerate(dist)),
    )


def parse_pose(v: Any, where: str) -> tuple[tuple[float, ...], ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != 4 or any(not isinstance(r, list) or len(r) != 4 for r in v):
        raise ManifestError("expected a 4x4 matrix (list of 4 rows of 4 numbers)", where)
    rows = tuple(tuple(_num(x, f"{where}[{i}][{j}]") for j, x in enumerate(r)) for i, r in enumerate(v))
    if rows[3] != (0.0, 0.0, 0.0, 1.0):
        raise ManifestError("last row must be [0, 0, 0, 1]", where)
    return rows


def parse_frame(d: Any, where: str) -> Frame:
    if not isinstance(d, dict):
        raise ManifestError("expected an object", where)
    image = _rel_path(d.get("image"), f"{where}.image")
    depth = _rel_path(d.get("depth"), f"{where}.depth")
    if image is None and depth is None:
        raise ManifestError("a frame needs an image or a depth map", where)
    ts = d.get("timestamp")
    return Frame(
        id=_str(_req(d, "id", where), f"{where}.id"),
        camera=parse_camera(_req(d, "camera", where), f"{where}.camera"),
        image=image,
        source_name=d.get("source_name"),
        pose=parse_pose(d.get("pose"), f"{where}.pose"),
        depth=depth,
        depth_scale=_num(d.get("depth_scale", 0.001), f"{where}.depth_scale", positive=True),
        confidence=_rel_path(d.get("confidence"), f"{where}.confidence"),
        mask=_rel_path(d.get("mask"), f"{where}.mask"),
        timestamp=None if ts is None else _num(ts, f"{where}.timestamp"),
    )


def parse_manifest(d: Any) -> Manifest:
    """Validate a decoded capture.json. Raises ManifestError naming the first bad field."""
    if not isinstance(d, dict):
        raise ManifestError("expected a JSON object at the top level", MANIFEST_NAME)
    version = _req(d, "schema_version", "")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ManifestError(f"expected a positive integer, got {version!r}", "schema_version")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"written by a newer ScanBridge (schema {version}; this one reads up to {SCHEMA_VERSION})",
            "schema_version",
        )
    frames_raw = d.get("frames", [])
    if not isinstance(frames_raw, list):
        raise ManifestError("expected a list", "frames")
    frames = tuple(parse_frame(f, f"frames[{i}]") for i, f in enumerate(frames_raw))
    seen: set[str] = set()
    for i, fr in enumerate(frames):
        if fr.id in seen:
            raise ManifestError(f"duplicate frame id {fr.id!r}", f"frames[{i}].id")
        seen.add(fr.id)
    source = d.get("source", {})
    if not isinstance(source, dict):
        raise ManifestError("expected an object", "source")
    return Manifest(
        id=_str(_req(d, "id", ""), "id"),
        name=_str(_req(d, "name", ""), "name"),
        created=_str(_req(d, "created", ""), "created"),
        mode=_str(_req(d, "mode", ""), "mode", MODES),
        frames=frames,
        source=source,
        status=_str(d.get("status", "new"), "status", STATUSES),
        scale=_str(d.get("scale", "unscaled"), "scale", SCALES),
        schema_version=version,
    )


class CaptureFolder:
    """A capture folder on disk: ``<workspace>/captures/<id>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # Sub-folders from DESIGN.md.
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def depth_dir(self) -> Path:
        return self.root / "depth"

    @property
    def confidence_dir(self) -> Path:
        return self.root / "confidence"

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def id(self) -> str:
        return self.root.name

    def load(self) -> Manifest:
        path = self.manifest_path
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestError("no capture.json here", path) from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ManifestError(f"not valid JSON (line {e.lineno}, column {e.colno})", path) from None
        try:
            return parse_manifest(data)
        except ManifestError as e:
            raise type(e)(e.reason, f"{path}: {e.where}") from None

    def save(self, manifest: Manifest) -> Path:
        parse_manifest(manifest.to_json())  # never write what we could not read back
        return atomic_write_json(self.manifest_path, manifest.to_json())

    def path(self, rel: str) -> Path:
        """Absolute path of a file named in the manifest."""
        return self.root / rel
