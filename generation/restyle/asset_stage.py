"""The ``restyle-asset`` stage: a finished mesh run's model with a restyled texture, as a new AR asset.

Reads the mesh run named in its config (``runs/mesh-<hash>``: textured.npz and placement.json),
renders it from the capture's camera poses, restyles and re-bakes its texture
(generation.restyle.asset), and writes, in its own run folder, the new textured mesh (textured.npz,
placement.json: a textured-mesh artifact like the mesh stage's) and ``restyled-<name>.usdz`` (checked
by the ARKit compliance checker) + ``restyled-<name>-poster.png`` + ``restyled-<name>.glb``. The
job's publish step copies those into exports/ beside the original model.* files, which stay as
they were.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.capture import CaptureFolder
from core.errors import ConfigError, InputError, StageError
from core.fsio import atomic_write_json
from core.ports import CAPTURE_FRAMES, EXPORTS, TEXTURED_MESH, run_writes
from core.stages import StageContext, StageSpec, is_done
from core.submit import latest_textured_mesh_run
from generation.restyle.stage import (
    RestyleConfig,
    engine_settings,
    licence_ledger,
    model_registry,
    resolve_models,
)

ASSET_PREFIX = "restyled-"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_RUN = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


@dataclass(frozen=True)
class RestyleAssetConfig:
    prompt: str = ""
    negative_prompt: str = ""
    mesh_run: str = ""  # the run folder (in runs/) of the textured mesh to restyle
    name: str = "style"  # the new files are restyled-<name>.usdz / .glb
    preset: str = "sd15-depth"
    base: str = ""
    controlnet: str = ""
    lora: str = ""
    fidelity: float = 0.7
    strength: float = 0.6
    steps: int = 0
    guidance: float = -1.0
    seed: int = 0
    size: int = 0  # long side of each rendered view; 0: the preset's
    views: int = 8  # camera poses the mesh is rendered from, spread over the capture
    rounds: int = 2  # render -> edit -> re-bake rounds
    texture_size: int = 0  # 0: the mesh's own
    check: bool = True  # run the ARKit compliance checker on the USDZ
    image: str = ""  # a reference image inside the capture (references/...), through an IP-Adapter
    image_scale: float = 0.6
    ip_adapter: str = ""
    allow_download: bool = False
    allow_cpu: bool = False

    def restyle_config(self) -> RestyleConfig:
        return RestyleConfig(prompt=self.prompt, negative_prompt=self.negative_prompt, mode="stylize",
                             preset=self.preset, base=self.base, controlnet=self.controlnet, lora=self.lora,
                             fidelity=self.fidelity, strength=self.strength, steps=self.steps,
                             guidance=self.guidance, seed=self.seed, size=self.size, keyframe_every=1,
                             image=self.image, image_scale=self.image_scale, ip_adapter=self.ip_adapter,
                             allow_download=self.allow_download, allow_cpu=self.allow_cpu)


def asset_name(text: str) -> str:
    """A file-name-safe asset name from free text (a prompt): lower-case words joined by '-'."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:40].strip("-") or "style"


def check_asset_config(config: RestyleAssetConfig) -> None:
    engine_settings(config.restyle_config())
    if not isinstance(config.name, str) or not _NAME.match(config.name):
        raise ConfigError("must be 1-40 lower-case letters, digits or '-'", "name")
    run = config.mesh_run
    if not isinstance(run, str) or not _RUN.match(run) or run in (".", ".."):
        raise ConfigError("must name a finished mesh run folder in the capture's runs/", "mesh_run")
    for field, lo, hi in (("views", 1, 64), ("rounds", 1, 5), ("texture_size", 0, 4096)):
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"must be a whole number from {lo} to {hi}, got {value!r}", field)
    if config.texture_size and config.texture_size < 64:
        raise ConfigError("must be 0 (the mesh's own) or at least 64", "texture_size")
    if not isinstance(config.check, bool):
        raise ConfigError(f"must be true or false, got {config.check!r}", "check")


def latest_mesh_run(capture: CaptureFolder) -> str:
    """The newest finished run in the capture that holds a textured mesh (InputError when none)."""
    name = latest_textured_mesh_run(capture)
    if name is None:
        raise InputError("the capture has no textured mesh yet: process it first (scanbridge process)",
                         capture.root)
    return name


def _mesh_run_dir(capture: CaptureFolder, name: str) -> Path:
    run = capture.runs_dir / name
    if not run.is_dir() or run.is_symlink() or not is_done(run) or TEXTURED_MESH not in run_writes(run):
        raise InputError("not a finished run with a textured mesh in this capture", f"runs/{name}")
    return run


def _views(capture: CaptureFolder, mesh_run: Path, matrix: np.ndarray, long_side: int, count: int) -> list:
    """Up to ``count`` of the capture's posed frames, evenly spread, moved into the mesh's placed frame
    (placed = s R p + t) at the working size."""
    from generation.restyle.asset import AssetView
    from generation.restyle.frames import working_size
    from recon.posed import load_posed_frames

    try:
        inputs = json.loads((mesh_run / "config.json").read_text()).get("inputs", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        inputs = {}
    poses = inputs.get("poses") if isinstance(inputs, dict) else None
    poses_run = Path(poses) if isinstance(poses, str) else None
    if poses_run is not None and not poses_run.resolve().is_relative_to(capture.runs_dir.resolve()):
        poses_run = None
    frames = load_posed_frames(capture, poses_run)
    if len(frames) > count:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, count).round().astype(int)]
    scale = float(np.cbrt(np.linalg.det(matrix[:3, :3])))
    rotation = matrix[:3, :3] / scale
    views = []
    for f in frames:
        w, h = working_size(f.camera.width, f.camera.height, long_side)
        c2w = np.eye(4)
        c2w[:3, :3] = rotation @ f.c2w[:3, :3]
        c2w[:3, 3] = matrix[:3, :3] @ f.c2w[:3, 3] + matrix[:3, 3]
        views.append(AssetView(f.frame_id, f.camera.scaled(w, h), c2w))
    return views


def run_restyle_asset(ctx: StageContext, config: RestyleAssetConfig) -> dict[str, Any]:
    from dataclasses import replace

    from generation.models.presets import PRESETS
    from generation.restyle.asset import restyle_texture
    from generation.restyle.stage import load_for_stage, read_reference
    from recon.export.check import check_usdz
    from recon.export.glb import write_glb
    from recon.export.mesh_data import TexturedMesh
    from recon.export.stage import model_size
    from recon.export.usdz import write_usdz
    from recon.mesh.io import write_textured_npz
    from recon.mesh.stage import load_result

    check_asset_config(config)
    settings = engine_settings(config.restyle_config())
    size = config.size or PRESETS[config.preset].size
    mesh_run = _mesh_run_dir(ctx.capture, config.mesh_run)
    mesh, placement = load_result(mesh_run)
    matrix = np.array(placement.get("matrix", np.eye(4).tolist()), np.float64)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)) or np.linalg.det(matrix[:3, :3]) < 1e-12:
        raise InputError("placement matrix is not a 4x4 similarity transform", mesh_run / "placement.json")
    views = _views(ctx.capture, mesh_run, matrix, size, config.views)
    registry = model_registry(ctx.capture, config.allow_download)
    restyle_config = config.restyle_config()
    models = resolve_models(restyle_config, registry)
    for line in licence_ledger(ctx.capture).notices_to_show(models.values()):
        ctx.progress.warning(line)
    pipe, runtime = load_for_stage(ctx, restyle_config, models, registry, settings, size,
                                   len(views) * config.rounds)
    settings = replace(settings, batch=runtime.batch)
    reference = read_reference(ctx.capture, config.image) if config.image else None
    result = restyle_texture(pipe, mesh, views, settings, rounds=config.rounds, reference=reference,
                             texture_size=config.texture_size, progress=ctx.progress.sub(0.05, 0.9),
                             cancel=ctx.cancel)
    restyled = TexturedMesh(mesh.vertices, mesh.faces, mesh.uvs, result.texture, mesh.normals)
    write_textured_npz(ctx.out_dir / "textured.npz", restyled)
    atomic_write_json(ctx.out_dir / "placement.json", {**placement, "restyled_from": mesh_run.name})
    ctx.progress.update(0.92, "writing the AR asset")
    try:
        detail = json.loads((mesh_run / "config.json").read_text())["config"]["detail"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        detail = "medium"
    stem = ASSET_PREFIX + config.name
    size_info = model_size(restyled, placement)
    files = {"usdz": f"{stem}.usdz", "poster": f"{stem}-poster.png", "glb": f"{stem}.glb"}
    write_usdz(restyled, ctx.out_dir / files["usdz"], poster=ctx.out_dir / files["poster"],
               name=stem.replace("-", "_"), preset=detail if isinstance(detail, str) else "medium",
               metadata=size_info)
    write_glb(restyled, ctx.out_dir / files["glb"], name=stem, extras=size_info)
    check: dict[str, Any] = {"ran": False}
    if config.check:
        try:
            report = check_usdz(ctx.out_dir / files["usdz"])
        except ConfigError as e:
            ctx.progress.warning(f"USDZ not checked: {e}")
            check = {"ran": False, "why": str(e)}
        else:
            if not report.passed:
                raise StageError("the restyled USDZ failed the ARKit compliance check: "
                                 + report.summary()[:2000])
            check = {"ran": True, "errors": [], "warnings": [], "failed_checks": []}
            ctx.progress.log("restyled USDZ passes the ARKit compliance check")
    return {
        "files": files, "asset": stem, "restyled_from": mesh_run.name, "views": len(views),
        "rounds": config.rounds, "view_disagreement": [round(x, 3) for x in result.disagreement],
        "coverage": round(result.coverage, 4), "texture": list(result.texture.shape[:2]),
        "runtime": runtime.why, "arkit_check": check, **size_info,
    }


STAGE = StageSpec(
    name="restyle-asset", config_cls=RestyleAssetConfig, run=run_restyle_asset, version=1,
    writes=(TEXTURED_MESH, EXPORTS), reads=(), capture_reads=(CAPTURE_FRAMES,),
    description="restyle a textured mesh's texture consistently across the capture's views into a new "
                "USDZ/GLB (render, edit, re-bake)",
)
