"""``scanbridge poses``: import or pick a capture, run the stage as a job, write transforms.json."""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.cli import main
from core.workspace import Workspace
from recon.poses.evaluate import compare_poses
from recon.sample import render_orbit

FOX = Path("/work/shared/data/instant-ngp-fox")
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def _c2w_by_name(transforms: dict, base: Path) -> dict[str, np.ndarray]:
    out = {}
    for frame in transforms["frames"]:
        path = base / frame["file_path"]
        assert path.is_file(), path
        out[path.name] = np.array(frame["transform_matrix"]) @ OPENGL_TO_OPENCV
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "photos"
    folder.mkdir()
    views = render_orbit(12, (480, 360))
    truth = {}
    for k, i in enumerate((0, 6, 1, 7, 2, 8, 3, 9)):  # 30 degree steps, alternating rings
        cv2.imwrite(str(folder / f"IMG_{k:04d}.jpg"), views[i].rgb[:, :, ::-1])
        truth[f"IMG_{k:04d}.jpg"] = views[i].c2w
    return folder, truth


def test_poses_imports_a_folder_and_writes_transforms(photos, tmp_path, capsys):
    folder, truth = photos
    ws = tmp_path / "ws"
    out = tmp_path / "results" / "nested" / "transforms.json"
    args = ["--workspace", str(ws), "poses", str(folder), "-o", str(out), "--matcher", "exhaustive"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "8/8 frames registered (100.0%)" in printed and f"wrote {out}" in printed
    transforms = json.loads(out.read_text())
    est = _c2w_by_name(transforms, out.parent)  # file paths valid from the output's folder
    assert set(est) == set(truth)
    assert compare_poses(est, truth).median_rotation_deg < 1.0
    assert (out.parent / transforms["ply_file_path"]).is_file()
    assert not list(out.parent.glob(".*.tmp"))

    # The capture id works as SOURCE too, and the finished run is reused.
    (capture,) = Workspace(ws).captures()
    again = tmp_path / "again.json"
    assert main(["--workspace", str(ws), "poses", capture.id, "-o", str(again), "--matcher=exhaustive"]) == 0
    assert len(list(capture.runs_dir.glob("poses-*"))) == 1
    assert _c2w_by_name(json.loads(again.read_text()), again.parent).keys() == est.keys()


def test_missing_source_is_one_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope"
    code = main(["--workspace", str(tmp_path / "ws"), "poses", str(missing), "-o", str(tmp_path / "t.json")])
    assert code == 2
    lines = re.split(r"[\r\n]", capsys.readouterr().err)  # the progress bar also writes to stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and str(missing) in errors[0]
    assert not (tmp_path / "t.json").exists()


@pytest.mark.skipif(not FOX.is_dir(), reason="shared fox data not present")
def test_fox_registers_with_sub_degree_rotation_error(tmp_path, capsys):
    """Done-when check: >= 95% of the 50 frames, median rotation error < 1 degree."""
    out = tmp_path / "t.json"
    assert main(["--workspace", str(tmp_path / "ws"), "poses", str(FOX / "images"), "-o", str(out)]) == 0
    transforms = json.loads(out.read_text())
    est = _c2w_by_name(transforms, out.parent)
    assert len(est) >= 0.95 * 50
    reference = {Path(f["file_path"]).name: np.array(f["transform_matrix"]) @ OPENGL_TO_OPENCV
                 for f in json.loads((FOX / "transforms.json").read_text())["frames"]}
    errors = compare_poses(est, reference)
    assert len(errors.frames) == len(est)
    assert errors.median_rotation_deg < 1.0
