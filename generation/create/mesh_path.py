"""A generated raw mesh to the files a mesh run holds, through recon's own steps: clean, decimate
to the AR budget, UV-unwrap, bake the vertex colours into a texture, place it y-up on y = 0 at the
height the user asked for. The export stage then reads it like any mesh run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ReconstructionError
from core.fsio import atomic_write_json
from core.progress import CancelToken, Progress
from recon.export.mesh_data import TexturedMesh, area_weighted_normals
from recon.export.obj import write_obj
from recon.export.presets import triangle_budget
from recon.fusion.ply import write_mesh_ply
from recon.mesh.bake import bake_vertex_colors
from recon.mesh.clean import clean_mesh
from recon.mesh.decimate import decimate
from recon.mesh.io import write_textured_npz
from recon.mesh.placement import place
from recon.mesh.types import Mesh
from recon.mesh.uv import unwrap

RESULT_FILE = "textured.npz"  # the names a mesh run uses (recon.mesh.stage), so export and video read it
PLACEMENT_FILE = "placement.json"
OBJ_FILE = "model.obj"
RAW_FILE = "mesh.ply"
UP = np.array([0.0, 1.0, 0.0])


def finish_mesh(raw: Mesh, out_dir: Path, *, height_m: float, detail: str, texture_size: int, name: str,
                progress: Progress, cancel: CancelToken) -> dict[str, Any]:
    """Write textured.npz, model.obj (+ .mtl, texture), mesh.ply and placement.json for ``raw`` (y-up)."""
    colours = None if raw.vertex_colors is None else np.rint(raw.vertex_colors * 255).astype(np.uint8)
    write_mesh_ply(out_dir / RAW_FILE, raw.vertices, raw.faces,
                   area_weighted_normals(raw.vertices, raw.faces), colours)
    cleaned = clean_mesh(raw)
    cancel.check()
    simplified = decimate(cleaned, triangle_budget(detail))
    progress.update(0.2, f"cleaned and decimated: {simplified.n_faces} triangles")
    height = float(np.ptp(simplified.vertices[:, 1]))
    if simplified.n_faces == 0 or height <= 0:
        raise ReconstructionError("the generated shape is flat or empty after cleaning", "create")
    placement = place(simplified, UP, [], "user", height_m / height, "generated (y-up)")
    uv_mesh = unwrap(simplified, texture_size, progress=progress.sub(0.2, 0.7), cancel=cancel)
    cancel.check()
    baked = bake_vertex_colors(uv_mesh, simplified.vertex_colors, texture_size)
    m = placement.matrix
    placed = TexturedMesh(baked.vertices.astype(np.float64) @ m[:3, :3].T + m[:3, 3], baked.faces,
                          baked.uvs, baked.texture)
    write_textured_npz(out_dir / RESULT_FILE, placed)
    write_obj(placed, out_dir / OBJ_FILE, name=name)
    lo, hi = placed.bounds()
    atomic_write_json(out_dir / PLACEMENT_FILE, {
        **placement.to_json(), "longest_side_m": round(float(np.max(hi - lo)), 5), "height_m": height_m,
        "note": "matrix maps the generated shape (y-up, Shap-E units) to the model: on y = 0, in metres",
    })
    progress.update(0.95, f"textured {placed.face_count} triangles, {height_m:g} m tall")
    return {"triangles_in": raw.n_faces, "triangles": placed.face_count, "height_m": height_m,
            "extent": [round(float(x), 5) for x in hi - lo], "scale": placement.scale_status,
            "files": [RESULT_FILE, OBJ_FILE, "model.mtl", "model_basecolor.png", PLACEMENT_FILE, RAW_FILE]}
