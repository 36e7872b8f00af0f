"""Quadric decimation to a detail preset's triangle budget (never above it)."""

from __future__ import annotations

from core.errors import ConfigError
from recon.mesh.clean import from_open3d, to_open3d
from recon.mesh.types import Mesh

# Modelled on Apple's Object Capture detail levels.
DETAIL_BUDGETS: dict[str, int] = {"preview": 25_000, "reduced": 50_000, "medium": 100_000, "full": 250_000}


def budget_for(detail: str) -> int:
    try:
        return DETAIL_BUDGETS[detail]
    except KeyError:
        raise ConfigError(f"unknown detail preset (known: {', '.join(DETAIL_BUDGETS)})", "detail") from None


def decimate(mesh: Mesh, max_faces: int) -> Mesh:
    """Quadric-error decimation to at most ``max_faces`` triangles; a mesh already within the
    budget is returned as it is."""
    if max_faces < 4:
        raise ConfigError(f"a triangle budget must be at least 4, got {max_faces}", "max_faces")
    if mesh.n_faces <= max_faces:
        return mesh
    m = to_open3d(mesh)
    target = max_faces
    for _ in range(5):  # open3d lands on the target in practice; shrink it if it ever does not
        out = m.simplify_quadric_decimation(target_number_of_triangles=target)
        out.remove_degenerate_triangles()
        out.remove_unreferenced_vertices()
        if len(out.triangles) <= max_faces:
            return from_open3d(out)
        target = int(target * 0.95)
    raise RuntimeError(f"decimation did not reach {max_faces} triangles")  # pragma: no cover
