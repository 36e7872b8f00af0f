"""Per-keyframe resume: a restyle run cancelled after some keyframes keeps them in its checkpoint
folder; run again, it diffuses only the remaining keyframes (pipeline calls counted) and its frames
equal those of a run that was never interrupted."""

from __future__ import annotations

import re

import diffusers
import numpy as np
import pytest
from PIL import Image

from core.errors import Cancelled
from core.progress import CancelToken
from core.stages import execute_stage, read_status
from generation.restyle.stage import STAGE

CONFIG = {"size": 64, "steps": 2, "strength": 0.75, "guidance": 2.0, "prompt": "a bronze statue",
          "max_frames": 5, "keyframe_every": 1, "seed": 21}


@pytest.fixture
def counted_calls(monkeypatch):
    """How many times the img2img pipeline is called, and with which frames each time."""
    cls = diffusers.StableDiffusionControlNetImg2ImgPipeline
    real = cls.__call__
    calls: list[int] = []

    def counting(self, *args, **kwargs):
        calls.append(len(kwargs["prompt"]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", counting)
    return calls


def _frames(run_dir) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted((run_dir / "frames").glob("*.png"))]


def test_a_cancelled_restyle_resumes_with_only_the_remaining_keyframes(sample_capture, counted_calls):
    _workspace, capture = sample_capture
    cancel = CancelToken()

    def sink(event):  # cancel once two keyframes are finished (and checkpointed)
        if event.kind == "progress" and (event.message or "").startswith("keyframe 2/"):
            cancel.cancel()

    with pytest.raises(Cancelled):
        execute_stage(capture, STAGE, CONFIG, sink=sink, cancel=cancel)
    assert len(counted_calls) == 2
    # this run: the newest interrupted restyle run (the capture is shared with other tests' runs,
    # restyle-asset ones included)
    run = max((p for p in capture.runs_dir.iterdir() if re.fullmatch(r"restyle-[0-9a-f]+", p.name) and
               (read_status(p) or {}).get("state") == "interrupted"), key=lambda p: p.stat().st_mtime_ns)
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step-000000002"

    counted_calls.clear()
    resumed = execute_stage(capture, STAGE, CONFIG)
    assert resumed.run_dir == run and read_status(run)["attempt"] == 2
    assert len(counted_calls) == 3  # keyframes 3, 4 and 5 only
    assert "resuming: 2 keyframe(s) were finished before" in (run / "log.txt").read_text()

    counted_calls.clear()
    whole = execute_stage(capture, STAGE, {**CONFIG, "fps": 10.0})  # same frames, another run folder
    assert whole.run_dir != run and len(counted_calls) == 5
    for a, b in zip(_frames(run), _frames(whole.run_dir), strict=True):
        np.testing.assert_array_equal(a, b)
