"""GLB, OBJ+MTL and PLY: re-loaded with trimesh they have the same geometry, uvs and colours."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import trimesh

from core.errors import ConfigError
from recon.export import check_usdz, export, write_exports, write_glb
from recon.export.ply import vertex_colours
from recon.export.samples import uv_sphere
from recon.export.texture_io import sample_texture


@pytest.fixture(autouse=True)
def _every_usdz_written_is_ar_ready(tmp_path):
    yield
    for path in sorted(tmp_path.rglob("*.usdz")):
        report = check_usdz(path)
        assert report.passed, f"{path}: {report.summary()}"


def _corner_colours(texture, corner_uv):
    return sample_texture(np.asarray(texture)[..., :3], corner_uv)  # (M, 3, 3)


@pytest.mark.parametrize("per_corner", [False, True], ids=["vertex-uvs", "corner-uvs"])
@pytest.mark.parametrize("fmt", ["glb", "obj"])
def test_textured_formats_reload_with_same_faces_positions_and_texture_lookup(tmp_path, fmt, per_corner):
    mesh = uv_sphere(radius=0.2, rows=8, cols=16, per_corner_uvs=per_corner)
    path = export(mesh, tmp_path / f"model.{fmt}")
    loaded = trimesh.load(path, force="mesh", process=False)
    assert len(loaded.faces) == mesh.face_count
    # Per-vertex uvs: the same vertices. Per-corner uvs: one vertex per distinct (vertex, uv) pair.
    expected_vertices = mesh.vertex_count if not per_corner else len(mesh.split_at_uv_seams()[0])
    assert len(loaded.vertices) == expected_vertices
    # Corner by corner (face order is kept): same position, and the texture looked up at the
    # re-loaded uv gives the colour the original uv gives (catches flipped or shifted uvs).
    np.testing.assert_allclose(loaded.vertices[loaded.faces], mesh.vertices[mesh.faces], atol=1e-5)
    material = loaded.visual.material
    image = material.baseColorTexture if fmt == "glb" else material.image
    assert image is not None and image.size == (512, 256)
    got = _corner_colours(image, loaded.visual.uv[loaded.faces])
    want = _corner_colours(mesh.texture, mesh.corner_uvs())
    assert np.abs(got - want).max() < 1.0


def test_obj_writes_mtl_and_texture_beside_it(tmp_path):
    export(uv_sphere(rows=4, cols=8), tmp_path / "scan.obj", name="My scan")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.mtl", "scan.obj", "scan_basecolor.png"]
    obj = (tmp_path / "scan.obj").read_text()
    assert "mtllib scan.mtl" in obj and "usemtl My_scan_material" in obj
    assert "map_Kd scan_basecolor.png" in (tmp_path / "scan.mtl").read_text()


@pytest.mark.parametrize("per_corner", [False, True], ids=["vertex-uvs", "corner-uvs"])
def test_ply_keeps_welded_vertices_and_sampled_colours(tmp_path, per_corner):
    mesh = uv_sphere(rows=8, cols=16, per_corner_uvs=per_corner)
    path = export(mesh, tmp_path / "model.ply")
    loaded = trimesh.load(path, process=False)
    assert len(loaded.vertices) == mesh.vertex_count
    assert len(loaded.faces) == mesh.face_count
    np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(loaded.faces, mesh.faces)
    colours = loaded.visual.vertex_colors[:, :3]
    np.testing.assert_array_equal(colours, vertex_colours(mesh))
    assert len(np.unique(colours, axis=0)) > 10  # really sampled from the texture, not one flat colour


def test_glb_is_valid_gltf_binary(tmp_path):
    mesh = uv_sphere(rows=6, cols=12)
    data = write_glb(mesh, tmp_path / "m.glb", texture_format="jpg").read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_len, json_type = struct.unpack_from("<I4s", data, 12)
    assert json_type == b"JSON" and json_len % 4 == 0
    doc = json.loads(data[20:20 + json_len])
    assert doc["images"][0]["mimeType"] == "image/jpeg"
    pos = doc["accessors"][0]
    lo, hi = mesh.bounds()
    np.testing.assert_allclose(pos["min"], lo, atol=1e-6)
    np.testing.assert_allclose(pos["max"], hi, atol=1e-6)
    assert all(v["byteOffset"] % 4 == 0 for v in doc["bufferViews"])


def test_write_exports_fills_the_exports_folder(tmp_path):
    exports = tmp_path / "exports"
    written = write_exports(uv_sphere(rows=6, cols=12), exports, formats=("usdz", "glb", "obj", "ply"))
    assert set(written) == {"usdz", "glb", "obj", "ply", "poster"}
    assert sorted(p.name for p in exports.iterdir()) == [
        "model.glb", "model.mtl", "model.obj", "model.ply", "model.usdz", "model_basecolor.png", "poster.png"]
    assert check_usdz(written["usdz"]).passed


def test_unknown_suffix_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\.fbx"):
        export(uv_sphere(rows=4, cols=8), tmp_path / "model.fbx")
    assert list(tmp_path.iterdir()) == []
