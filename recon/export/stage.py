"""The ``export`` stage: the mesh stage's textured model as USDZ (+ poster), GLB, OBJ and PLY.

Every USDZ is checked by OpenUSD's ARKit compliance checker before the stage succeeds, so a file
that AR Quick Look may refuse is never published. Where the checker is not installed (it comes
with `make setup`), the stage says so in its log and result instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.capture import CaptureFolder
from core.errors import ConfigError, InputError, StageError
from core.fsio import atomic_copy, fsync_dir
from core.ports import EXPORTS, TEXTURED_MESH, Port
from core.stages import StageContext, StageSpec
from recon.export.exporter import FORMATS, write_exports
from recon.export.mesh_data import TexturedMesh
from recon.export.obj import copy_obj
from recon.export.presets import triangle_budget
from recon.export.texture_io import IMAGE_FORMATS, JPEG_QUALITY, check_jpeg_quality, texture_format_name
from recon.export.up_axis import check_up_axis

MESH_RESULT = "textured.npz"
PLACEMENT_FILE = "placement.json"


@dataclass(frozen=True)
class ExportStageConfig:
    formats: tuple[str, ...] = ("usdz", "glb", "obj", "ply")
    detail: str = "medium"  # the triangle budget the file must keep
    name: str = "Model"
    check: bool = True  # run the ARKit compliance checker on the USDZ
    texture_format: str = "png"  # png or jpeg, for USDZ, GLB and OBJ
    texture_quality: int = JPEG_QUALITY  # 1..100, for jpeg
    up: str = "y"  # the up axis of PLY and OBJ (USDZ and GLB are Y up by their specs)

    def __post_init__(self) -> None:
        triangle_budget(self.detail)
        for check, value, field in ((texture_format_name, self.texture_format, "export.texture_format"),
                                    (check_jpeg_quality, self.texture_quality, "export.texture_quality"),
                                    (check_up_axis, self.up, "export.up")):
            try:
                check(value)
            except ConfigError as e:
                raise ConfigError(e.reason, field) from None
        formats = tuple(self.formats)
        bad = [f for f in formats if f not in FORMATS]
        if bad or not formats:
            known = ", ".join(FORMATS)
            raise ConfigError(f"must be some of {known}, got {list(self.formats)}", "export.formats")
        object.__setattr__(self, "formats", formats)


def run(ctx: StageContext, config: ExportStageConfig) -> dict[str, Any]:
    from recon.export.check import check_usdz
    from recon.mesh.io import read_textured_npz

    mesh_run = ctx.inputs.get("mesh")
    if mesh_run is None:
        raise ConfigError("needs the output of mesh first", "export")
    mesh = read_textured_npz(Path(mesh_run) / MESH_RESULT)
    try:
        placement = json.loads((Path(mesh_run) / PLACEMENT_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read: {e}", Path(mesh_run) / PLACEMENT_FILE) from None
    size = model_size(mesh, placement)
    if size["size_estimated"]:
        ctx.progress.warning(f"the model's size is an estimate (longest side {size['longest_side_m']:g} m); "
                             "it is marked so in the files")
    ctx.progress.update(0.1, f"writing {', '.join(config.formats)}")
    written = write_exports(mesh, ctx.out_dir, formats=config.formats, name=config.name, preset=config.detail,
                            metadata=size, texture_format=config.texture_format,
                            texture_quality=config.texture_quality, up=config.up)
    check: dict[str, Any] = {"ran": False}
    if "usdz" in written and config.check:
        try:
            report = check_usdz(written["usdz"])
        except ConfigError as e:
            ctx.progress.warning(f"USDZ not checked: {e}")
            check = {"ran": False, "why": str(e)}
        else:
            check = {"ran": True, "errors": list(report.errors), "warnings": list(report.warnings),
                     "failed_checks": list(report.failed_checks)}
            if not report.passed:
                problems = [*report.errors, *report.warnings, *report.failed_checks]
                raise StageError("the USDZ failed the ARKit compliance check: " + "; ".join(problems)[:2000])
            ctx.progress.log("USDZ passes the ARKit compliance check")
    bounds = mesh.bounds()
    return {
        "files": {fmt: path.name for fmt, path in written.items()},
        "triangles": mesh.face_count,
        "texture": list(mesh.texture.shape[:2]),
        "size_m": [round(float(x), 4) for x in bounds[1] - bounds[0]],
        **size,
        "arkit_check": check,
    }


def model_size(mesh: TexturedMesh, placement: dict[str, Any]) -> dict[str, Any]:
    """What the files say about the model's size: its scale status (metric, aruco, user,
    estimated, unscaled), whether the size is a guess, and its longest side in metres."""
    bounds = mesh.bounds()
    scale = placement.get("scale") if isinstance(placement.get("scale"), str) else "unscaled"
    return {
        "scale": scale,
        "size_estimated": scale in ("estimated", "unscaled"),
        "longest_side_m": round(float((bounds[1] - bounds[0]).max()), 4),
        "units": "metres" if scale != "unscaled" else "unknown units",
    }


def published_names() -> frozenset[str]:
    """Every name a publish may write into exports/ (the export stage's ``model.<format>``, the
    OBJ's material and texture, the USDZ's poster); no other file there is ours."""
    return frozenset({f"model.{fmt}" for fmt in FORMATS} | {"model.mtl", "poster.png"}
                     | {f"model_basecolor.{ext}" for ext in IMAGE_FORMATS})


def remove_stale(exports_dir: Path, kept: set[str]) -> list[str]:
    """Remove our published files in ``exports_dir`` that are not in ``kept`` (an earlier publish's
    formats or texture); the user's own files and anything not a regular file stay. Returns the
    names removed."""
    removed = []
    for name in sorted(published_names() - kept):
        path = exports_dir / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(name)
    if removed:
        fsync_dir(exports_dir)
    return removed


def publish(capture: CaptureFolder, export_run: Path, extra: Path | None = None) -> dict[str, Path]:
    """Copy a finished export run's files into the capture's exports/ (and ``extra``, a file path
    whose suffix picks the format), each through a temporary name, fsync and rename; then remove
    the files an earlier publish left there that this one did not replace (a format or texture
    no longer asked for), so exports/, the share page and the phone show only this model. An
    asset published beside the model (restyled-NAME.usdz) leaves the model's files alone."""
    status = json.loads((export_run / "status.json").read_text())
    if status.get("state") != "done":
        raise StageError("the export run has not finished", export_run)
    published: dict[str, Path] = {}
    written: set[str] = set()
    for fmt, name in status["result"]["files"].items():
        src = export_run / name
        if fmt == "obj":  # the OBJ's material and texture travel with it
            files = copy_obj(src, capture.exports_dir / name)
            published[fmt] = files[-1]
            written.update(f.name for f in files)
        else:
            published[fmt] = atomic_copy(src, capture.exports_dir / name)
            written.add(name)
    if written & published_names():  # the capture's model, not an asset published beside it
        remove_stale(capture.exports_dir, written)
    if extra is not None:
        published["out"] = copy_published(capture, published, extra)
    return published


def copy_published(capture: CaptureFolder, published: dict[str, Path], extra: Path) -> Path:
    """Copy one published file out of exports/ to ``extra`` (its suffix picks which), with the
    USDZ's poster or the OBJ's material and texture beside it."""
    fmt = extra.suffix.lower().lstrip(".")
    if fmt not in published:
        raise ConfigError(f"the export run has no .{fmt} (it wrote {', '.join(published)})", extra)
    if fmt == "obj":  # OUT.obj names OUT.mtl, which names OUT_basecolor.png: nothing shared
        return copy_obj(published[fmt], extra)[-1]
    atomic_copy(published[fmt], extra)
    if fmt == "usdz" and "poster" in published:
        atomic_copy(published["poster"], extra.with_name(extra.stem + "-poster.png"))
    return extra


@dataclass(frozen=True)
class PublishStageConfig:
    """Publishing has no options: it copies what the export run wrote."""


def run_publish(ctx: StageContext, config: PublishStageConfig) -> dict[str, Any]:
    export_run = ctx.inputs.get("export")
    if export_run is None:
        raise ConfigError("needs the output of export first", "publish")
    published = publish(ctx.capture, Path(export_run))
    ctx.progress.log(f"published {', '.join(p.name for p in published.values())} to exports/")
    return {"files": {fmt: path.name for fmt, path in published.items()}}


STAGE = StageSpec(
    name="export", config_cls=ExportStageConfig, run=run, requires=("mesh",),
    reads=(Port("mesh", TEXTURED_MESH),), writes=(EXPORTS,), capture_reads=(),
    description="USDZ for AR Quick Look (checked), GLB, OBJ and PLY from the textured mesh",
)

# The last step of every job that makes a model (recon.methods adds it), whatever queued the job.
PUBLISH_STAGE = StageSpec(
    name="publish", config_cls=PublishStageConfig, run=run_publish, requires=("export",), reuse=False,
    reads=(Port("export", EXPORTS),), capture_reads=(),
    description="copy the export run's files into the capture's exports/ (temporary name, fsync, rename)",
)
