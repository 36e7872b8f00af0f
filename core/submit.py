"""What every entry point submits to process a capture: a method name, never a plan of its own.

The CLI, the capture server and the desktop queue the same job for a capture: ``ingest`` first
when the capture holds only what a phone uploaded (raw/, no frames yet), then one ``plan`` step
that records the method, the detail preset and any per-stage overrides. The plan step runs in
the worker's stage child (recon's method registry, recon.methods), looks at the capture as it is
then (after ingest), and expands into the method's stages, ending with ``publish`` to exports/.
Nothing here imports recon: method names come from entry-point metadata only, so the server can
use this module too.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from core.capture import CaptureFolder, Manifest
from core.errors import ConfigError
from core.jobs_schema import Step
from core.ports import TEXTURED_MESH, run_writes
from core.settings import Settings
from core.stages import STAGE_GROUP, is_done

METHOD_GROUP = "scanbridge.methods"
INGEST_STAGE = "ingest"
PLAN_STAGE = "plan"
PUBLISH_STAGE = "publish"
DEFAULT_METHOD = "auto"


def method_names() -> list[str]:
    """The registered methods, ``auto`` first (names from entry-point metadata; nothing is loaded)."""
    names = sorted({ep.name for ep in entry_points(group=METHOD_GROUP)})
    return sorted(names, key=lambda n: n != DEFAULT_METHOD)


def registered_stages() -> set[str]:
    """Stage names from entry-point metadata only."""
    return {ep.name for ep in entry_points(group=STAGE_GROUP)}


def needs_ingest(capture: CaptureFolder, manifest: Manifest | None = None) -> bool:
    """Whether the capture holds uploads that were not read yet: files in raw/ and no frames."""
    manifest = manifest or capture.load()
    raw = capture.raw_dir
    return not manifest.frames and raw.is_dir() and any(not p.name.startswith(".") for p in raw.iterdir())


def method_job(capture: CaptureFolder, method: str, detail: str,
               overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
               manifest: Manifest | None = None) -> list[Step]:
    """The steps to queue for processing ``capture`` with ``method`` at ``detail``.

    ``overrides`` maps a stage name to options for that stage (for example
    ``{"mesh": {"texture_size": 1024}}``); the plan step applies them when it expands.
    ``manifest``: the capture's manifest where it is about to be saved (else it is read).
    """
    known = method_names()
    if method not in known:
        raise ConfigError(f"unknown method {method!r} (known: {', '.join(known) or 'none installed'})",
                          "method")
    if not isinstance(detail, str) or not detail:
        raise ConfigError(f"expected a detail preset name, got {detail!r}", "detail")
    plan = Step(PLAN_STAGE, {"method": method, "detail": detail,
                             "overrides": {k: dict(v) for k, v in (overrides or {}).items()}})
    return [Step(INGEST_STAGE), plan] if needs_ingest(capture, manifest) else [plan]


def default_method_job(capture: CaptureFolder, settings: Settings, method: str | None = None,
                       detail: str | None = None,
                       overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[Step]:
    """``method_job`` with the settings' default method and detail where none is given."""
    return method_job(capture, method or settings.default_method, detail or settings.default_detail,
                      overrides)


RESTYLE_STAGE = "restyle"  # generation.restyle: the capture's frames restyled into an MP4
RESTYLE_ASSET_STAGE = "restyle-asset"  # its textured mesh restyled into a new USDZ/GLB
RESTYLE_OPTIONS = ("prompt", "negative_prompt", "mode", "fidelity", "strength", "seed", "image",
                   "image_scale", "name", "keyframe_every", "max_frames", "size", "steps")  # all bounded


def latest_textured_mesh_run(capture: CaptureFolder) -> str | None:
    """The newest finished run in the capture holding a textured mesh made from its photos (not a
    restyled one), by folder name; None when there is none. Reads only run folders (no stages)."""
    runs = [p for p in capture.runs_dir.iterdir() if p.is_dir()] if capture.runs_dir.is_dir() else []
    found = [p for p in runs if not p.name.startswith(RESTYLE_ASSET_STAGE + "-") and is_done(p)
             and TEXTURED_MESH in run_writes(p) and (p / "textured.npz").is_file()]
    return max(found, key=lambda p: (p / "status.json").stat().st_mtime).name if found else None


def restyle_job(capture: CaptureFolder, output: str, options: Mapping[str, Any]) -> list[Step]:
    """The steps that restyle ``capture``: ``output`` "video" (the restyle stage, an MP4) or "asset"
    (restyle-asset on its newest textured mesh, then publish: restyled-<name>.usdz/.glb in exports/).
    Only RESTYLE_OPTIONS are taken from ``options``; the stage checks their values."""
    unknown = sorted(set(options) - set(RESTYLE_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown restyle options {unknown} (known: {', '.join(RESTYLE_OPTIONS)})",
                          "options")
    stages = registered_stages()
    config = dict(options)
    if output == "video":
        config.pop("name", None)
        stage = RESTYLE_STAGE
        steps = [Step(stage, config)]
    elif output == "asset":
        for video_only in ("mode", "keyframe_every", "max_frames"):
            config.pop(video_only, None)
        mesh_run = latest_textured_mesh_run(capture)
        if mesh_run is None:
            raise ConfigError("the capture has no textured mesh yet: process it first", "output")
        stage = RESTYLE_ASSET_STAGE
        steps = [Step(stage, {**config, "mesh_run": mesh_run}), Step(PUBLISH_STAGE)]
    else:
        raise ConfigError(f"must be video or asset, got {output!r}", "output")
    if stage not in stages:
        raise ConfigError(f"restyling is not installed here (no {stage!r} stage)", "output")
    return steps
