"""generation.models: names resolve to the user's folders or hub ids, weights load through the same
code as a user's, nothing is downloaded, and the runtime settings follow free GPU memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import ConfigError, DependencyError, InputError
from generation.models import LicenceLedger, ModelRegistry, RuntimeSettings, choose_runtime
from generation.models.loader import load_restyle_pipeline
from generation.models.runtime import GB, refuse_full_size_on_cpu

CPU = RuntimeSettings("cpu", "float32")


def _run(pipe, seed: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    image = rng.random((1, 32, 32, 3)).astype(np.float32)
    return pipe("a bronze statue", image=image, control_image=image, num_inference_steps=2, strength=0.8,
                height=32, width=32, output_type="np",
                generator=torch.Generator().manual_seed(seed)).images


def test_tiny_weights_saved_to_folders_load_through_the_registry_and_generate(tiny_sd15, tmp_path):
    base_dir, net_dir = tiny_sd15
    # One model by a registered folder (settings.json model_paths), one from <workspace>/models/<name>.
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "sd15-controlnet-depth").symlink_to(net_dir, target_is_directory=True)
    registry = ModelRegistry(models_dir, {"sd15": str(base_dir)})
    base = registry.resolve("sd15", "sd15")
    net = registry.resolve("sd15-controlnet-depth", "controlnet")
    assert base.local and base.location == str(base_dir.resolve())
    assert net.local and net.location == str(net_dir.resolve())
    assert "OpenRAIL" in base.licence  # the preset's licence follows the name to the user's folder
    pipe = load_restyle_pipeline(base, net, CPU)
    assert type(pipe).__name__ == "StableDiffusionControlNetImg2ImgPipeline"
    first, again, other = _run(pipe, 1), _run(pipe, 1), _run(pipe, 2)
    assert first.shape == (1, 32, 32, 3) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3


def test_a_model_that_is_not_on_the_machine_is_one_clear_error_without_downloading(tmp_path):
    registry = ModelRegistry(tmp_path / "models", {})
    base = registry.resolve("sd15", "sd15")
    net = registry.resolve("sd15-controlnet-depth", "controlnet")
    assert not base.local and base.location == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    with pytest.raises(DependencyError) as err:
        load_restyle_pipeline(base, net, CPU, models_dir=tmp_path / "models")
    message = str(err.value)
    assert message.startswith("sd15-controlnet-depth: ")  # the ControlNet loads first
    assert "lllyasviel/control_v11f1p_sd15_depth" in message
    assert str(tmp_path / "models" / "sd15-controlnet-depth") in message
    assert "--download" in message


def test_names_that_cannot_be_models_are_errors_naming_them(tmp_path):
    registry = ModelRegistry(tmp_path, {"mine": str(tmp_path / "gone")})
    with pytest.raises(InputError, match="gone"):
        registry.resolve("mine", "sd15")
    with pytest.raises(InputError, match="no such model folder"):
        registry.resolve(str(tmp_path / "nowhere"), "sd15")
    with pytest.raises(ConfigError, match="is a controlnet model"):
        registry.resolve("sd15-controlnet-depth", "sd15")
    with pytest.raises(ConfigError, match="hub id"):
        registry.resolve("not a model", "sd15")
    assert registry.resolve("someone/custom-sd", "sd15").location == "someone/custom-sd"


def test_each_licence_is_shown_once_before_first_use(tmp_path):
    registry = ModelRegistry(tmp_path, {})
    ledger = LicenceLedger(tmp_path / "licences-shown.json")
    models = [registry.resolve("sd15", "sd15"),
              registry.resolve("depth-anything-v2-small", "depth-estimator")]
    first = ledger.notices_to_show(models)
    assert len(first) == 2 and "CreativeML OpenRAIL-M" in first[0] and "Apache-2.0" in first[1]
    assert ledger.notices_to_show(models) == []
    assert len(ledger.notices_to_show([registry.resolve("sdxl", "sdxl")])) == 1


def test_runtime_settings_follow_free_gpu_memory():
    cpu = choose_runtime("sd15", None, 512)
    assert (cpu.device, cpu.dtype) == ("cpu", "float32")
    roomy = choose_runtime("sd15", 40 * GB, 512)  # 2.8 GB weights + 1 GB per 512px keyframe
    assert roomy.dtype == "float16" and roomy.batch == 4 and not roomy.cpu_offload
    tight = choose_runtime("sd15", int(4.1 * GB), 512)
    assert tight.attention_slicing and not tight.cpu_offload and tight.batch == 1
    small = choose_runtime("sdxl", 8 * GB, 1024)
    assert small.cpu_offload and small.vae_tiling
    with pytest.raises(DependencyError, match="not enough free GPU memory"):
        choose_runtime("sdxl", 2 * GB, 1024)


def test_a_full_size_model_on_the_cpu_is_refused_with_the_expected_time():
    with pytest.raises(DependencyError) as err:
        refuse_full_size_on_cpu(CPU, "sd15", 860_000_000, size=512, steps=20, frames=30, allow_cpu=False)
    # 8 s per 512px step (the stated CPU figure) x 20 steps x 30 keyframes = 80 minutes.
    assert "about 80 minutes" in str(err.value) and "--allow-cpu" in str(err.value)
    refuse_full_size_on_cpu(CPU, "sd15", 860_000_000, size=512, steps=20, frames=30, allow_cpu=True)
    refuse_full_size_on_cpu(CPU, "sd15", 1_000_000, size=512, steps=20, frames=30, allow_cpu=False)
    refuse_full_size_on_cpu(RuntimeSettings("cuda", "float16"), "sd15", 860_000_000, size=512, steps=20,
                            frames=30, allow_cpu=False)


def test_a_lora_without_peft_installed_is_a_dependency_error(tiny_sd15, tmp_path):
    import importlib.util

    if importlib.util.find_spec("peft") is not None:
        pytest.skip("peft is installed here; the error path is for machines without it")
    base_dir, net_dir = tiny_sd15
    registry = ModelRegistry(None, {"sd15": str(base_dir), "net": str(net_dir), "lora": str(tmp_path)})
    with pytest.raises(DependencyError, match="peft"):
        load_restyle_pipeline(registry.resolve("sd15", "sd15"), registry.resolve("net", "controlnet"), CPU,
                              lora=registry.resolve("lora", "lora"), scheduler="lcm")
