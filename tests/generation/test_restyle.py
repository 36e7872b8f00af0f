"""generation.restyle on the bundled sample with tiny random weights: consistency is measured with
the capture's own depth and poses, the mask mode keeps the background, cancel stops the stage."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import Cancelled, DependencyError
from core.progress import CancelToken
from core.stages import execute_stage, read_status
from generation.models import ModelRegistry, RuntimeSettings
from generation.models.loader import load_restyle_pipeline
from generation.restyle.attention import CrossFrameAttention, FrameLayout
from generation.restyle.engine import RestyleSettings, restyle_frames
from generation.restyle.frames import load_frames, subject_mask
from generation.restyle.stage import STAGE
from generation.restyle.video import read_mp4
from generation.restyle.warp import warped_error

TINY = {"size": 64, "steps": 3, "strength": 0.75, "guidance": 2.0, "prompt": "a marble statue"}


def test_cross_frame_attention_attends_to_the_first_previous_and_own_frame():
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8).eval()
    frames, tokens = 3, 5
    x = torch.randn(2 * frames, tokens, 16)  # two guidance branches of three frames
    attn.set_processor(CrossFrameAttention(FrameLayout(frames)))
    with torch.no_grad():
        out = attn(x)

    def by_hand(queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q, k, v = attn.to_q(queries), attn.to_k(context), attn.to_v(context)
        heads = []
        for h in range(2):
            s = slice(8 * h, 8 * h + 8)
            weights = torch.softmax(q[:, s] @ k[:, s].T / math.sqrt(8), dim=-1)
            heads.append(weights @ v[:, s])
        return attn.to_out[0](torch.cat(heads, dim=1))

    with torch.no_grad():
        for branch in range(2):
            f = x[branch * frames:(branch + 1) * frames]
            expected = [by_hand(f[0], f[0]), by_hand(f[1], torch.cat([f[0], f[0], f[1]])),
                        by_hand(f[2], torch.cat([f[0], f[1], f[2]]))]
            for i in range(frames):
                torch.testing.assert_close(out[branch * frames + i], expected[i], atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def tiny_pipe(sample_capture):
    workspace, _capture = sample_capture
    from core.settings import load_settings

    registry = ModelRegistry(workspace.root / "models", load_settings(workspace.settings_path).model_paths)
    return load_restyle_pipeline(registry.resolve("sd15", "sd15"),
                                 registry.resolve("sd15-controlnet-depth", "controlnet"),
                                 RuntimeSettings("cpu", "float32"))


def test_cross_frame_attention_and_warping_are_more_consistent_than_per_frame(sample_capture, tiny_pipe):
    _workspace, capture = sample_capture
    frames = load_frames(capture, 64, max_frames=5)  # 30 degrees apart around the object
    views = [f.view for f in frames]
    common = {**{k: TINY[k] for k in ("strength", "guidance", "prompt")}, "steps": 2}
    per_frame = restyle_frames(tiny_pipe, frames,
                               RestyleSettings(cross_frame=False, keyframe_every=1, **common))
    ours = restyle_frames(tiny_pipe, frames, RestyleSettings(cross_frame=True, keyframe_every=2, **common))
    assert ours.keyframes == [0, 2, 4]
    np.testing.assert_array_equal(ours.frames[0], per_frame.frames[0])  # same seed, same first frame
    baseline, consistent = warped_error(per_frame.frames, views), warped_error(ours.frames, views)
    print(f"warped error: per-frame {baseline:.1f}, cross-frame + warping {consistent:.1f}, "
          f"input photos {warped_error([f.rgb for f in frames], views):.1f}")
    assert consistent < 0.7 * baseline


def test_mask_mode_restyles_the_subject_and_keeps_the_background(sample_capture):
    _workspace, capture = sample_capture
    outcome = execute_stage(capture, STAGE, {**TINY, "mode": "mask", "max_frames": 2, "keyframe_every": 1})
    frames = load_frames(capture, 64, max_frames=2)
    video = read_mp4(outcome.run_dir / "restyle.mp4")
    assert len(video) == 2 and video[0].shape == (48, 64, 3)
    assert outcome.result["size"] == [64, 48] and outcome.result["mode"] == "mask"
    for frame in frames:
        out = np.asarray(Image.open(outcome.run_dir / "frames" / f"{frame.frame_id}.png")).astype(int)
        mask = subject_mask(frame)
        assert mask.mean() > 0.05  # the capture's own object mask
        far = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0  # past the soft edge
        assert np.abs(out - frame.rgb)[far].max() <= 1  # background untouched
        assert np.abs(out - frame.rgb)[mask].mean() > 5  # subject restyled


def test_cancel_stops_the_stage_between_steps_and_records_it(sample_capture):
    _workspace, capture = sample_capture
    cancel = CancelToken()

    def sink(event):
        if event.kind == "progress" and (event.fraction or 0) > 0:
            cancel.cancel()

    with pytest.raises(Cancelled):
        execute_stage(capture, STAGE, {**TINY, "max_frames": 3, "seed": 7}, sink=sink, cancel=cancel)
    run = next(p for p in capture.runs_dir.iterdir() if p.name.startswith("restyle-") and
               (read_status(p) or {}).get("state") == "interrupted")  # resumable: its keyframes are kept
    assert not (run / "restyle.mp4").exists()


def test_a_preset_whose_models_are_not_here_fails_with_a_dependency_error(sample_capture):
    _workspace, capture = sample_capture
    with pytest.raises(DependencyError, match="sdxl-controlnet-depth.*--download"):
        execute_stage(capture, STAGE, {**TINY, "preset": "sdxl-depth", "max_frames": 1})


@pytest.mark.parametrize("bad, where", [
    ({"seed": 10**400}, "seed"), ({"fps": float("nan")}, "fps"), ({"max_frames": -1}, "max_frames"),
    ({"prompt": 5}, "prompt"), ({"fidelity": float("inf")}, "fidelity"), ({"size": 10**6}, "size"),
    ({"mode": "melt"}, "mode"), ({"cross_frame": "yes"}, "cross_frame"),
    ({"mesh": "../../../etc/passwd"}, "mesh"),
])
def test_hostile_stage_options_are_one_error_naming_the_option_before_models_load(sample_capture, bad, where):
    from core.errors import ConfigError, InputError

    _workspace, capture = sample_capture
    with pytest.raises((ConfigError, InputError)) as err:
        execute_stage(capture, STAGE, {**TINY, **bad})
    assert err.value.where == where
