"""Bad meshes give one clear error naming the field, and nothing is written to exports/."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError, InputError
from recon.export import FORMATS, TexturedMesh, check_usdz, export, write_exports
from recon.export.samples import checker_texture, uv_sphere


@pytest.fixture(autouse=True)
def _every_usdz_written_is_ar_ready(tmp_path):
    yield
    for path in sorted(tmp_path.rglob("*.usdz")):
        report = check_usdz(path)
        assert report.passed, f"{path}: {report.summary()}"


def _good():
    return uv_sphere(rows=4, cols=8, texture=checker_texture(16, 16))


def _fields(**override):
    m = _good()
    fields = {"vertices": m.vertices, "faces": m.faces, "uvs": m.uvs, "texture": m.texture}
    fields.update(override)
    return fields


BAD = {
    "empty": (_fields(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), int)), "mesh.faces", "empty"),
    "nan-vertices": (_fields(vertices=np.where(np.arange(_good().vertex_count)[:, None] == 3, np.nan,
                                               _good().vertices)), "mesh.vertices", "NaN"),
    "grey-texture": (_fields(texture=np.zeros((16, 16), np.uint8)), "mesh.texture", r"\(H, W, 3\)"),
    "rgba-texture": (_fields(texture=np.zeros((16, 16, 4), np.uint8)), "mesh.texture", r"\(H, W, 3\)"),
    "float-texture": (_fields(texture=np.zeros((16, 16, 3), np.float32)), "mesh.texture", "uint8"),
    "no-uvs": (_fields(uvs=None), "mesh.uvs", "missing"),
    "uvs-wrong-length": (_fields(uvs=np.zeros((5, 2))), "mesh.uvs", "shape"),
    "face-index-out-of-range": (_fields(faces=_good().faces + 1000), "mesh.faces", "indices"),
    "quads": (_fields(faces=np.zeros((4, 4), int)), "mesh.faces", r"\(M, 3\)"),
    "float-faces": (_fields(faces=_good().faces.astype(float)), "mesh.faces", "integer"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_constructing_a_bad_mesh_names_the_field(case):
    fields, where, message = BAD[case]
    with pytest.raises(InputError, match=message) as err:
        TexturedMesh(**fields)
    assert err.value.where == where
    assert str(err.value).startswith(f"{where}: ")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("corruption", ["nan-vertex", "texture-reshaped", "uvs-dropped", "inf-uv"])
def test_a_mesh_broken_after_construction_is_refused_by_every_writer(tmp_path, fmt, corruption):
    mesh = _good()
    if corruption == "nan-vertex":
        mesh.vertices[2, 1] = np.nan
        where = "mesh.vertices"
    elif corruption == "texture-reshaped":
        object.__setattr__(mesh, "texture", mesh.texture[..., 0])
        where = "mesh.texture"
    elif corruption == "uvs-dropped":
        object.__setattr__(mesh, "uvs", np.zeros((0, 2), np.float32))
        where = "mesh.uvs"
    else:
        mesh.uvs[0, 0] = np.inf
        where = "mesh.uvs"
    exports = tmp_path / "exports"
    exports.mkdir()
    with pytest.raises(InputError) as err:
        export(mesh, exports / f"model.{fmt}")
    assert err.value.where == where
    assert list(exports.iterdir()) == []


def test_write_exports_validates_everything_before_writing_anything(tmp_path):
    mesh = _good()
    mesh.vertices[0, 0] = np.nan
    exports = tmp_path / "exports"
    exports.mkdir()
    with pytest.raises(InputError, match="mesh.vertices"):
        write_exports(mesh, exports, formats=("glb", "usdz"))
    assert list(exports.iterdir()) == []
    with pytest.raises(ConfigError, match="formats"):
        write_exports(_good(), exports, formats=("glb", "fbx"))
    assert list(exports.iterdir()) == []


def test_existing_exports_survive_a_failed_export(tmp_path):
    exports = tmp_path / "exports"
    first = write_exports(_good(), exports, formats=("usdz", "glb"))
    before = {p.name: p.read_bytes() for p in exports.iterdir()}
    broken = _good()
    broken.vertices[1] = np.nan
    with pytest.raises(InputError):
        write_exports(broken, exports, formats=("usdz", "glb"))
    assert {p.name: p.read_bytes() for p in exports.iterdir()} == before
    assert set(first) == {"usdz", "glb", "poster"}
