"""The ``mesh`` stage: raw mesh -> cropped, cleaned, decimated, placed, UV-mapped and textured.

Reads mesh.ply from the run wired to its ``raw_mesh`` port (one of ``fusion``, ``mvs``, ``surface``,
``splat``, ``nerf``), the
posed photos from ``poses`` (poses.json) when given, else capture.json. Writes into its run
folder: textured.npz (recon.export TexturedMesh arrays; read it with :func:`load_result`),
model.obj + model.mtl + model_basecolor.png, and placement.json (scale status and transform).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, InputError
from core.fsio import atomic_write_json
from core.ports import POSED_IMAGES, RAW_MESH, TEXTURED_MESH, Port
from core.stages import StageContext, StageSpec
from recon.export.mesh_data import TexturedMesh
from recon.export.obj import write_obj
from recon.export.presets import triangle_budget
from recon.mesh.aruco import aruco_dictionary, marker_scale
from recon.mesh.bake import bake_texture, bake_vertex_colors
from recon.mesh.clean import clean_mesh
from recon.mesh.crop import Box, crop_to_object, look_at_center
from recon.mesh.decimate import decimate
from recon.mesh.io import read_mesh_ply, read_textured_npz, write_textured_npz
from recon.mesh.isolate import find_support_plane, isolate_object
from recon.mesh.placement import (
    DEFAULT_LONGEST_SIDE_M,
    ESTIMATED,
    UP_CHOICES,
    floor_height,
    place,
    resolve_up,
    size_scale,
)
from recon.mesh.types import Mesh
from recon.mesh.uv import unwrap
from recon.mesh.views import PosedView, load_views, pose_only_views

MESH_SOURCES = ("fusion", "mvs", "surface", "splat", "nerf", "mcc")
RAW_MESH_PORT = "raw_mesh"  # the input port the job wires to one of them
RAW_MESH_FILE = "mesh.ply"
RESULT_FILE = "textured.npz"
PLACEMENT_FILE = "placement.json"
OBJ_FILE = "model.obj"
MAX_LENGTH_M = 1000.0


@dataclass(frozen=True)
class MeshStageConfig:
    detail: str = "medium"  # preview (25k), reduced (50k), medium (100k), full (250k triangles)
    texture_size: int = 2048
    crop: str = "auto"  # auto (what the cameras look at) | box (crop_box) | none
    crop_box: tuple[float, ...] | None = None  # [xmin, ymin, zmin, xmax, ymax, zmax], capture world
    min_component_fraction: float = 0.1  # of the largest component's triangles
    max_hole_fraction: float = 0.05  # of the bounding-box diagonal; 0 leaves holes open
    up: str = "auto"  # auto | cameras | +x -x +y -y +z -z (capture-world axis)
    marker_dictionary: str = "DICT_4X4_50"
    marker_size_m: float = 0.10  # the printed marker's black square edge
    real_size_m: float | None = None  # the user's longest side in metres: wins over any other scale
    estimated_size_m: float = DEFAULT_LONGEST_SIDE_M  # longest side when nothing gives the scale
    top_k_views: int = 3
    max_views: int = 60
    max_image_side: int = 2048

    def __post_init__(self) -> None:
        triangle_budget(self.detail)
        if self.texture_size < 64 or self.texture_size > 8192:
            raise ConfigError(f"must be 64..8192, got {self.texture_size}", "mesh.texture_size")
        if self.crop not in ("auto", "box", "none"):
            raise ConfigError(f"must be auto, box or none, got {self.crop!r}", "mesh.crop")
        if self.crop == "box" and self.crop_box is None:
            raise ConfigError("crop is 'box' but no crop_box was given", "mesh.crop_box")
        if self.crop_box is not None:
            try:
                Box.from_list(list(self.crop_box), "mesh.crop_box")
            except (InputError, TypeError, ValueError) as e:
                raise ConfigError(getattr(e, "reason", str(e)), "mesh.crop_box") from None
        if self.up not in UP_CHOICES:
            raise ConfigError(f"must be one of {', '.join(UP_CHOICES)}, got {self.up!r}", "mesh.up")
        aruco_dictionary(self.marker_dictionary)
        _check_length(self.marker_size_m, "mesh.marker_size_m")
        if self.real_size_m is not None:
            _check_length(self.real_size_m, "mesh.real_size_m")
        _check_length(self.estimated_size_m, "mesh.estimated_size_m")
        if not 0 < self.min_component_fraction <= 1:
            raise ConfigError("must be in (0, 1]", "mesh.min_component_fraction")
        if self.top_k_views < 1:
            raise ConfigError("must be at least 1", "mesh.top_k_views")


def _check_length(value: object, where: str) -> None:
    """A length in metres a person could mean: positive, finite, at most a kilometre."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_LENGTH_M:
        raise ConfigError(f"expected a length in metres between 0 and {MAX_LENGTH_M:g}, got {value!r}", where)


def _raw_mesh_path(inputs: dict[str, Path]) -> Path:
    for name in (RAW_MESH_PORT, *MESH_SOURCES):
        if name in inputs:
            path = Path(inputs[name]) / RAW_MESH_FILE
            if not path.is_file():
                raise InputError(f"the {name} run has no {RAW_MESH_FILE}", path)
            return path
    raise ConfigError(f"needs the output of one of {', '.join(MESH_SOURCES)} first", "mesh")


def _poses_scale(poses_run: Path | None) -> str | None:
    if poses_run is None:
        return None
    try:
        value = json.loads((Path(poses_run) / "poses.json").read_text()).get("scale")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return value if value in ("metric", "unscaled") else None


def _scene_size(cameras: list[PosedView], mesh: Mesh) -> float:
    """A length for tolerances: the median camera distance to the mesh's centre."""
    centre = 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))
    if not cameras:
        return float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    return float(np.median([np.linalg.norm(v.center - centre) for v in cameras]))


def run(ctx: StageContext, config: MeshStageConfig) -> dict[str, Any]:
    inputs = dict(ctx.inputs)
    raw_path = _raw_mesh_path(inputs)
    manifest = ctx.capture.load()
    poses_run = inputs.get("poses")
    progress = ctx.progress

    raw = read_mesh_ply(raw_path)
    views = load_views(ctx.capture, poses_run, config.max_image_side, config.max_views)
    progress.update(0.05, f"read {raw.n_faces} triangles and {len(views)} posed photos")
    cameras = views or pose_only_views(ctx.capture, poses_run)  # for crop and placement

    up, up_source = resolve_up(config.up, cameras, manifest.source.get("kind"), manifest.mode)
    from recon.ingest.object_capture import gravity_up  # an Object Capture folder's measured gravity

    measured_up = gravity_up(config.up, {v.id: v.c2w for v in cameras}, manifest.source)
    if measured_up is not None:
        up, up_source = measured_up, "gravity"
    support = find_support_plane(raw, up, _scene_size(cameras, raw), below=look_at_center(cameras))
    isolation_note = None
    if config.crop == "none":
        cropped, box = raw, None
    else:
        user_box = Box.from_list(list(config.crop_box), "mesh.crop_box") if config.crop_box else None
        cropped, box = crop_to_object(raw, cameras, user_box)
        if box is None:
            progress.warning("could not tell where the cameras look; the mesh was not cropped")
        elif user_box is None and not any(v.mask is not None for v in cameras):
            isolation = isolate_object(cropped, cameras, up, support)  # no masks: cut the ground away
            cropped, isolation_note = isolation.mesh, isolation.note
            progress.log(f"isolated the object: {isolation.note}")
    ctx.cancel.check()
    cleaned = clean_mesh(cropped, config.min_component_fraction, config.max_hole_fraction)
    progress.update(0.15, f"cleaned: {cleaned.n_faces} triangles")
    ctx.cancel.check()
    budget = triangle_budget(config.detail)
    simplified = decimate(cleaned, budget)
    progress.update(0.3, f"decimated to {simplified.n_faces} triangles (budget {budget})")
    ctx.cancel.check()

    scale_status = _poses_scale(poses_run) or manifest.scale
    metres_per_unit: float | None = 1.0 if scale_status == "metric" else None
    marker = None
    if config.real_size_m is not None:
        scale_status, metres_per_unit = "user", size_scale(simplified, up, cameras, config.real_size_m)
        progress.log(f"scaled to the real size given: longest side {config.real_size_m:g} m")
    elif scale_status != "metric":
        marker = marker_scale(views, config.marker_size_m, config.marker_dictionary)
        if marker is not None:
            scale_status, metres_per_unit = "aruco", marker.metres_per_unit
            progress.log(f"scale from ArUco marker {marker.marker_id} in {marker.n_views} photos")
        else:
            scale_status = ESTIMATED
            metres_per_unit = size_scale(simplified, up, cameras, config.estimated_size_m)
            progress.warning(
                f"the real size is unknown (no metric poses, no {config.marker_dictionary} marker seen): the "
                f"model's longest side is set to {config.estimated_size_m:g} m as an estimate; "
                "give the real size (scanbridge process --size METRES) to fix it")
    floor = None if support is None else floor_height(support, up, simplified)
    placement = place(simplified, up, cameras, scale_status, metres_per_unit, up_source, floor)

    uv_mesh = unwrap(simplified, config.texture_size, progress=progress.sub(0.3, 0.55), cancel=ctx.cancel)
    progress.update(0.55, f"unwrapped into an atlas of {len(uv_mesh.vertices)} vertices")
    ctx.cancel.check()
    if views:
        baked = bake_texture(uv_mesh, views, config.texture_size, config.top_k_views,
                             progress=progress.sub(0.55, 0.95), cancel=ctx.cancel)
        colour_source = "photos"
    else:
        has_colours = simplified.vertex_colors is not None
        colour_source = "vertex colours" if has_colours else "none (grey)"
        progress.warning(f"no colour photos: the texture comes from {colour_source}")
        baked = bake_vertex_colors(uv_mesh, simplified.vertex_colors, config.texture_size)
    m = placement.matrix
    placed = TexturedMesh((baked.vertices.astype(np.float64) @ m[:3, :3].T + m[:3, 3]),
                          baked.faces, baked.uvs, baked.texture)

    write_textured_npz(ctx.out_dir / RESULT_FILE, placed)
    write_obj(placed, ctx.out_dir / OBJ_FILE, name=manifest.name)
    bounds = placed.bounds()
    longest_m = float(np.max(bounds[1] - bounds[0]))
    placement_json = {
        **placement.to_json(),
        "marker": None if marker is None else {
            "id": marker.marker_id, "views": marker.n_views, "size_m": config.marker_size_m,
            "dictionary": config.marker_dictionary, "edge_spread": round(marker.edge_spread, 4),
        },
        "crop_box": None if box is None else [*box.lo.tolist(), *box.hi.tolist()],
        "isolation": isolation_note,
        "floor": "support plane" if floor is not None else "lowest point",
        "longest_side_m": round(longest_m, 5),
        "estimated_size_m": config.estimated_size_m if scale_status == ESTIMATED else None,
        "note": "matrix maps the capture's world (its poses) to the model: y up, on y = 0, in metres; "
                "with scale 'estimated' the size is a guess (longest side estimated_size_m)",
    }
    atomic_write_json(ctx.out_dir / PLACEMENT_FILE, placement_json)
    return {
        "source_mesh": str(raw_path),
        "triangles_in": raw.n_faces,
        "triangles_cleaned": cleaned.n_faces,
        "triangles": placed.face_count,
        "budget": budget,
        "detail": config.detail,
        "texture_size": config.texture_size,
        "views": len(views),
        "isolation": isolation_note,
        "colour_source": colour_source,
        "scale": scale_status,
        "metres_per_unit": metres_per_unit,
        "size_estimated": scale_status == ESTIMATED,
        "longest_side_m": round(longest_m, 5),
        "extent": [round(float(x), 5) for x in bounds[1] - bounds[0]],
        "files": [RESULT_FILE, OBJ_FILE, "model.mtl", "model_basecolor.png", PLACEMENT_FILE],
    }


def load_result(run_dir: Path) -> tuple[TexturedMesh, dict[str, Any]]:
    """The textured mesh and the placement record of a finished mesh run."""
    mesh = read_textured_npz(Path(run_dir) / RESULT_FILE)
    try:
        placement = json.loads((Path(run_dir) / PLACEMENT_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read: {e}", Path(run_dir) / PLACEMENT_FILE) from None
    return mesh, placement


STAGE = StageSpec(
    name="mesh",
    config_cls=MeshStageConfig,
    run=run,
    # 2: an unknown scale becomes an estimated size (longest side 30 cm), flagged
    # 3: without masks the object is isolated (support plane cut); the floor is the support plane
    version=3,
    reads=(Port("raw_mesh", RAW_MESH, description=f"the raw mesh of one of {', '.join(MESH_SOURCES)}"),
           Port("poses", POSED_IMAGES, optional=True)),
    writes=(TEXTURED_MESH,),
    description="crop, clean, decimate, place (Y-up, on the ground, metric) and texture the raw mesh",
)
