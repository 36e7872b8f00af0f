"""Pieces of the poses stage that need no SfM run: pairs, alignment, config, path rewriting."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.errors import ConfigError
from core.stages import load_stage, make_config
from recon.poses.cli import rewrite_file_paths
from recon.poses.config import PosesConfig, attempt_ladder
from recon.poses.evaluate import compare_poses, umeyama
from recon.poses.outputs import PosedFrame, transforms_json, write_ply
from recon.poses.pairs import choose_matcher, exhaustive_pairs, retrieval_pairs, sequential_pairs

# nerfstudio / OpenGL cameras look down -z with y up: OpenCV's camera with y and z negated.
OPENGL_AXES = np.diag([1.0, -1.0, -1.0, 1.0])


def test_exhaustive_and_sequential_pairs():
    assert exhaustive_pairs(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    seq = sequential_pairs(30, 3)
    assert all(i < j for i, j in seq)
    assert {(0, 1), (0, 2), (0, 3), (0, 6), (0, 12), (0, 24)} <= set(seq)
    assert (0, 4) not in seq and (28, 29) in seq
    assert len(set(seq)) == len(seq)


def test_choose_matcher_by_capture_kind_and_size():
    assert choose_matcher("auto", 300, "video", 40) == "sequential"
    assert choose_matcher("auto", 30, "images", 40) == "exhaustive"
    assert choose_matcher("auto", 41, "images", 40) == "retrieval"
    assert choose_matcher("exhaustive", 500, "video", 40) == "exhaustive"


def test_retrieval_pairs_link_images_of_the_same_place():
    # Two "places", each with its own descriptor distribution; retrieval must pair within places.
    rng = np.random.default_rng(0)
    centres = [rng.integers(0, 255, (40, 128)), rng.integers(0, 255, (40, 128))]
    descriptors = []
    for i in range(10):
        c = centres[i % 2]
        picks = c[rng.integers(0, 40, 300)] + rng.integers(-3, 4, (300, 128))
        descriptors.append(np.clip(picks, 0, 255).astype(np.uint8))
    pairs = retrieval_pairs(descriptors, neighbors=3)
    assert pairs and all(i % 2 == j % 2 for i, j in pairs)


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(20, 3))
    rot = Rotation.from_euler("xyz", [10, -40, 75], degrees=True).as_matrix()
    dst = 2.5 * src @ rot.T + np.array([1.0, -2.0, 3.0])
    s, r, t = umeyama(src, dst)
    assert s == pytest.approx(2.5)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    np.testing.assert_allclose(t, [1.0, -2.0, 3.0], atol=1e-9)


def test_compare_poses_is_zero_for_a_similar_copy_and_sees_a_rotated_camera():
    rng = np.random.default_rng(2)
    ref = {}
    for k in range(8):
        c2w = np.eye(4)
        c2w[:3, :3] = Rotation.random(random_state=k).as_matrix()
        c2w[:3, 3] = rng.normal(size=3)
        ref[f"f{k}"] = c2w
    world = np.eye(4)
    world[:3, :3] = Rotation.from_euler("z", 30, degrees=True).as_matrix() * 0.5
    world[:3, 3] = [4, 5, 6]
    est = {}
    for k, c2w in ref.items():
        e = world @ c2w
        e[:3, :3] /= 0.5  # keep rotations orthonormal; centres are scaled
        est[k] = e
    errors = compare_poses(est, ref)
    assert errors.median_rotation_deg < 1e-6 and errors.median_centre < 1e-9
    assert errors.scale == pytest.approx(2.0)
    turned = dict(est)
    turned["f0"] = est["f0"].copy()
    turned["f0"][:3, :3] = est["f0"][:3, :3] @ Rotation.from_euler("y", 5, degrees=True).as_matrix()
    assert compare_poses(turned, ref).rotation_deg[0] == pytest.approx(5.0, abs=1e-6)


def test_config_errors_name_the_option():
    spec = load_stage("poses")
    with pytest.raises(ConfigError, match="matcher"):
        make_config(spec, {"matcher": "fuzzy"})
    with pytest.raises(ConfigError, match="poses.max_features"):
        make_config(spec, {"max_features": 10})
    with pytest.raises(ConfigError, match="max_image_size"):
        make_config(spec, {"max_image_size": 0})


def test_retries_get_stronger():
    ladder = attempt_ladder(PosesConfig(), "retrieval", 100, video=False)
    assert len(ladder) == 3
    assert [a.max_num_features for a in ladder] == sorted(a.max_num_features for a in ladder)
    assert ladder[1].matcher == "exhaustive" and ladder[2].guided_matching
    assert ladder[2].abs_pose_min_num_inliers < ladder[0].abs_pose_min_num_inliers
    assert len(attempt_ladder(PosesConfig(max_attempts=1), "exhaustive", 5, video=False)) == 1


def test_transforms_json_uses_opengl_axes_and_relative_paths(tmp_path):
    c2w = np.eye(4)
    c2w[:3, 3] = [1, 2, 3]
    cam = {"camera_model": "OPENCV", "w": 10, "h": 8, "fl_x": 9.0, "fl_y": 9.0, "cx": 5.0, "cy": 4.0,
           "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0}
    posed = [PosedFrame("a", "images/a.jpg", "IMG_1.JPG", c2w, cam)]
    out = transforms_json(posed, tmp_path / "cap", tmp_path / "cap" / "runs" / "poses-x", "sparse.ply")
    assert out["fl_x"] == 9.0 and out["w"] == 10
    frame = out["frames"][0]
    assert frame["file_path"] == "../../images/a.jpg" and frame["source_name"] == "IMG_1.JPG"
    np.testing.assert_allclose(np.array(frame["transform_matrix"]), c2w @ OPENGL_AXES)
    assert np.array(frame["transform_matrix"])[1, 1] == -1.0  # camera y flipped to point up


def test_rewrite_file_paths_point_at_the_same_files(tmp_path):
    run_dir = tmp_path / "ws" / "captures" / "c" / "runs" / "poses-1"
    image = tmp_path / "ws" / "captures" / "c" / "images" / "a.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"x")
    transforms = {"frames": [{"file_path": "../../images/a.jpg"}], "ply_file_path": "sparse.ply"}
    output = tmp_path / "elsewhere" / "deep" / "t.json"
    moved = rewrite_file_paths(transforms, run_dir, output)
    assert (output.parent / moved["frames"][0]["file_path"]).resolve() == image.resolve()
    assert (output.parent / moved["ply_file_path"]).resolve() == (run_dir / "sparse.ply").resolve()
    assert transforms["frames"][0]["file_path"] == "../../images/a.jpg"  # input untouched


def test_ply_is_readable_by_open3d(tmp_path):
    import open3d as o3d

    xyz = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    rgb = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    path = write_ply(tmp_path / "p.ply", xyz, rgb)
    cloud = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(cloud.points), xyz)
    np.testing.assert_allclose(np.asarray(cloud.colors), rgb / 255.0)
    assert not list(Path(tmp_path).glob(".*.tmp"))


def _synthetic_model(seed=0):
    import pycolmap

    pycolmap.set_random_seed(seed)
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_cameras_per_rig, options.num_frames_per_rig = 1, 1, 8
    options.num_points3D = 50
    return pycolmap.synthesize_dataset(options)


def _c2w(image):
    c2w = np.eye(4)
    c2w[:3, :] = image.cam_from_world().inverse().matrix()
    return c2w


def test_merge_adds_frames_another_attempt_registered_in_the_kept_frame():
    import pycolmap

    from recon.poses.merge import add_posed_images, merge_models

    truth = _synthetic_model()
    kept = pycolmap.Reconstruction(truth)
    dropped = sorted(kept.reg_image_ids())[-2:]
    for image_id in dropped:
        kept.deregister_frame(kept.image(image_id).frame_id)
    other = pycolmap.Reconstruction(truth)
    rotation = pycolmap.Rotation3d(np.array([0.3, -0.2, 0.5]))
    other.transform(pycolmap.Sim3d(3.0, rotation, np.array([1.0, 2, 3])))
    partial = pycolmap.Reconstruction(kept)
    merged = merge_models(kept, [("retry", other)])
    assert sorted(m.name for m in merged) == sorted(truth.image(i).name for i in dropped)
    for m in merged:
        np.testing.assert_allclose(m.c2w, _c2w(truth.find_image_with_name(m.name)), atol=1e-6)
        assert m.source == "retry"
    add_posed_images(kept, merged)
    assert kept.num_reg_images() == truth.num_reg_images()
    for m in merged:
        assert kept.find_image_with_name(m.name) is not None

    # A model whose common frames disagree with the kept one is not merged.
    bent = pycolmap.Reconstruction(truth)
    first = bent.image(sorted(bent.reg_image_ids())[0])
    bent.frame(first.frame_id).set_cam_from_world(
        first.camera_id, pycolmap.Rigid3d(pycolmap.Rotation3d(), np.array([50.0, 0, 0])))
    assert merge_models(partial, [("bent", bent)]) == []
    assert len(merge_models(partial, [("bent", bent), ("retry", other)])) == 2
