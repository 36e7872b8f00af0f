"""Export benchmark: a 250k-triangle textured mesh (2048² texture) to USDZ and GLB.

Side by side with baselines on the same machine and the same mesh:
- trimesh's own GLB export (trimesh.Trimesh(...).export(file_type="glb")),
- a naive OpenUSD path: attributes authored from Python lists of Gf values and packaged with
  UsdUtils.CreateNewARKitUsdzPackage (what a first script usually does).
Also OBJ+MTL+PNG and PLY. Prints a table of median wall time and CPU time (the machine may be
shared: CPU time is the steadier figure), file size, and whether the ARKit checker passes each USDZ.

    .venv/bin/python bench/export.py [--repeats 3] [--rows 250 --cols 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trimesh
from PIL import Image
from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, UsdUtils

from recon.export import TexturedMesh, check_usdz, write_glb, write_obj, write_ply, write_usdz
from recon.export.poster import render_poster_png
from recon.export.samples import checker_texture, uv_sphere


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median (wall s, CPU s) over ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def trimesh_glb(mesh: TexturedMesh, path: Path) -> None:
    visual = trimesh.visual.TextureVisuals(uv=mesh.uvs, image=Image.fromarray(mesh.texture))
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, visual=visual, process=False)
    path.write_bytes(tm.export(file_type="glb"))


def naive_usdz(mesh: TexturedMesh, path: Path, work: Path) -> None:
    """The straightforward pxr script: Python lists of Gf values, then CreateNewARKitUsdzPackage."""
    Image.fromarray(mesh.texture).save(work / "tex.png")
    layer = work / "naive.usdc"
    stage = Usd.Stage.CreateNew(str(layer))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/Model")
    stage.SetDefaultPrim(root.GetPrim())
    m = UsdGeom.Mesh.Define(stage, "/Model/mesh")
    m.CreatePointsAttr([Gf.Vec3f(*map(float, p)) for p in mesh.vertices])
    m.CreateFaceVertexCountsAttr([3] * mesh.face_count)
    m.CreateFaceVertexIndicesAttr([int(i) for i in mesh.faces.ravel()])
    m.CreateNormalsAttr([Gf.Vec3f(*map(float, n)) for n in mesh.vertex_normals()])
    m.SetNormalsInterpolation("vertex")
    m.CreateSubdivisionSchemeAttr("none")
    m.CreateExtentAttr(UsdGeom.PointBased.ComputeExtent(m.GetPointsAttr().Get()))
    st = UsdGeom.PrimvarsAPI(m).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, "vertex")
    st.Set([Gf.Vec2f(*map(float, uv)) for uv in mesh.uvs])
    mat = UsdShade.Material.Define(stage, "/Model/mat")
    pbr = UsdShade.Shader.Define(stage, "/Model/mat/pbr")
    pbr.CreateIdAttr("UsdPreviewSurface")
    mat.CreateSurfaceOutput().ConnectToSource(pbr.ConnectableAPI(), "surface")
    reader = UsdShade.Shader.Define(stage, "/Model/mat/st")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
    reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)
    tex = UsdShade.Shader.Define(stage, "/Model/mat/tex")
    tex.CreateIdAttr("UsdUVTexture")
    tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set("tex.png")
    tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
    tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    pbr.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(tex.ConnectableAPI(), "rgb")
    UsdShade.MaterialBindingAPI.Apply(m.GetPrim()).Bind(mat)
    stage.GetRootLayer().Save()
    UsdUtils.CreateNewARKitUsdzPackage(Sdf.AssetPath(str(layer)), str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=250)
    parser.add_argument("--cols", type=int, default=500)
    parser.add_argument("--texture", type=int, default=2048)
    args = parser.parse_args()

    # noise makes the texture compress like a photo-baked one rather than flat colour.
    texture = checker_texture(args.texture, args.texture, noise=0.15)
    mesh = uv_sphere(radius=0.3, rows=args.rows, cols=args.cols, texture=texture)
    print(f"mesh: {mesh.face_count:,} triangles, {mesh.vertex_count:,} vertices, "
          f"texture {texture.shape[1]}x{texture.shape[0]}; median of {args.repeats} runs\n")

    rows: list[tuple[str, float, float, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        out = Path(tmp)

        def add(label: str, fn: Callable[[], object], path: Path | None = None, check: bool = False) -> None:
            wall, cpu = timed(fn, args.repeats)
            size = f"{path.stat().st_size / 1e6:.1f}" if path is not None else "-"
            verdict = "-"
            if check and path is not None:
                report = check_usdz(path)
                verdict = "pass" if report.passed else f"FAIL ({len(report.failed_checks)} checks)"
            rows.append((label, wall, cpu, size, verdict))

        usdz_png, usdz_jpg, glb = out / "png.usdz", out / "jpg.usdz", out / "model.glb"
        add("ScanBridge write_usdz (PNG texture)", lambda: write_usdz(mesh, usdz_png), usdz_png, True)
        add("ScanBridge write_usdz (JPEG texture)",
            lambda: write_usdz(mesh, usdz_jpg, texture_format="jpg"), usdz_jpg, True)
        add("ScanBridge poster.png (512², 2x SSAA)", lambda: render_poster_png(mesh))
        add("ScanBridge write_usdz + poster",
            lambda: write_usdz(mesh, usdz_png, poster=out / "poster.png"), usdz_png)
        add("ARKit compliance check (check_usdz)", lambda: check_usdz(usdz_png))
        naive = out / "naive.usdz"
        work = out / "naive"
        work.mkdir()
        add("baseline: naive pxr lists + CreateNewARKitUsdzPackage",
            lambda: naive_usdz(mesh, naive, work), naive, True)
        add("ScanBridge write_glb (PNG texture)", lambda: write_glb(mesh, glb), glb)
        tglb = out / "trimesh.glb"
        add("baseline: trimesh GLB export", lambda: trimesh_glb(mesh, tglb), tglb)
        obj, ply = out / "model.obj", out / "model.ply"
        add("ScanBridge write_obj (+ .mtl + PNG)", lambda: write_obj(mesh, obj), obj)
        add("ScanBridge write_ply (vertex colours)", lambda: write_ply(mesh, ply), ply)

    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'wall s':>7}  {'CPU s':>7}  {'MB':>6}  ARKit check")
    for label, wall, cpu, size, verdict in rows:
        print(f"{label:<{width}}  {wall:7.2f}  {cpu:7.2f}  {size:>6}  {verdict}")
    goal = rows[0][1]
    print(f"\ngoal: USDZ export of {mesh.face_count:,} triangles under 10 s -> "
          f"{'met' if goal < 10 else 'NOT met'} ({goal:.2f} s wall)")


if __name__ == "__main__":
    main()
