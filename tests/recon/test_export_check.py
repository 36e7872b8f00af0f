"""The ARKit check can fail: broken packages are caught, so a pass in the export tests means something."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image
from pxr import Sdf, Usd, UsdGeom

from core.errors import ConfigError, NotFoundError
from recon.export import check_usdz, write_usdz
from recon.export.check import CHECKER_ENV
from recon.export.samples import uv_sphere
from recon.export.usdz import _write_layer

ELEPHANT = Path("/work/shared/data/usdwg-elephant-usdz/SoC-ElephantWithMonochord.usdz")


def _package(tmp_path: Path, work: Path, names: list[str]) -> Path:
    """Zip ``work/<name>`` for each name, in that order, with USD's own aligned zip writer."""
    out = tmp_path / "package.usdz"
    writer = Sdf.ZipFileWriter.CreateNew(str(out))
    for name in names:
        writer.AddFile(str(work / name), name)
    writer.Save()
    return out


def _layer_with_texture(tmp_path: Path, texture_name: str) -> Path:
    mesh = uv_sphere(rows=4, cols=8)
    work = tmp_path / "work"
    (work / "textures").mkdir(parents=True)
    image = Image.fromarray(mesh.texture)
    image.save(work / texture_name)
    _write_layer(mesh, work / "Model.usdc", "Model", texture_name)
    return work


def _failed_rules(report) -> str:
    return "\n".join(report.failed_checks + report.errors)


def test_a_bmp_texture_fails(tmp_path):
    work = _layer_with_texture(tmp_path, "textures/base.bmp")
    usdz = _package(tmp_path, work, ["Model.usdc", "textures/base.bmp"])
    report = check_usdz(usdz)
    assert not report.passed
    assert "TextureChecker" in _failed_rules(report)
    assert "ARKitFileExtensionChecker" in _failed_rules(report)


def test_texture_before_the_root_layer_fails(tmp_path):
    work = _layer_with_texture(tmp_path, "textures/base.png")
    usdz = _package(tmp_path, work, ["textures/base.png", "Model.usdc"])
    report = check_usdz(usdz)
    assert not report.passed
    assert "ScanBridgePackageLayout" in _failed_rules(report)
    assert "first file is 'textures/base.png'" in _failed_rules(report)


def test_compressed_entries_fail(tmp_path):
    good = write_usdz(uv_sphere(rows=4, cols=8), tmp_path / "good.usdz")
    assert check_usdz(good).passed
    bad = tmp_path / "deflated.usdz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    report = check_usdz(bad)
    assert not report.passed
    assert "'Model.usdc' is compressed" in _failed_rules(report)
    assert any("Failed to open USD stage" in e for e in report.errors)  # USD cannot read it at all


def test_a_stage_without_up_axis_fails(tmp_path):
    work = _layer_with_texture(tmp_path, "textures/base.png")
    layer = Sdf.Layer.FindOrOpen(str(work / "Model.usdc"))
    layer.pseudoRoot.ClearInfo(UsdGeom.Tokens.upAxis)
    layer.Save()
    assert not Usd.Stage.Open(layer).HasAuthoredMetadata(UsdGeom.Tokens.upAxis)
    usdz = _package(tmp_path, work, ["Model.usdc", "textures/base.png"])
    report = check_usdz(usdz)
    assert "StageMetadataChecker" in _failed_rules(report)


def test_the_same_parts_packaged_correctly_pass(tmp_path):
    work = _layer_with_texture(tmp_path, "textures/base.png")
    usdz = _package(tmp_path, work, ["Model.usdc", "textures/base.png"])
    assert check_usdz(usdz).passed, check_usdz(usdz).summary()


@pytest.mark.skipif(not ELEPHANT.is_file(), reason="shared reference data not present")
def test_reference_elephant_usdz_is_reported_not_passed():
    report = check_usdz(ELEPHANT)
    text = _failed_rules(report)
    # Its layout is right (usdc first, stored, aligned) ...
    assert "ScanBridgePackageLayout" not in text
    assert "ByteAlignmentChecker" not in text
    # ... but it carries an mp3 (not allowed in an ARKit package) and float3 inputs where the
    # UsdPreviewSurface definition wants color3f / normal3f.
    assert "ARKitFileExtensionChecker" in text and "Elefant.mp3" in text
    assert "ShaderPropertyTypeConformanceChecker" in text
    assert report.errors == ()
    assert not report.passed


def test_missing_checker_says_run_make_setup(tmp_path, monkeypatch):
    usdz = write_usdz(uv_sphere(rows=4, cols=8), tmp_path / "m.usdz")
    monkeypatch.setenv(CHECKER_ENV, str(tmp_path / "absent" / "complianceChecker.py"))
    with pytest.raises(ConfigError, match="make setup"):
        check_usdz(usdz)
    monkeypatch.undo()
    assert check_usdz(usdz).passed


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="nope.usdz"):
        check_usdz(tmp_path / "nope.usdz")
