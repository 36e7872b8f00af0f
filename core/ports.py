"""What a stage reads and writes: typed artifacts, the ports that wire runs together, and the
fingerprint of the capture data a run depends on.

A stage spec declares ``reads`` (its input ports: a name, an artifact kind, optional or not),
``writes`` (the kinds its run folder holds) and ``capture_reads`` (which parts of the capture it
reads). A job wires each input port to a specific earlier step: by the step's stage name when
the step says so (``Step(stage, config, inputs={"poses": "poses"})``), else to the latest earlier
run that writes the port's kind. Only wired runs go into a run's hash, so a step that is not read
(an ``ingest`` before it, say) does not make a new run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.capture import CaptureFolder
from core.errors import ConfigError

# Artifact kinds: what a run folder holds, for the stages that read it.
POSED_IMAGES = "posed_images"  # poses.json (+ sparse points): the capture's photos with camera poses
DEPTH_FRAMES = "depth_frames"  # per-frame depth maps (metres)
RAW_MESH = "raw_mesh"  # mesh.ply straight from reconstruction (fusion, mvs, surface)
TEXTURED_MESH = "textured_mesh"  # the cleaned, placed, textured mesh (mesh stage)
EXPORTS = "exports"  # files for people: usdz, glb, obj, ply (export stage)
SPLATS = "splats"  # Gaussian splats (.ply)
RADIANCE_FIELD = "radiance_field"  # a trained NeRF
CHECKPOINT = "checkpoint"  # a model's trained weights
IMAGES = "images"  # generated or restyled images
ARTIFACT_KINDS = (POSED_IMAGES, DEPTH_FRAMES, RAW_MESH, TEXTURED_MESH, EXPORTS, SPLATS, RADIANCE_FIELD,
                  CHECKPOINT, IMAGES)

# What of the capture folder a stage reads (its run hash covers their fingerprint).
CAPTURE_FRAMES = "frames"  # capture.json's frames (intrinsics, poses, file names) and its scale
CAPTURE_FILES = "files"  # the files the frames name: images and depth by size and time, masks by content
CAPTURE_RAW = "raw"  # the uploads in raw/, by name and size
CAPTURE_PARTS = (CAPTURE_FRAMES, CAPTURE_FILES, CAPTURE_RAW)
DEFAULT_CAPTURE_READS = (CAPTURE_FRAMES, CAPTURE_FILES)


@dataclass(frozen=True)
class Port:
    """One input of a stage: ``ctx.inputs[name]`` is the run folder wired to it."""

    name: str
    kind: str  # one of ARTIFACT_KINDS (or a kind of a plug-in's own)
    optional: bool = False
    description: str = ""


def check_declaration(name: str, reads: Sequence[Port] | None, writes: Sequence[str],
                      capture_reads: Sequence[str]) -> None:
    """A spec's ports make sense: unique port names, kinds that are strings, known capture parts."""
    ports = list(reads or ())
    names = [p.name for p in ports]
    if len(set(names)) != len(names) or not all(isinstance(p, Port) and p.name for p in ports):
        raise ConfigError(f"input ports must be Port objects with unique names, got {names}", name)
    for kind in [*(p.kind for p in ports), *writes]:
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"an artifact kind must be a non-empty string, got {kind!r}", name)
    unknown = [p for p in capture_reads if p not in CAPTURE_PARTS]
    if unknown:
        raise ConfigError(f"unknown capture parts {unknown} (known: {', '.join(CAPTURE_PARTS)})", name)


def run_writes(run_dir: Path) -> tuple[str, ...]:
    """The artifact kinds an earlier run holds (from its config.json)."""
    try:
        data = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return ()
    kinds = data.get("writes") if isinstance(data, dict) else None
    return tuple(k for k in kinds if isinstance(k, str)) if isinstance(kinds, list) else ()


def wire_inputs(stage: str, reads: Sequence[Port], available: Mapping[str, Path],
                wiring: Mapping[str, str],
                kinds_of: Callable[[str, Path], tuple[str, ...]] | None = None) -> dict[str, Path]:
    """The run folder for each input port: the step named in ``wiring``, else the latest earlier
    run (``available`` is in step order, by stage name) that writes the port's kind.
    ``kinds_of(stage_name, run_dir)``: what a run holds (default: its config.json's ``writes``)."""
    kinds_of = kinds_of or (lambda _name, run: run_writes(run))
    ports = {p.name: p for p in reads}
    for port_name in wiring:
        if port_name not in ports:
            known = ", ".join(ports) or "none"
            raise ConfigError(f"no such input (known: {known})", f"{stage}.inputs.{port_name}")
    wired: dict[str, Path] = {}
    for port in reads:
        source = wiring.get(port.name)
        if source is not None:
            if source not in available:
                raise ConfigError(f"no earlier step {source!r} in this job", f"{stage}.inputs.{port.name}")
            wired[port.name] = Path(available[source])
            continue
        writers = [Path(run) for key, run in available.items() if port.kind in kinds_of(key, Path(run))]
        if writers:
            wired[port.name] = writers[-1]
        elif not port.optional:
            what = port.description or port.kind.replace("_", " ")
            raise ConfigError(f"needs {what} from an earlier step first", stage)
    return wired


def capture_fingerprint(capture: CaptureFolder, parts: Sequence[str]) -> str:
    """A hash of the parts of the capture a stage reads; the same data gives the same hash."""
    digest = hashlib.sha256()
    reads_manifest = CAPTURE_FRAMES in parts or CAPTURE_FILES in parts
    manifest = capture.load() if reads_manifest and capture.manifest_path.is_file() else None
    if manifest is not None and CAPTURE_FRAMES in parts:
        frames = manifest.to_json()["frames"]
        digest.update(json.dumps({"frames": frames, "scale": manifest.scale}, sort_keys=True).encode())
    if manifest is not None and CAPTURE_FILES in parts:
        for frame in manifest.frames:
            for rel, by_content in ((frame.image, False), (frame.depth, False), (frame.mask, True),
                                    (frame.confidence, True)):
                if rel is not None:
                    digest.update(f"{rel}\0{_file_identity(capture.path(rel), by_content)}\0".encode())
    if CAPTURE_RAW in parts and capture.raw_dir.is_dir():
        for path in sorted(p for p in capture.raw_dir.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(capture.raw_dir).as_posix()}\0{path.stat().st_size}\0".encode())
    return digest.hexdigest()[:16]


def _file_identity(path: Path, by_content: bool) -> str:
    try:
        if by_content:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        stat = path.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        return "missing"
