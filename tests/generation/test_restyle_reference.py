"""Stylize by a reference image (IP-Adapter): a tiny random adapter and CLIP image encoder saved in the
hub's layout and loaded through the registry; the reference changes the result, the same reference
gives the same result, and the CLI copies the user's image into the capture."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from core.cli import common_parser
from core.errors import DependencyError, ScanBridgeError
from core.settings import Settings, load_settings, save_settings
from core.stages import execute_stage
from generation.models import ModelRegistry, RuntimeSettings
from generation.models.loader import load_ip_adapter, load_restyle_pipeline
from generation.restyle.cli import add_restyle_command
from generation.restyle.engine import RestyleSettings, restyle_frames
from generation.restyle.frames import load_frames
from generation.restyle.video import read_mp4

TINY = {"steps": 2, "strength": 0.75, "guidance": 2.0, "prompt": "a marble statue", "keyframe_every": 1}


@pytest.fixture(scope="module")
def ip_adapter_dir(sample_capture, tmp_path_factory):
    """The tiny adapter for the tiny UNet, registered in the sample workspace's settings."""
    from diffusers import UNet2DConditionModel
    from tiny_models import save_tiny_ip_adapter

    workspace, _capture = sample_capture
    paths = load_settings(workspace.settings_path).model_paths
    unet = UNet2DConditionModel.from_pretrained(paths["sd15"], subfolder="unet")
    folder = save_tiny_ip_adapter(tmp_path_factory.mktemp("ip-adapter"), unet)
    save_settings(workspace.settings_path, Settings(model_paths={**paths, "ip-adapter-sd15": str(folder)}))
    return folder


@pytest.fixture(scope="module")
def pipe_with_adapter(sample_capture, ip_adapter_dir):
    workspace, _capture = sample_capture
    registry = ModelRegistry(workspace.root / "models", load_settings(workspace.settings_path).model_paths)
    pipe = load_restyle_pipeline(registry.resolve("sd15", "sd15"),
                                 registry.resolve("sd15-controlnet-depth", "controlnet"),
                                 RuntimeSettings("cpu", "float32"))
    load_ip_adapter(pipe, registry.resolve("ip-adapter-sd15", "ip-adapter"), scale=1.0)
    return pipe


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)


def test_the_reference_image_steers_the_result_and_the_same_one_repeats_it(sample_capture, pipe_with_adapter):
    _workspace, capture = sample_capture
    frames = load_frames(capture, 64, max_frames=2)
    settings = RestyleSettings(**TINY)
    first = restyle_frames(pipe_with_adapter, frames, settings, reference=_image(1)).frames
    again = restyle_frames(pipe_with_adapter, frames, settings, reference=_image(1)).frames
    other = restyle_frames(pipe_with_adapter, frames, settings, reference=_image(2)).frames
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    differences = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(first, other, strict=True)]
    assert min(differences) > 0.1, differences  # the same reference differs by exactly 0


def test_a_missing_ip_adapter_is_one_clear_error(sample_capture, pipe_with_adapter, tmp_path):
    registry = ModelRegistry(tmp_path / "models")  # nothing registered, downloads off
    with pytest.raises(DependencyError) as err:
        load_ip_adapter(pipe_with_adapter, registry.resolve("ip-adapter-sd15", "ip-adapter"),
                        models_dir=registry.models_dir)
    assert err.value.where == "ip-adapter-sd15"
    message = str(err.value)
    assert str(tmp_path / "models" / "ip-adapter-sd15") in message and "downloads are off" in message


def test_restyle_with_image_copies_the_reference_into_the_capture(sample_capture, ip_adapter_dir, tmp_path):
    workspace, capture = sample_capture
    reference = tmp_path / "look.png"
    Image.fromarray(_image(5)).save(reference)
    out = tmp_path / "ref.mp4"
    parser = argparse.ArgumentParser(prog="scanbridge")
    add_restyle_command(parser.add_subparsers(dest="command", required=True), common_parser())
    args = parser.parse_args(["restyle", capture.id, "--workspace", str(workspace.root), "--prompt", "gold",
                              "--image", str(reference), "-o", str(out), "--size", "64", "--max-frames", "2",
                              "--steps", "2", "--seed", "4"])
    assert args.func(args) == 0
    assert len(read_mp4(out)) == 2
    stored = list((capture.root / "references").iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == reference.read_bytes()
    runs = [p for p in capture.runs_dir.iterdir() if p.name.startswith("restyle-")
            and json.loads((p / "config.json").read_text())["config"]["image"]]
    assert [json.loads((p / "config.json").read_text())["config"]["image"] for p in runs] == [
        f"references/{stored[0].name}"]


@pytest.mark.parametrize("image", ["../../../etc/passwd", "/etc/hostname", "references/none.png"])
def test_a_reference_outside_the_capture_or_missing_is_refused(sample_capture, ip_adapter_dir, image):
    _workspace, capture = sample_capture
    with pytest.raises(ScanBridgeError) as err:
        execute_stage(capture, "restyle", {"prompt": "x", "image": image, "size": 64, "steps": 2,
                                           "max_frames": 1})
    assert image in str(err.value) or err.value.where in (image, "image")
