"""--json and --quiet on import, poses, process and demo: the real CLI in a subprocess, every stdout
line parsed as JSON; process's --formats, --up and -o dir/foo.obj through the whole job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import trimesh
from plyfile import PlyData

from recon.sample import render_orbit, write_capture_folder
from recon.sample.scene import OBJECT_BOUNDS

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=timeout)


def _json_lines(stdout: str) -> list[dict]:
    lines = stdout.splitlines()
    assert lines, "nothing on stdout"
    return [json.loads(line) for line in lines]  # every line is one JSON object


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("json") / "photos"
    folder.mkdir()
    views = render_orbit(12, (320, 240))
    for k, i in enumerate((0, 6, 1, 7, 2, 8, 3, 9)):
        cv2.imwrite(str(folder / f"IMG_{k:04d}.jpg"), views[i].rgb[:, :, ::-1])
    return folder


def test_import_json_is_progress_lines_then_one_result(photos, tmp_path):
    done = _cli("--workspace", str(tmp_path / "ws"), "import", str(photos), "--json", "--name", "Mug")
    assert done.returncode == 0, done.stderr
    events = _json_lines(done.stdout)
    assert [e["event"] for e in events[:-1]] and all(e["event"] in ("progress", "log") for e in events[:-1])
    assert any(e["event"] == "progress" and e["stage"] == "ingest" for e in events)
    result = events[-1]
    assert result["event"] == "result" and result["exit_code"] == 0 and result["frames"] == 8
    assert Path(result["folder"], "capture.json").is_file() and result["capture"] in result["folder"]
    assert "\r" not in done.stderr


def test_import_json_error_is_one_object_with_the_exit_code(tmp_path):
    missing = tmp_path / "no-such-folder"
    done = _cli("--workspace", str(tmp_path / "ws"), "import", str(missing), "--json")
    assert done.returncode == 2
    (error,) = _json_lines(done.stdout)
    assert error["event"] == "error" and error["exit_code"] == 2 and str(missing) in error["message"]


def test_usage_error_with_json_is_a_json_error_too(tmp_path):
    done = _cli("demo", "--json", "--detail", "enormous")
    assert done.returncode == 2
    (error,) = _json_lines(done.stdout)
    assert error["event"] == "error" and error["exit_code"] == 2


def test_import_quiet_prints_only_the_result(photos, tmp_path):
    done = _cli("--workspace", str(tmp_path / "ws"), "import", str(photos), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress at all
    first, second = done.stdout.splitlines()
    assert first.count("\t") == 1 and second.startswith("8 frames, source ")


def test_poses_json_and_undistorted_colmap(photos, tmp_path):
    import pycolmap

    out = tmp_path / "t.json"
    done = _cli("--workspace", str(tmp_path / "ws"), "poses", str(photos), "-o", str(out), "--json",
                "--matcher", "exhaustive", "--colmap", str(tmp_path / "for-3dgs"))
    assert done.returncode == 0, done.stderr
    events = _json_lines(done.stdout)
    assert any(e["event"] == "progress" and e["stage"] == "poses" for e in events)
    result = events[-1]
    assert result["event"] == "result" and result["registered"] == result["total"] == 8
    assert result["transforms"] == str(out) and len(json.loads(out.read_text())["frames"]) == 8
    # The SfM model (SIMPLE_RADIAL) as PINHOLE cameras and resampled images, still consistent.
    model = pycolmap.Reconstruction(result["colmap"])
    assert {c.model.name for c in model.cameras.values()} == {"PINHOLE"} and model.num_reg_images() == 8
    assert model.compute_mean_reprojection_error() < 1.0
    assert all((tmp_path / "for-3dgs" / "images" / im.name).is_file() for im in model.images.values())


@pytest.fixture(scope="module")
def rgbd_orbit(tmp_path_factory) -> Path:
    views = render_orbit(12, (256, 192), elevations_deg=(20.0, 45.0), radius_m=0.55)
    return write_capture_folder(views, tmp_path_factory.mktemp("rgbd") / "src", with_depth=True)


def test_process_json_formats_up_z_and_obj_named_after_the_output(rgbd_orbit, tmp_path):
    out = tmp_path / "dir" / "foo.obj"
    done = _cli("--workspace", str(tmp_path / "ws"), "process", str(rgbd_orbit), "-o", str(out),
                "--detail", "preview", "--texture-size", "256", "--formats", "obj,ply", "--up", "z",
                "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    events = _json_lines(done.stdout)
    stages = {e["stage"] for e in events if e["event"] == "progress"}
    assert {"fusion", "mesh", "export"} <= stages
    result = events[-1]
    assert result["event"] == "result" and result["exit_code"] == 0 and result["out"] == str(out)
    assert set(result["files"]) == {"obj", "ply"}  # only the formats asked for
    exports = Path(result["exports"])
    assert not list(exports.glob("*.usdz")) and not list(exports.glob("*.glb"))

    # foo.obj names foo.mtl, which names foo_basecolor.png.
    assert sorted(p.name for p in out.parent.iterdir()) == ["foo.mtl", "foo.obj", "foo_basecolor.png"]
    assert "mtllib foo.mtl" in out.read_text() and "map_Kd foo_basecolor.png" in (
        out.parent / "foo.mtl").read_text()

    # Z up: the object's height (its y extent in the scene) runs along z, from z = 0.
    true_height = OBJECT_BOUNDS[1][1] - OBJECT_BOUNDS[0][1]
    ply = exports / "model.ply"
    assert "up_axis z" in PlyData.read(str(ply)).comments
    for path in (ply, out):
        lo, hi = trimesh.load(path, process=False, force="mesh").bounds
        assert hi[2] - lo[2] == pytest.approx(true_height, rel=0.05)
        assert lo[2] == pytest.approx(0.0, abs=1e-3)


def test_process_json_bad_output_is_one_error(rgbd_orbit, tmp_path):
    done = _cli("--workspace", str(tmp_path / "ws"), "process", str(rgbd_orbit), "-o",
                str(tmp_path / "m.usdz"), "--formats", "obj,ply", "--json")
    assert done.returncode == 2
    (*_, error) = _json_lines(done.stdout)
    assert error["event"] == "error" and error["exit_code"] == 2 and "m.usdz" in error["message"]


def test_a_refused_output_imports_nothing(rgbd_orbit, tmp_path):
    ws = tmp_path / "ws"
    done = _cli("--workspace", str(ws), "process", str(rgbd_orbit), "-o", str(tmp_path / "m.ply"),
                "--formats", "obj", "--quiet")
    assert done.returncode == 2 and "m.ply" in done.stderr and done.stdout == ""
    assert not list(ws.glob("captures/*"))


def test_demo_json_in_process(tmp_path, monkeypatch, capsys):
    """demo --json on a quick stand-in for the bundled sample (the real one takes minutes)."""
    import recon.sample.demo as demo
    from core.cli import main

    views = render_orbit(12, (320, 240), elevations_deg=(25.0,))
    sample = write_capture_folder(views, tmp_path / "orbit", with_depth=True)
    monkeypatch.setattr(demo, "bundled_sample_dir", lambda: sample)
    assert main(["--workspace", str(tmp_path / "ws"), "demo", "--no-model", "--json"]) == 0
    events = _json_lines(capsys.readouterr().out)
    assert any(e["event"] == "progress" and e["stage"] == "poses" for e in events)
    result = events[-1]
    assert result["event"] == "result" and result["exit_code"] == 0
    assert [r["stage"] for r in result["runs"]] == ["poses"]
    assert Path(result["runs"][0]["run_folder"]).is_dir()
