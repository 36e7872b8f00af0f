"""USDZ export: passes OpenUSD's ARKit checker, package layout, metadata, size, budgets, texture limit."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pxr import Usd, UsdGeom, UsdShade

from core.errors import ConfigError, InputError
from recon.export import DETAIL_PRESETS, MAX_TEXTURE_SIZE, check_usdz, inspect_usdz, write_usdz
from recon.export.inspect import package_entries
from recon.export.samples import checker_texture, uv_sphere


def _assert_ar_ready(path):
    """ARKit checker: no errors, no warnings, no failed checks; within the full budget; texture <= 2048²."""
    report = check_usdz(path)
    assert report.errors == () and report.warnings == () and report.failed_checks == (), report.summary()
    assert report.passed
    info = inspect_usdz(path)
    assert 0 < info.triangle_count <= DETAIL_PRESETS["full"]
    with zipfile.ZipFile(path) as zf:
        for name in info.texture_files:
            with zf.open(name) as f:
                assert max(Image.open(f).size) <= MAX_TEXTURE_SIZE
    return info


@pytest.fixture(autouse=True)
def _every_usdz_written_is_ar_ready(tmp_path):
    yield
    for path in sorted(tmp_path.rglob("*.usdz")):
        _assert_ar_ready(path)

@pytest.mark.parametrize("per_corner", [False, True], ids=["vertex-uvs", "corner-uvs"])
@pytest.mark.parametrize("texture_format", ["png", "jpg"])
def test_usdz_passes_arkit_checker_with_no_errors_or_warnings(tmp_path, per_corner, texture_format):
    mesh = uv_sphere(radius=0.15, rows=12, cols=24, per_corner_uvs=per_corner)
    path = write_usdz(mesh, tmp_path / "model.usdz", name="Test Sphere", texture_format=texture_format)
    info = _assert_ar_ready(path)
    assert info.triangle_count == mesh.face_count
    assert info.texture_files == (f"textures/Test_Sphere_basecolor.{texture_format}",)


def test_usdz_package_layout_metadata_and_size(tmp_path):
    mesh = uv_sphere(radius=0.25, rows=10, cols=20)
    path = write_usdz(mesh, tmp_path / "model.usdz", name="Model")
    entries = package_entries(path)
    assert entries[0].name == "Model.usdc"
    assert [e.name for e in entries] == ["Model.usdc", "textures/Model_basecolor.png"]
    assert all(e.stored for e in entries)
    assert all(e.data_offset % 64 == 0 for e in entries)

    info = _assert_ar_ready(path)
    assert info.up_axis == "Y"
    assert info.meters_per_unit == 1.0
    assert info.default_prim == "/Model"
    lo, hi = mesh.bounds()
    np.testing.assert_allclose(info.extent[0], lo, atol=1e-6)
    np.testing.assert_allclose(info.extent[1], hi, atol=1e-6)
    np.testing.assert_allclose(np.subtract(info.extent[1], info.extent[0]), [0.5, 0.5, 0.5], atol=1e-6)

    stage = Usd.Stage.Open(str(path))
    usd_mesh = UsdGeom.Mesh(stage.GetPrimAtPath("/Model/Geom/Model_mesh"))
    np.testing.assert_allclose(np.array(usd_mesh.GetPointsAttr().Get()), mesh.vertices)
    np.testing.assert_array_equal(np.array(usd_mesh.GetFaceVertexIndicesAttr().Get()), mesh.faces.ravel())
    assert usd_mesh.GetSubdivisionSchemeAttr().Get() == "none"
    st = UsdGeom.PrimvarsAPI(usd_mesh).GetPrimvar("st")
    assert st.GetInterpolation() == "vertex"
    np.testing.assert_allclose(np.array(st.Get()), mesh.uvs)
    assert len(usd_mesh.GetNormalsAttr().Get()) == mesh.vertex_count
    material, _ = UsdShade.MaterialBindingAPI(usd_mesh.GetPrim()).ComputeBoundMaterial()
    assert material.GetPath() == "/Model/Materials/Model_material"
    surface = material.ComputeSurfaceSource()[0]
    assert surface.GetShaderId() == "UsdPreviewSurface"
    source, _, _ = surface.GetInput("diffuseColor").GetConnectedSource()
    assert UsdShade.Shader(source.GetPrim()).GetShaderId() == "UsdUVTexture"


def test_corner_uvs_are_face_varying_in_corner_order(tmp_path):
    mesh = uv_sphere(rows=6, cols=12, per_corner_uvs=True)
    path = write_usdz(mesh, tmp_path / "m.usdz")
    stage = Usd.Stage.Open(str(path))
    st = UsdGeom.PrimvarsAPI(stage.GetPrimAtPath("/Model/Geom/Model_mesh")).GetPrimvar("st")
    assert st.GetInterpolation() == "faceVarying"
    np.testing.assert_allclose(np.array(st.Get()), mesh.uvs.reshape(-1, 2))


def test_texture_larger_than_2048_is_downscaled_into_the_package(tmp_path):
    mesh = uv_sphere(rows=6, cols=12, texture=checker_texture(1024, 3000))
    path = write_usdz(mesh, tmp_path / "big.usdz", texture_format="jpg")
    info = _assert_ar_ready(path)
    with zipfile.ZipFile(path) as zf, zf.open(info.texture_files[0]) as f:
        size = Image.open(f).size
    assert max(size) <= 2048
    assert size == (2048, 699)  # aspect kept: 1024 * 2048 / 3000 = 699


@pytest.mark.parametrize("preset", list(DETAIL_PRESETS))
def test_mesh_over_its_preset_budget_is_refused_and_nothing_written(tmp_path, preset):
    budget = DETAIL_PRESETS[preset]
    rows = 40
    cols = budget // (2 * (rows - 1)) + 1  # just over the budget
    mesh = uv_sphere(rows=rows, cols=cols, texture=checker_texture(8, 8))
    assert mesh.face_count > budget
    with pytest.raises(InputError, match="mesh.faces") as err:
        write_usdz(mesh, tmp_path / "model.usdz", preset=preset, poster=tmp_path / "poster.png")
    assert str(budget) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_mesh_within_the_preview_budget_is_written(tmp_path):
    rows = 20
    cols = DETAIL_PRESETS["preview"] // (2 * (rows - 1))
    mesh = uv_sphere(rows=rows, cols=cols, texture=checker_texture(64, 64))
    assert DETAIL_PRESETS["preview"] - 2 * (rows - 1) < mesh.face_count <= DETAIL_PRESETS["preview"]
    path = write_usdz(mesh, tmp_path / "model.usdz", preset="preview")
    assert _assert_ar_ready(path).triangle_count == mesh.face_count


def test_unknown_preset_and_wrong_suffix_are_config_errors(tmp_path):
    mesh = uv_sphere(rows=4, cols=8)
    with pytest.raises(ConfigError, match="preset"):
        write_usdz(mesh, tmp_path / "m.usdz", preset="huge")
    with pytest.raises(ConfigError, match="path"):
        write_usdz(mesh, tmp_path / "m.usda")
    assert list(tmp_path.iterdir()) == []


def test_poster_is_written_beside_the_usdz(tmp_path):
    mesh = uv_sphere(rows=12, cols=24)
    write_usdz(mesh, tmp_path / "model.usdz", poster=tmp_path / "poster.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.usdz", "poster.png"]
    poster = np.asarray(Image.open(tmp_path / "poster.png"))
    assert poster.shape == (512, 512, 4)
    assert poster[256, 256, 3] == 255  # the object fills the middle
    assert poster[0, 0, 3] == 0  # transparent background


def test_rewriting_replaces_the_old_file_whole(tmp_path):
    path = tmp_path / "model.usdz"
    write_usdz(uv_sphere(rows=4, cols=8), path)
    write_usdz(uv_sphere(rows=8, cols=16), path)
    assert inspect_usdz(path).triangle_count == 2 * 16 * 7
    assert [p.name for p in tmp_path.iterdir()] == ["model.usdz"]  # no temp files left behind


APPLE_FRAME = Path("/work/shared/data/co3d-apple-vggsfm/images/frame000007.jpg")


@pytest.mark.skipif(not APPLE_FRAME.is_file(), reason="shared real data not present")
def test_a_real_phone_photo_as_texture_passes(tmp_path):
    """A real, non-square, non-power-of-two phone frame (1066x1896) as the baked texture."""
    photo = np.asarray(Image.open(APPLE_FRAME).convert("RGB"))
    assert photo.shape == (1896, 1066, 3)
    mesh = uv_sphere(rows=12, cols=24, texture=photo)
    for fmt in ("jpg", "png"):
        path = write_usdz(mesh, tmp_path / f"apple_{fmt}.usdz", name="apple", texture_format=fmt)
        info = _assert_ar_ready(path)
        with zipfile.ZipFile(path) as zf, zf.open(info.texture_files[0]) as f:
            assert Image.open(f).size == (1066, 1896)  # within 2048: kept as is
