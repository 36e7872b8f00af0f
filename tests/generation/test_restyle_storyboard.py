"""Storyboard mode: rough mock-up frames -> a finished look, structure from their lines (an edge
ControlNet resolved as sd15-controlnet-canny through the registry) instead of depth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.capture import Camera
from core.settings import Settings, load_settings, save_settings
from core.stages import execute_stage
from generation.restyle.frames import RestyleFrame, edge_images
from generation.restyle.stage import STAGE
from generation.restyle.video import read_mp4

TINY = {"size": 64, "steps": 2, "strength": 0.9, "guidance": 2.0, "prompt": "a finished film still",
        "max_frames": 2, "keyframe_every": 1, "seed": 5}


def test_the_hint_is_the_mock_ups_lines_white_on_black():
    sketch = np.full((64, 96, 3), 230, np.uint8)
    cv2.rectangle(sketch, (20, 16), (70, 48), (20, 20, 20), 2)  # a box drawn on paper
    frame = RestyleFrame("f", sketch, Camera(width=96, height=64, fx=80, fy=80, cx=48, cy=32))
    hint = edge_images([frame], fidelity=0.7)[0]
    assert hint.shape == (64, 96, 3) and set(np.unique(hint)) <= {0.0, 1.0}
    lines = hint[..., 0] > 0
    near_drawn = cv2.dilate(cv2.rectangle(np.zeros((64, 96), np.uint8), (20, 16), (70, 48), 1, 2),
                            np.ones((5, 5), np.uint8)) > 0
    assert lines.any() and not (lines & ~near_drawn).any()  # every edge lies on the drawn box
    assert lines[16:49, 18:23].any() and lines[16:49, 68:73].any()  # both of its sides


def test_storyboard_restyles_with_the_edge_controlnet(sample_capture):
    workspace, capture = sample_capture
    paths = load_settings(workspace.settings_path).model_paths
    save_settings(workspace.settings_path,
                  Settings(model_paths={**paths, "sd15-controlnet-canny": paths["sd15-controlnet-depth"]}))
    board = execute_stage(capture, STAGE, {**TINY, "mode": "storyboard"})
    assert board.result["mode"] == "storyboard"
    assert board.result["models"]["controlnet"] == str(Path(paths["sd15-controlnet-depth"]).resolve())
    frames = read_mp4(board.run_dir / "restyle.mp4")
    assert len(frames) == 2
    depth = execute_stage(capture, STAGE, {**TINY, "mode": "stylize"})
    ours = [cv2.imread(str(p)) for p in sorted((board.run_dir / "frames").glob("*.png"))]
    theirs = [cv2.imread(str(p)) for p in sorted((depth.run_dir / "frames").glob("*.png"))]
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(ours, theirs, strict=True)]
    assert min(diffs) > 0.05, diffs  # the same hints would give identical frames (same seed, same weights)
