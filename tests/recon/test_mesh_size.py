"""A model whose real size nothing in the capture tells (photos only, no marker) is not exported as
if its SfM units were metres: it gets an estimated size (longest side 30 cm), flagged in the stage
results and in the USDZ and GLB, and the user can give the real size instead."""

from __future__ import annotations

import argparse
import json
import math
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
from pxr import Usd
from test_mesh_stage import fused, views  # noqa: F401  (fixtures: a fused orbit of the sample object)

from core.errors import ConfigError
from core.stages import execute_stage
from core.workspace import Workspace
from recon.fusion.ply import write_mesh_ply
from recon.mesh.stage import MeshStageConfig, load_result
from recon.process_cli import add_process_command, mesh_options
from recon.sample.scene import OBJECT_BOUNDS

MESH = "recon.mesh.stage:STAGE"
EXPORT = "recon.export.stage:STAGE"
SFM_UNITS_PER_METRE = 7.0  # an SfM model's arbitrary units: the object would be ~2 m "long"
OPTIONS = {"detail": "preview", "texture_size": 256}
TRUE_EXTENT = np.subtract(OBJECT_BOUNDS[1], OBJECT_BOUNDS[0])  # metres, by construction


@pytest.fixture(scope="module")
def unscaled(fused, tmp_path_factory):  # noqa: F811
    """The same orbit as a photo capture in SfM units: poses and raw mesh times 7, scale unknown."""
    cap, fusion_run = fused
    root = tmp_path_factory.mktemp("unscaled")
    ws = Workspace(root / "ws")
    manifest = cap.load()
    k = SFM_UNITS_PER_METRE
    with ws.staged_capture("photos") as new:
        (new.root / "images").symlink_to(cap.images_dir)
        frames = tuple(replace(f, depth=None, pose=tuple(tuple(v * k if j == 3 and i < 3 else v
                                                              for j, v in enumerate(row))
                                                        for i, row in enumerate(f.pose)))
                       for f in manifest.frames)
        new.save(replace(manifest, id="photos", frames=frames, scale="unscaled", mode="free",
                         source={"kind": "images"}))
    raw = o3d.io.read_triangle_mesh(str(fusion_run / "mesh.ply"))
    mvs_run = root / "mvs-run"
    mvs_run.mkdir()
    write_mesh_ply(mvs_run / "mesh.ply", np.asarray(raw.vertices, np.float32) * np.float32(k),
                   np.asarray(raw.triangles, np.int32), np.asarray(raw.vertex_normals, np.float32),
                   (np.asarray(raw.vertex_colors) * 255).astype(np.uint8))
    return ws.capture("photos"), mvs_run


def extent(run_dir: Path) -> np.ndarray:
    mesh, _ = load_result(run_dir)
    lo, hi = mesh.bounds()
    return hi - lo


def test_unknown_scale_gets_an_estimated_30_cm_flagged_as_such(unscaled) -> None:
    cap, mvs_run = unscaled
    out = execute_stage(cap, MESH, OPTIONS, inputs={"mvs": mvs_run})
    size = extent(out.run_dir)
    assert size.max() == pytest.approx(0.30, abs=1e-4)
    # the shape is kept: proportions as the true object's (up to the TSDF's ~1.5 cm bound error)
    assert np.sort(size) / size.max() == pytest.approx(np.sort(TRUE_EXTENT) / TRUE_EXTENT.max(), abs=0.08)
    assert out.result["scale"] == "estimated" and out.result["size_estimated"] is True
    _, placement = load_result(out.run_dir)
    assert placement["scale"] == "estimated" and placement["size_estimated"] is True
    assert placement["metric"] is False and placement["estimated_size_m"] == 0.30

    exported = execute_stage(cap, EXPORT, {"formats": ["usdz", "glb"], "detail": "preview"},
                             inputs={"mesh": out.run_dir})
    r = exported.result
    assert r["scale"] == "estimated" and r["size_estimated"] is True
    assert r["longest_side_m"] == pytest.approx(0.30, abs=1e-3)
    if r["arkit_check"]["ran"]:
        assert not r["arkit_check"]["errors"]
    usd = Usd.Stage.Open(str(exported.run_dir / r["files"]["usdz"]))
    facts = dict(usd.GetRootLayer().customLayerData)["scanbridge"]
    assert facts["scale"] == "estimated" and facts["size_estimated"] is True
    glb = (exported.run_dir / r["files"]["glb"]).read_bytes()
    (json_length,) = struct.unpack("<I", glb[12:16])
    asset = json.loads(glb[20:20 + json_length])["asset"]
    assert asset["extras"]["scanbridge"]["size_estimated"] is True


def test_the_real_size_given_wins(unscaled) -> None:
    cap, mvs_run = unscaled
    out = execute_stage(cap, MESH, {**OPTIONS, "real_size_m": 0.25}, inputs={"mvs": mvs_run})
    assert extent(out.run_dir).max() == pytest.approx(0.25, abs=1e-4)
    assert out.result["scale"] == "user" and out.result["size_estimated"] is False
    exported = execute_stage(cap, EXPORT, {"formats": ["glb"], "detail": "preview"},
                             inputs={"mesh": out.run_dir})
    assert exported.result["scale"] == "user" and exported.result["size_estimated"] is False


def test_metric_capture_keeps_its_measured_size(fused) -> None:  # noqa: F811
    cap, fusion_run = fused
    out = execute_stage(cap, MESH, OPTIONS, inputs={"fusion": fusion_run})
    assert out.result["scale"] == "metric" and out.result["size_estimated"] is False
    assert extent(out.run_dir) == pytest.approx(TRUE_EXTENT, abs=0.015)


def parse_process(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_process_command(parser.add_subparsers(), argparse.ArgumentParser(add_help=False))
    return parser.parse_args(["process", "cap-1", "-o", "model.usdz", *argv])


def test_size_and_marker_options_reach_the_mesh_stage() -> None:
    args = parse_process("--size", "0.25", "--marker-size", "0.05", "--marker-dictionary", "DICT_6X6_250")
    options = mesh_options(args)
    assert options["real_size_m"] == 0.25
    assert options["marker_size_m"] == 0.05 and options["marker_dictionary"] == "DICT_6X6_250"
    config = MeshStageConfig(**options)
    assert config.real_size_m == 0.25 and config.marker_size_m == 0.05
    assert config.marker_dictionary == "DICT_6X6_250"
    # Options not given stay out, so the stage's defaults (a 10 cm DICT_4X4_50 marker) apply and the
    # CLI queues the same job as the server and the app.
    assert mesh_options(parse_process()) == {}
    defaults = MeshStageConfig(**mesh_options(parse_process()))
    assert defaults.real_size_m is None and defaults.marker_size_m == 0.10
    assert defaults.marker_dictionary == "DICT_4X4_50"


@pytest.mark.parametrize("bad", ["nan", "inf", "1e400", "-0.2", "0", "big"])
def test_a_size_that_is_not_a_length_is_refused(bad: str, capsys) -> None:
    with pytest.raises(SystemExit):
        parse_process("--size", bad)
    assert "--size" in capsys.readouterr().err


@pytest.mark.parametrize("field, value", [
    ("real_size_m", math.nan), ("real_size_m", 1e400), ("real_size_m", -1.0), ("real_size_m", True),
    ("marker_size_m", 0.0), ("estimated_size_m", "30cm"), ("marker_dictionary", "DICT_NOPE"),
])
def test_bad_size_options_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        MeshStageConfig(**{field: value})
    assert field in str(e.value)
