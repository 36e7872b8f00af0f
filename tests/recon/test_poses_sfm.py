"""The poses stage's SfM path on a rendered orbit of a textured object (recon.sample), with two
bad frames added: a blurred copy of a view and a frame of random noise."""

import json

import cv2
import numpy as np
import pycolmap
import pytest

from core.errors import Cancelled, InputError
from core.progress import CancelToken
from core.stages import execute_stage, read_status
from core.workspace import Workspace
from recon.ingest import ingest
from recon.poses.evaluate import compare_poses
from recon.sample import render_orbit

# nerfstudio / OpenGL cameras look down -z with y up: OpenCV's camera with y and z negated.
OPENGL_AXES = np.diag([1.0, -1.0, -1.0, 1.0])

N_VIEWS = 12


@pytest.fixture(scope="module")
def orbit(tmp_path_factory):
    """Images of a 12-view orbit (480x360) plus blurry.jpg and noise.jpg; the views' true poses."""
    root = tmp_path_factory.mktemp("orbit")
    folder = root / "photos"
    folder.mkdir()
    views = render_orbit(N_VIEWS, (480, 360))
    truth = {}
    for i, view in enumerate(views):
        name = f"view_{i:02d}.jpg"
        cv2.imwrite(str(folder / name), view.rgb[:, :, ::-1])
        truth[name] = view.c2w
    blurred = cv2.GaussianBlur(views[3].rgb[:, :, ::-1], (0, 0), 9)
    cv2.imwrite(str(folder / "view_03_blurry.jpg"), blurred)
    noise = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "view_99_noise.jpg"), noise)
    return root, folder, truth


@pytest.fixture(scope="module")
def sfm_run(orbit):
    root, folder, truth = orbit
    capture = ingest(folder, Workspace(root / "ws"), name="orbit")
    events = []
    outcome = execute_stage(capture, "poses", {"min_registered_fraction": 0.8}, sink=events.append)
    return capture, outcome, events, truth


def _poses(outcome):
    return json.loads((outcome.run_dir / "poses.json").read_text())


def test_every_good_view_registers_with_accurate_poses(sfm_run):
    capture, outcome, _events, truth = sfm_run
    r = outcome.result
    assert r["total"] == N_VIEWS + 2
    assert r["registered"] >= N_VIEWS
    est = {f["source_name"]: np.array(f["c2w"]) for f in _poses(outcome)["frames"]}
    assert set(truth) <= set(est)
    errors = compare_poses(est, truth)
    assert errors.median_rotation_deg < 1.0
    assert np.max(errors.rotation_deg) < 3.0


def test_bad_frames_get_reasons(sfm_run):
    capture, outcome, _events, _truth = sfm_run
    manifest = capture.load()
    by_source = {fr.source_name: fr.id for fr in manifest.frames}
    unregistered = outcome.result["unregistered"]
    assert unregistered[by_source["view_03_blurry.jpg"]].startswith("blurry")
    noise_reason = unregistered[by_source["view_99_noise.jpg"]]
    assert noise_reason.startswith("too few matches"), noise_reason
    poses = _poses(outcome)
    assert poses["unregistered"] == unregistered
    assert poses["fraction"] == pytest.approx(outcome.result["registered"] / (N_VIEWS + 2), abs=1e-3)
    assert {f["id"] for f in poses["frames"]}.isdisjoint(unregistered)


def test_outputs_agree_with_each_other(sfm_run):
    capture, outcome, _events, _truth = sfm_run
    run = outcome.run_dir
    model = pycolmap.Reconstruction(run / "sparse" / "0")
    assert model.num_reg_images() == outcome.result["registered"]
    assert model.num_points3D() == outcome.result["points"] > 100
    transforms = json.loads((run / "transforms.json").read_text())
    poses = {f["id"]: np.array(f["c2w"]) for f in _poses(outcome)["frames"]}
    assert len(transforms["frames"]) == len(poses)
    for frame in transforms["frames"]:
        assert (run / frame["file_path"]).is_file()
        np.testing.assert_allclose(np.array(frame["transform_matrix"]),
                                   poses[frame["frame_id"]] @ OPENGL_AXES, atol=1e-9)
        image = model.find_image_with_name(str((run / frame["file_path"]).resolve()
                                               .relative_to(capture.root.resolve())))
        np.testing.assert_allclose(image.projection_center(), poses[frame["frame_id"]][:3, 3], atol=1e-6)
    assert {"fl_x", "fl_y", "cx", "cy", "w", "h"} <= set(transforms)
    header = (run / "sparse.ply").read_bytes()[:300].decode("ascii", "replace")
    assert f"element vertex {outcome.result['points']}" in header and "property uchar red" in header


def test_progress_comes_from_pycolmap_steps(sfm_run):
    _capture, _outcome, events, _truth = sfm_run
    progress = [e for e in events if e.kind == "progress"]
    fractions = [e.fraction for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    messages = " ".join(e.message for e in progress)
    assert "features: 14/14 images" in messages
    assert "matching:" in messages and "pairs" in messages
    assert any(e.message.startswith("mapping: ") and "images registered" in e.message for e in progress)


def test_finished_run_is_reused(sfm_run):
    capture, outcome, _events, _truth = sfm_run
    again = execute_stage(capture, "poses", {"min_registered_fraction": 0.8})
    assert again.reused and again.run_dir == outcome.run_dir
    assert again.result["registered"] == outcome.result["registered"]


def test_too_few_frames_registered_triggers_a_stronger_retry(orbit, tmp_path):
    root, folder, truth = orbit
    small = tmp_path / "few"
    small.mkdir()
    # Views 0, 6, 1, 7, ... alternate between the two rings at 30 degree steps of azimuth.
    for k, i in enumerate((0, 6, 1, 7, 2, 8, 3, 9)):
        (small / f"{k}.jpg").write_bytes((folder / f"view_{i:02d}.jpg").read_bytes())
    capture = ingest(small, Workspace(tmp_path / "ws"), name="few")
    # Eight features per image cannot start a model; the first retry takes thousands.
    outcome = execute_stage(capture, "poses", {"max_num_features": 8, "max_attempts": 2})
    r = outcome.result
    assert r["attempts"] == ["fast", "more features, exhaustive, lower thresholds"]
    assert r["registered"] == 8
    recorded = _poses(outcome)["attempts"]
    assert recorded[0]["registered"] < 8 and recorded[0]["settings"]["max_num_features"] == 8
    assert recorded[-1]["settings"]["max_num_features"] >= 8192
    assert not (outcome.run_dir / "attempts" / "attempt-1").exists()  # only the kept attempt stays


def test_cancel_stops_the_stage_and_marks_the_run(orbit, tmp_path):
    _root, folder, _truth = orbit
    capture = ingest(folder, Workspace(tmp_path / "ws"), name="cancel")
    token = CancelToken()

    def cancel_on_features(event):
        if event.kind == "progress" and event.message.startswith("features"):
            token.cancel()

    with pytest.raises(Cancelled):
        execute_stage(capture, "poses", {}, sink=cancel_on_features, cancel=token)
    runs = list(capture.runs_dir.iterdir())
    assert len(runs) == 1 and read_status(runs[0])["state"] == "cancelled"
    assert not (runs[0] / "transforms.json").exists()


def test_one_image_is_one_clear_error(orbit, tmp_path):
    _root, folder, truth = orbit
    single = tmp_path / "one"
    single.mkdir()
    name = sorted(truth)[0]
    (single / name).write_bytes((folder / name).read_bytes())
    capture = ingest(single, Workspace(tmp_path / "ws"), name="one")
    with pytest.raises(InputError, match="at least 2 images") as info:
        execute_stage(capture, "poses", {})
    assert "capture.json" in str(info.value)


def test_global_mapper_registers_the_orbit(orbit, tmp_path):
    _root, folder, truth = orbit
    subset = tmp_path / "subset"
    subset.mkdir()
    names = {}
    for k, i in enumerate((0, 6, 1, 7, 2, 8, 3, 9)):
        names[f"{k}.jpg"] = f"view_{i:02d}.jpg"
        (subset / f"{k}.jpg").write_bytes((folder / names[f"{k}.jpg"]).read_bytes())
    capture = ingest(subset, Workspace(tmp_path / "ws"), name="global")
    outcome = execute_stage(capture, "poses", {"mapper": "global", "max_attempts": 1})
    assert outcome.result["mapper"] == "global" and outcome.result["registered"] == 8
    est = {names[f["source_name"]]: np.array(f["c2w"]) for f in _poses(outcome)["frames"]}
    assert compare_poses(est, truth).median_rotation_deg < 1.0


def test_a_relaxed_second_pass_takes_in_frames_the_first_gave_up_on(sfm_run, tmp_path):
    from recon.poses.config import PosesConfig, attempt_ladder
    from recon.poses.mapping import extend_model

    capture, outcome, _events, _truth = sfm_run
    (database,) = outcome.run_dir.glob("attempts/*/database.db")
    settings = attempt_ladder(PosesConfig(), "exhaustive", N_VIEWS + 2, False)[0]
    model = pycolmap.Reconstruction(outcome.run_dir / "sparse" / "0")
    full = model.num_reg_images()
    for image_id in sorted(model.reg_image_ids())[-4:]:  # the model as if four frames had failed
        model.deregister_frame(model.image(image_id).frame_id)
    assert model.num_reg_images() == full - 4
    grown = extend_model(database, capture.root, model, tmp_path / "extend", settings, num_threads=1, seed=0,
                         cancel=CancelToken())
    assert grown is not None and grown.num_reg_images() == full
    assert model.num_reg_images() == full - 4  # the model given is left as it was
    # Nothing more to take in: None.
    assert extend_model(database, capture.root, grown, tmp_path / "again", settings, num_threads=1, seed=0,
                        cancel=CancelToken()) is None
