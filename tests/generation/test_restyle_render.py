"""Render mode: a finished look drawn from the geometry alone (depth), never from the photos."""

from __future__ import annotations

import dataclasses

import numpy as np

from generation.models import ModelRegistry, RuntimeSettings
from generation.models.loader import load_restyle_pipeline, mode_pipeline
from generation.restyle.engine import RestyleSettings, restyle_frames
from generation.restyle.frames import RestyleFrame
from recon.sample import render_orbit


def test_render_mode_draws_from_depth_and_ignores_the_photos(tiny_sd15):
    base, net = tiny_sd15
    registry = ModelRegistry(None, {"sd15": str(base), "sd15-controlnet-depth": str(net)})
    pipe = load_restyle_pipeline(registry.resolve("sd15", "sd15"),
                                 registry.resolve("sd15-controlnet-depth", "controlnet"),
                                 RuntimeSettings("cpu", "float32"))
    render = mode_pipeline(pipe, "sd15", "render")
    assert type(render).__name__ == "StableDiffusionControlNetPipeline"
    views = render_orbit(12, (64, 48), elevations_deg=(25.0,))[:1]
    frames = [RestyleFrame(str(i), v.rgb, v.camera, v.depth_m, v.c2w) for i, v in enumerate(views)]
    settings = RestyleSettings(prompt="a clay model", mode="render", steps=2, guidance=2.0)
    drawn = restyle_frames(render, frames, settings)
    blank = [dataclasses.replace(f, rgb=np.zeros_like(f.rgb)) for f in frames]
    np.testing.assert_array_equal(restyle_frames(render, blank, settings).frames[0], drawn.frames[0])
    flat = [dataclasses.replace(f, depth=np.full_like(f.depth, 0.6)) for f in frames]
    assert np.abs(restyle_frames(render, flat, settings).frames[0].astype(int) - drawn.frames[0]).mean() > 0.1
