"""PLY and OBJ up axis (--up y|z), texture format and OBJ side files named after the OBJ."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from plyfile import PlyData

from core.errors import ConfigError
from recon.export import write_exports
from recon.export.mesh_data import TexturedMesh
from recon.export.obj import copy_obj, write_obj
from recon.export.ply import write_ply

HEIGHT, WIDTH, DEPTH = 0.40, 0.10, 0.06  # a tall box, so its height axis is plain to see


def _tall_box() -> TexturedMesh:
    """A closed box standing on y = 0 (Y up), counter-clockwise faces seen from outside, with a
    nub at +z (its front) so front and back can be told apart."""
    box = trimesh.creation.box(extents=(WIDTH, HEIGHT, DEPTH))
    box.apply_translation((0.0, HEIGHT / 2, 0.0))
    nub = trimesh.creation.box(extents=(0.02, 0.02, 0.02))
    nub.apply_translation((0.0, HEIGHT / 2, DEPTH / 2 + 0.01))
    both = trimesh.util.concatenate([box, nub])
    rng = np.random.default_rng(3)
    uvs = rng.random((len(both.vertices), 2)).astype(np.float32)
    texture = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    return TexturedMesh(both.vertices, both.faces, uvs, texture)


def _ply_header_comments(path) -> list[str]:
    return list(PlyData.read(str(path)).comments)


@pytest.mark.parametrize("up", ["y", "z"])
def test_ply_height_runs_along_the_asked_up_axis(tmp_path, up):
    path = write_ply(_tall_box(), tmp_path / "m.ply", up=up)
    assert f"up_axis {up}" in _ply_header_comments(path)
    loaded = trimesh.load(path, process=False)
    lo, hi = loaded.bounds
    axis = "xyz".index(up)
    assert hi[axis] - lo[axis] == pytest.approx(HEIGHT, abs=1e-5)  # the height axis is the up axis
    assert lo[axis] == pytest.approx(0.0, abs=1e-5)  # still standing on the ground
    assert hi[0] - lo[0] == pytest.approx(WIDTH + 0.0, abs=1e-5)
    # A rotation, not a mirror: the faces still wind outwards (positive volume).
    assert loaded.volume > 0
    # Blender's convention for a Y-up file read as Z up: the front (+z) becomes -y.
    nub_tip = loaded.vertices[np.argmax(loaded.vertices @ ([0, 0, 1] if up == "y" else [0, -1, 0]))]
    front = nub_tip[2] if up == "y" else -nub_tip[1]
    assert front == pytest.approx(DEPTH / 2 + 0.02, abs=1e-5)


def test_ply_normals_turn_with_the_mesh(tmp_path):
    def normals(up):
        v = PlyData.read(str(write_ply(_tall_box(), tmp_path / f"{up}.ply", up=up)))["vertex"]
        return np.column_stack([v["nx"], v["ny"], v["nz"]])

    y_up, z_up = normals("y"), normals("z")
    # Y-up (x, y, z) is Z-up (x, -z, y), for directions as for points.
    np.testing.assert_allclose(z_up, np.column_stack([y_up[:, 0], -y_up[:, 2], y_up[:, 1]]), atol=1e-6)


def test_obj_up_z_and_its_header(tmp_path):
    path = write_obj(_tall_box(), tmp_path / "m.obj", up="z")
    assert "# up_axis z" in path.read_text().splitlines()[:3]
    loaded = trimesh.load(path, process=False, force="mesh")
    lo, hi = loaded.bounds
    assert hi[2] - lo[2] == pytest.approx(HEIGHT, abs=1e-5) and hi[1] - lo[1] == pytest.approx(DEPTH + 0.02)


def test_obj_jpeg_texture_is_named_after_the_obj(tmp_path):
    path = write_obj(_tall_box(), tmp_path / "mug.obj", texture_format="jpeg", texture_quality=70)
    texture = tmp_path / "mug_basecolor.jpg"
    assert texture.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG file
    assert "map_Kd mug_basecolor.jpg" in (tmp_path / "mug.mtl").read_text()
    assert "mtllib mug.mtl" in path.read_text()


def test_two_obj_copies_in_one_folder_keep_their_own_side_files(tmp_path):
    src = tmp_path / "exports"
    src.mkdir()
    write_obj(_tall_box(), src / "model.obj")
    out = tmp_path / "out"
    out.mkdir()
    copy_obj(src / "model.obj", out / "foo.obj")
    # A second, different model copied under another name into the same folder.
    other = TexturedMesh(_tall_box().vertices * 2, _tall_box().faces, _tall_box().uvs,
                         np.zeros((8, 8, 3), np.uint8))
    write_obj(other, src / "model.obj")
    copy_obj(src / "model.obj", out / "bar.obj")
    assert sorted(p.name for p in out.iterdir()) == [
        "bar.mtl", "bar.obj", "bar_basecolor.png", "foo.mtl", "foo.obj", "foo_basecolor.png"]
    for stem, height in (("foo", HEIGHT), ("bar", 2 * HEIGHT)):
        text = (out / f"{stem}.obj").read_text()
        assert f"mtllib {stem}.mtl" in text and "model" not in text.split("\no ")[0]
        assert f"map_Kd {stem}_basecolor.png" in (out / f"{stem}.mtl").read_text()
        loaded = trimesh.load(out / f"{stem}.obj", process=False, force="mesh")
        assert loaded.bounds[1][1] == pytest.approx(height, abs=1e-5)
    foo_tex = trimesh.load(out / "foo.obj", force="mesh").visual.material.image
    assert np.asarray(foo_tex).std() > 0  # foo kept its own (random) texture, not bar's black one


def test_bad_options_write_nothing(tmp_path):
    for bad in ({"up": "x"}, {"texture_format": "webp"}, {"texture_quality": 0},
                {"texture_quality": 101}):
        with pytest.raises(ConfigError):
            write_exports(_tall_box(), tmp_path / "e", formats=("obj", "ply"), **bad)
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())


def test_export_options_reach_the_export_stage_through_the_plan(tmp_path):
    """What the CLI passes (and the desktop can: services.process overrides) is the export
    stage's config, checked when the job is planned."""
    from test_ingest_support import write_jpeg

    from core.workspace import Workspace
    from recon.ingest import ingest
    from recon.methods import plan

    for i in range(3):
        write_jpeg(tmp_path / "photos" / f"p{i}.jpg", seed=i)
    capture = ingest(tmp_path / "photos", Workspace(tmp_path / "ws"))
    options = {"formats": ["obj", "ply"], "texture_format": "jpeg", "texture_quality": 80, "up": "z"}
    export = next(s for s in plan(capture, "mvs", overrides={"export": options}).steps if s.stage == "export")
    assert {k: export.config[k] for k in options} == {**options, "formats": ["obj", "ply"]}
    with pytest.raises(ConfigError, match="export.up"):
        plan(capture, "mvs", overrides={"export": {"up": "x"}})


def test_jpeg_textures_in_usdz_and_glb_pass_their_checks(tmp_path):
    import json
    import struct
    import zipfile

    from recon.export import check_usdz

    written = write_exports(_tall_box(), tmp_path, formats=("usdz", "glb"), texture_format="jpeg",
                            texture_quality=85, preset="preview")
    report = check_usdz(written["usdz"])
    assert report.passed, report.summary()
    with zipfile.ZipFile(written["usdz"]) as z:
        textures = [n for n in z.namelist() if n.startswith("textures/")]
        assert len(textures) == 1 and textures[0].endswith(".jpg")
        assert z.read(textures[0])[:3] == b"\xff\xd8\xff"
    data = written["glb"].read_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    gltf = json.loads(data[20:20 + length])
    assert [image["mimeType"] for image in gltf["images"]] == ["image/jpeg"]
