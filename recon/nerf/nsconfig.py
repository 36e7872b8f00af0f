"""nerfstudio's nerfacto method config, set up for a stage child: no viewer, no wandb, no eval,
no network, a fixed run folder; the same config builds the model for training and for loading."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

NS_DIR = "nerfstudio"
# nerfacto scaled down for a CPU: a 2^15 hash table over 8 levels, fewer samples per ray. The
# stock sizes (2^19 x 16 levels, 256/96/48 samples) spend seconds per step in Adam alone there.
SMALL_MODEL: dict[str, Any] = {
    "num_levels": 8, "log2_hashmap_size": 15, "max_res": 512, "hidden_dim": 32, "hidden_dim_color": 32,
    "num_proposal_samples_per_ray": (64, 32), "num_nerf_samples_per_ray": 32, "appearance_embed_dim": 8,
    "proposal_net_args_list": [
        {"hidden_dim": 16, "log2_hashmap_size": 14, "num_levels": 5, "max_res": 64, "use_linear": False},
        {"hidden_dim": 16, "log2_hashmap_size": 14, "num_levels": 5, "max_res": 128, "use_linear": False},
    ],
}  # inside the run folder: <run>/nerfstudio/nerf/nerfacto/run


@dataclass(frozen=True)
class TrainSettings:
    """What one training run uses (resolved from the stage config and the machine)."""

    steps: int  # the planned final step count (a resumed run ends at the same one)
    rays_per_batch: int
    device: str  # cpu | cuda | mps
    seed: int = 0
    camera_optimizer: str = "off"  # off | SO3xR3
    checkpoint_every: int = 500
    cpu_threads: int = 0  # torch threads on a CPU; 0 = torch's default (one per core)
    small_model: bool = False  # a CPU-sized nerfacto (SMALL_MODEL) instead of the stock sizes


def use_threads(settings: TrainSettings) -> None:
    """Threads for this (child) process; a busy machine trains far faster on fewer."""
    if settings.device == "cpu" and settings.cpu_threads > 0:
        torch.set_num_threads(settings.cpu_threads)


def tcnn_available() -> bool:
    """tiny-cuda-nn imports (it needs CUDA at import, so only ask where there is a GPU)."""
    if not torch.cuda.is_available() or importlib.util.find_spec("tinycudann") is None:
        return False
    try:
        import tinycudann  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        return False
    return True


class _NoLPIPS(torch.nn.Module):
    """Stands in for torchmetrics' LPIPS, whose AlexNet would be downloaded at model build."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a.new_zeros(())


@contextlib.contextmanager
def no_lpips_download() -> Iterator[None]:
    """While models are built, LPIPS is a no-op (only nerfstudio's eval uses it; ours is off)."""
    import torchmetrics.image.lpip as lpip

    original = lpip.LearnedPerceptualImagePatchSimilarity
    lpip.LearnedPerceptualImagePatchSimilarity = _NoLPIPS  # populate_modules imports it from here
    try:
        yield
    finally:
        lpip.LearnedPerceptualImagePatchSimilarity = original


def nerfacto_method_config() -> Any:
    """nerfstudio 1.1.5's ``method_configs["nerfacto"]``, built here: importing method_configs
    scans every installed external method with inspect.stack(), about 45 s on a busy machine."""
    from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
    from nerfstudio.configs.base_config import ViewerConfig
    from nerfstudio.data.datamanagers.parallel_datamanager import ParallelDataManagerConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.engine.optimizers import AdamOptimizerConfig
    from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
    from nerfstudio.engine.trainer import TrainerConfig
    from nerfstudio.models.nerfacto import NerfactoModelConfig
    from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

    def adam(lr: float, lr_final: float, max_steps: int) -> dict[str, Any]:
        return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=lr_final, max_steps=max_steps)}

    return TrainerConfig(
        method_name="nerfacto", steps_per_eval_batch=500, steps_per_save=2000, max_num_iterations=30000,
        mixed_precision=True,
        pipeline=VanillaPipelineConfig(
            datamanager=ParallelDataManagerConfig(
                dataparser=NerfstudioDataParserConfig(), train_num_rays_per_batch=4096,
                eval_num_rays_per_batch=4096),
            model=NerfactoModelConfig(eval_num_rays_per_chunk=1 << 15, average_init_density=0.01,
                                      camera_optimizer=CameraOptimizerConfig(mode="SO3xR3")),
        ),
        optimizers={"proposal_networks": adam(1e-2, 1e-4, 200000), "fields": adam(1e-2, 1e-4, 200000),
                    "camera_opt": adam(1e-3, 1e-4, 5000)},
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15), vis="viewer",
    )


def trainer_config(data_dir: Path, out_dir: Path, settings: TrainSettings) -> Any:
    """nerfacto's TrainerConfig for ``data_dir``/transforms.json, writing under ``out_dir``."""
    from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
    from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig

    cfg = nerfacto_method_config()
    cfg.output_dir = out_dir / NS_DIR
    cfg.experiment_name = "nerf"
    cfg.timestamp = "run"
    cfg.vis = "tensorboard"  # the default "viewer" starts a web server; wandb needs the network
    cfg.viewer.quit_on_train_completion = True
    cfg.viewer.make_share_url = False
    cfg.logging.local_writer.enable = False  # its rich table would fill the log
    cfg.steps_per_eval_batch = cfg.steps_per_eval_image = cfg.steps_per_eval_all_images = 0
    cfg.steps_per_save = settings.checkpoint_every
    cfg.save_only_latest_checkpoint = True
    cfg.max_num_iterations = settings.steps
    cfg.machine.device_type = settings.device
    cfg.machine.seed = settings.seed
    cfg.data = data_dir

    old = cfg.pipeline.datamanager
    parser = old.dataparser
    parser.data = data_dir
    parser.eval_mode = "all"  # every photo trains; nothing held out
    parser.downscale_factor = 1  # data.py already downscaled; nerfstudio would write images_N/ folders
    if settings.device != "cuda":  # its worker process only pays off feeding a GPU
        cfg.pipeline.datamanager = VanillaDataManagerConfig(dataparser=parser)
    dm = cfg.pipeline.datamanager
    dm.data = data_dir
    dm.train_num_rays_per_batch = settings.rays_per_batch
    dm.eval_num_rays_per_batch = settings.rays_per_batch

    model = cfg.pipeline.model
    model.implementation = "tcnn" if settings.device == "cuda" and tcnn_available() else "torch"
    # The mesh is fused at the given poses and the texture baked from the photos at them, so the
    # model must not move the cameras unless asked.
    model.camera_optimizer = CameraOptimizerConfig(mode=settings.camera_optimizer)
    if settings.small_model:
        for key, value in SMALL_MODEL.items():
            setattr(model, key, copy.deepcopy(value))
    model.eval_num_rays_per_chunk = 1 << 12 if settings.device == "cpu" else 1 << 15
    return cfg
