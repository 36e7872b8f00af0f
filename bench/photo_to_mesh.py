"""CPU photo-to-mesh benchmark on DTU scan24 (49 photos at 384x384 with calibrated cameras).

Ours: `scanbridge process --method mvs` stage by stage (poses: the calibrated cameras kept and
the sparse points triangulated; mvs: plane-sweep depth + TSDF; mesh: crop, clean, decimate,
unwrap, bake; export: checked USDZ, GLB, OBJ, PLY), each timed.

Baseline, on the same machine: what COLMAP alone gives on a machine without CUDA, where its
PatchMatch stereo does not run: the same triangulated sparse points, meshed by open3d's Poisson
reconstruction (depth 8). Prints a markdown table and writes both posters for a visual check.

    .venv/bin/python bench/photo_to_mesh.py [--out DIR] [--max-image-size 384]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import open3d as o3d

from core.stages import execute_stage
from core.workspace import Workspace
from recon.export.mesh_data import TexturedMesh
from recon.export.poster import render_poster_png
from recon.export.stage import publish
from recon.ingest import ingest

DTU = Path("/work/shared/data/dtu-scan24-monosdf")


def _timed(label: str, fn, rows: list) -> object:
    t = time.perf_counter()
    out = fn()
    rows.append((label, time.perf_counter() - t))
    print(f"{label}: {rows[-1][1]:.1f} s", flush=True)
    return out


def _vertex_colour_poster(mesh: o3d.geometry.TriangleMesh, path: Path) -> None:
    """A poster of a vertex-coloured mesh (each vertex's colour as one texel)."""
    v = np.asarray(mesh.vertices)
    v = (v - v.mean(0)) / np.abs(v - v.mean(0)).max() * 0.2 @ np.diag([1, -1, -1])
    c = np.asarray(mesh.vertex_colors) if mesh.has_vertex_colors() else np.full((len(v), 3), 0.7)
    n = int(np.ceil(np.sqrt(len(v))))
    tex = np.zeros((n, n, 3), np.uint8)
    i = np.arange(len(v))
    tex[i // n, i % n] = (np.clip(c, 0, 1) * 255).astype(np.uint8)
    uv = np.stack([(i % n + 0.5) / n, 1 - (i // n + 0.5) / n], 1)
    path.write_bytes(render_poster_png(TexturedMesh(v, np.asarray(mesh.triangles), uv, tex), 512))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench-p2m-")))
    ap.add_argument("--max-image-size", type=int, default=384)
    args = ap.parse_args()
    ws = Workspace(args.out / "workspace")
    ours: list[tuple[str, float]] = []
    cap = _timed("ingest", lambda: ingest(DTU, ws, name="dtu-scan24"), ours)
    poses = _timed("poses (cameras kept, points triangulated)", lambda: execute_stage(cap, "poses", {}), ours)
    mvs = _timed("mvs (plane sweep + TSDF)", lambda: execute_stage(
        cap, "mvs", {"max_image_size": args.max_image_size}, inputs={"poses": poses.run_dir}), ours)
    mesh = _timed("mesh (crop, clean, decimate, unwrap, bake 2048²)", lambda: execute_stage(
        cap, "mesh", {"detail": "medium"}, inputs={"poses": poses.run_dir, "mvs": mvs.run_dir}), ours)
    export = _timed("export (USDZ checked, GLB, OBJ, PLY)", lambda: execute_stage(
        cap, "export", {"detail": "medium"}, inputs={"mesh": mesh.run_dir}), ours)
    published = publish(cap, export.run_dir)

    base: list[tuple[str, float]] = [("poses (the same run)", ours[1][1])]

    def poisson() -> o3d.geometry.TriangleMesh:
        pcd = o3d.io.read_point_cloud(str(poses.run_dir / "sparse.ply"))
        pcd.estimate_normals()
        pcd.orient_normals_towards_camera_location(np.zeros(3))
        m, _ = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=8)
        return m

    baseline_mesh = _timed("Poisson of the sparse points", poisson, base)
    _vertex_colour_poster(baseline_mesh, args.out / "baseline-poster.png")

    total_ours = sum(s for _, s in ours)
    total_base = sum(s for _, s in base)
    print(f"\nmachine: {platform.platform()}, {platform.machine()}, "
          f"load average {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}")
    print("\n| | step | wall s |\n|---|---|---:|")
    for label, s in ours:
        print(f"| ours | {label} | {s:.1f} |")
    print(f"| ours | **total** | **{total_ours:.1f}** |")
    for label, s in base:
        print(f"| baseline | {label} | {s:.1f} |")
    print(f"| baseline | **total** | **{total_base:.1f}** |")
    print(f"\nours: {mvs.result['depth_samples']} consistent depth samples, {mesh.result['triangles']} "
          f"triangles textured from {mesh.result['views']} views; USDZ {published['usdz']}")
    print(f"ours poster: {published['poster']}")
    print(f"baseline: {len(np.asarray(baseline_mesh.triangles))} triangles from "
          f"{mvs.result and poses.result.get('points')} sparse points, untextured; "
          f"poster {args.out / 'baseline-poster.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
