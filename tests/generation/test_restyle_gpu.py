"""Real weights on a GPU (opt in with -m gpu): the sd15-depth preset on the bundled sample.

The weights are never downloaded here: they must be in $SCANBRIDGE_MODELS/<name>/ (default
~/ScanBridge/models) or already in the Hugging Face cache; otherwise the test is skipped, saying so.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu


def test_real_sd15_depth_restyle_is_more_consistent_with_cross_frame_attention_and_warping(sample_capture):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from core.errors import DependencyError
    from generation.models import ModelRegistry, choose_runtime
    from generation.models.loader import load_restyle_pipeline
    from generation.models.runtime import free_gpu_bytes
    from generation.restyle.engine import RestyleSettings, restyle_frames
    from generation.restyle.frames import load_frames
    from generation.restyle.warp import warped_error

    _workspace, capture = sample_capture
    registry = ModelRegistry(Path(os.environ.get("SCANBRIDGE_MODELS", Path.home() / "ScanBridge" / "models")))
    runtime = choose_runtime("sd15", free_gpu_bytes(), 512)
    try:
        pipe = load_restyle_pipeline(registry.resolve("sd15", "sd15"),
                                     registry.resolve("sd15-controlnet-depth", "controlnet"), runtime)
    except DependencyError as e:
        pytest.skip(f"real weights are not on this machine: {e}")
    frames = load_frames(capture, 512, max_frames=8)
    views = [f.view for f in frames]
    common = {"prompt": "a bronze sculpture on a marble floor, studio light", "steps": 20, "strength": 0.6}
    started = time.perf_counter()
    per_frame = restyle_frames(pipe, frames, RestyleSettings(cross_frame=False, keyframe_every=1, **common))
    per_frame_s = (time.perf_counter() - started) / len(frames)
    ours = restyle_frames(pipe, frames, RestyleSettings(cross_frame=True, keyframe_every=2,
                                                        batch=runtime.batch, **common))
    baseline, consistent = warped_error(per_frame.frames, views), warped_error(ours.frames, views)
    print(f"sd15-depth 512px on {torch.cuda.get_device_name()}: {per_frame_s:.2f} s per keyframe; warped "
          f"error per-frame {baseline:.1f}, cross-frame + warping {consistent:.1f}, input "
          f"{warped_error([f.rgb for f in frames], views):.1f}")
    assert consistent < baseline
