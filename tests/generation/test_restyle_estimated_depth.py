"""Frames with neither a depth map nor a mesh get a depth estimator's relative depth as their hint."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from core.capture import CaptureFolder
from core.errors import DependencyError
from core.settings import load_settings, save_settings, with_changes
from core.stages import execute_stage
from generation.restyle.frames import RestyleFrame, control_images
from generation.restyle.stage import STAGE
from recon.sample import make_camera

TINY = {"size": 64, "steps": 2, "strength": 0.75, "guidance": 2.0, "prompt": "a wooden toy"}


@pytest.fixture(scope="module")
def photos_only(sample_capture, tmp_path_factory):
    """A copy of the sample capture whose manifest lists no depth maps (photos only)."""
    workspace, capture = sample_capture
    copy = CaptureFolder(workspace.captures_dir / "photos-only")
    if not copy.root.exists():
        shutil.copytree(capture.root, copy.root, ignore=shutil.ignore_patterns("runs"))
        manifest = copy.load()
        copy.save(dataclasses.replace(manifest, frames=tuple(
            dataclasses.replace(f, depth=None, confidence=None) for f in manifest.frames)))
    return workspace, copy


def test_a_missing_depth_estimator_is_one_clear_error(photos_only):
    _workspace, capture = photos_only
    with pytest.raises(DependencyError, match="depth-anything-v2-small.*Depth-Anything-V2-Small-hf"):
        execute_stage(capture, STAGE, {**TINY, "max_frames": 1})


def test_frames_without_depth_are_restyled_with_estimated_depth(photos_only, tmp_path):
    from tiny_models import save_tiny_depth_anything

    workspace, capture = photos_only
    estimator = save_tiny_depth_anything(tmp_path / "tiny-depth-anything")
    settings = load_settings(workspace.settings_path)
    save_settings(workspace.settings_path, with_changes(
        settings, model_paths={**settings.model_paths, "depth-anything-v2-small": str(estimator)}))
    try:
        outcome = execute_stage(capture, STAGE, {**TINY, "max_frames": 3, "keyframe_every": 2})
    finally:
        save_settings(workspace.settings_path, settings)
    assert outcome.result["estimated_depth"] == 3
    assert outcome.result["keyframes"] == [0, 1, 2]  # nothing to warp with: every frame is diffused
    assert "warped_error" not in outcome.result
    assert len(list((outcome.run_dir / "frames").glob("*.png"))) == 3


def test_an_estimated_depth_becomes_the_hint_of_a_frame_without_depth():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 32, 3)).astype(np.uint8)
    disparity = np.tile(np.linspace(2.0, 10.0, 32, dtype=np.float32), (24, 1))  # nearer to the right
    frame = RestyleFrame("f", rgb, make_camera((32, 24)), disparity=disparity)
    hint = control_images([frame], blur_sigma_fraction=0.0)[0]
    assert hint.shape == (24, 32, 3)
    lo, hi = np.percentile(disparity, [1, 99])
    expected = np.clip((disparity - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(hint[..., 0], expected, atol=1e-5)


def test_frames_without_depth_take_it_from_a_mesh_rendered_at_their_pose(photos_only, sample_capture):
    import trimesh

    from generation.restyle.frames import load_frames

    _workspace, with_depth = sample_capture
    _workspace, capture = photos_only
    # The sample's ground is the plane y = 0: a large quad of it is a mesh we know exactly.
    ground = trimesh.Trimesh(vertices=[[-3, 0, -3], [3, 0, -3], [3, 0, 3], [-3, 0, 3]],
                             faces=[[0, 2, 1], [0, 3, 2]])
    (capture.root / "runs").mkdir(exist_ok=True)
    ground.export(capture.root / "runs" / "ground.ply")
    rendered = load_frames(capture, 64, max_frames=2, mesh=capture.root / "runs" / "ground.ply")
    sensor = load_frames(with_depth, 64, max_frames=2)
    for r, s in zip(rendered, sensor, strict=True):
        on_ground = (s.depth > 0) & ~s.mask
        assert on_ground.sum() > 200
        relative = np.abs(r.depth[on_ground] - s.depth[on_ground]) / s.depth[on_ground]
        assert np.median(relative) < 0.01  # same surface, from the frame's own pose
        behind = s.mask & (r.depth > 0)  # object pixels whose ray meets the plane at all
        assert (r.depth[behind] < s.depth[behind] - 0.01).sum() == 0  # the plane lies behind the object
