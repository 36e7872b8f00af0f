"""The SDXL family goes through the same registry, loader and engine (tiny random weights)."""

from __future__ import annotations

import cv2
import numpy as np

from generation.models import ModelRegistry, RuntimeSettings
from generation.models.loader import load_restyle_pipeline, mode_pipeline
from generation.restyle.engine import RestyleSettings, restyle_frames
from generation.restyle.frames import RestyleFrame
from recon.sample import render_orbit


def test_tiny_sdxl_weights_restyle_in_both_modes_with_cross_frame_batches(tmp_path):
    from tiny_models import save_tiny_sdxl

    base, net = save_tiny_sdxl(tmp_path)
    registry = ModelRegistry(None, {"sdxl": str(base), "sdxl-controlnet-depth": str(net)})
    pipe = load_restyle_pipeline(registry.resolve("sdxl", "sdxl"),
                                 registry.resolve("sdxl-controlnet-depth", "controlnet"),
                                 RuntimeSettings("cpu", "float32"))
    assert type(pipe).__name__ == "StableDiffusionXLControlNetImg2ImgPipeline"
    views = render_orbit(12, (64, 48), elevations_deg=(25.0,))[:3]
    frames = [RestyleFrame(str(i), v.rgb, v.camera, v.depth_m, v.c2w, v.mask) for i, v in enumerate(views)]
    common = {"prompt": "a glass sculpture", "steps": 2, "strength": 0.75, "guidance": 2.0}
    styled = restyle_frames(pipe, frames, RestyleSettings(keyframe_every=2, batch=2, **common))
    assert styled.keyframes == [0, 2] and all(f.shape == (48, 64, 3) for f in styled.frames)
    masked = restyle_frames(mode_pipeline(pipe, "sdxl", "mask"), frames,
                            RestyleSettings(mode="mask", **common))
    for frame, out in zip(frames, masked.frames, strict=True):
        far = cv2.dilate(frame.mask.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0  # past the soft edge
        assert np.abs(out.astype(int) - frame.rgb)[far].max() <= 1
