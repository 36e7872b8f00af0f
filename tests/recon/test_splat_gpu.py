"""The CUDA path: gsplat's rasterization over the same parameters as the plain-torch one.
GPU tests are opt-in (-m gpu); the missing-toolkit error runs everywhere."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (none visible to torch)")


def test_without_nvcc_the_cuda_backend_is_one_dependency_error_naming_it():
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH")}
    env["PATH"] = str(Path(sys.executable).parent) + ":/usr/bin:/bin"  # no CUDA toolkit on it
    env["PYTHONPATH"] = str(REPO)
    code = ("from core.errors import DependencyError\n"
            "from recon.splat.backend import gsplat_kernels\n"
            "try:\n    gsplat_kernels()\nexcept DependencyError as e:\n    print('ERROR', e)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert "ERROR gsplat:" in done.stdout, (done.stdout, done.stderr[-2000:])
    assert "nvcc" in done.stdout and "--detail preview" in done.stdout


@pytest.mark.gpu
@needs_cuda
def test_gsplat_and_our_rasterizer_render_the_same_parameters_alike():
    from recon.splat.backend import gsplat_kernels, gsplat_rasterize
    from recon.splat.gaussians import init_params
    from recon.splat.raster import rasterize

    gsplat_kernels()
    g = torch.Generator().manual_seed(0)
    means = (torch.rand(200, 3, generator=g) - 0.5) * 0.4
    params = init_params(means.numpy(), torch.rand(200, 3, generator=g).numpy(), sh_degree=1)
    params["opacity_logits"] = torch.randn(200, generator=g)
    viewmat = torch.eye(4)
    viewmat[2, 3] = 1.0
    K = torch.tensor([[60.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]])
    bg = torch.tensor([0.1, 0.2, 0.3])
    ours = rasterize(params, viewmat, K, 64, 48, bg)
    cuda = {k: v.cuda() for k, v in params.items()}
    theirs = gsplat_rasterize(cuda, viewmat.cuda(), K.cuda(), 64, 48, bg.cuda())
    diff = (ours.rgb - theirs.rgb.cpu()).abs()
    assert float(diff.mean()) < 0.01 and float(diff.max()) < 0.1
    covered = ours.alpha > 0.5
    assert np.allclose(ours.depth[covered].numpy(), theirs.depth.cpu()[covered].numpy(), rtol=0.02)


@pytest.mark.gpu
@needs_cuda
def test_splat_stage_trains_on_cuda(tmp_path):
    from core.stages import execute_stage
    from core.workspace import Workspace
    from recon.ingest import ingest
    from recon.sample.dataset import write_capture_folder
    from recon.sample.scene import render_orbit

    views = render_orbit(16, (160, 120), elevations_deg=(20.0, 45.0), radius_m=0.55)
    src = write_capture_folder(views, tmp_path / "src", with_depth=True)
    capture = ingest(src, Workspace(tmp_path / "ws"))
    outcome = execute_stage(capture, "splat", {"device": "cuda", "detail": "preview", "max_side": 160,
                                               "steps": 1000})
    history = outcome.result["heldout_psnr"]
    assert outcome.result["device"] == "cuda" and history[-1][1] - history[0][1] >= 6.0, history
    assert (outcome.run_dir / "mesh.ply").is_file() and (outcome.run_dir / "splat.ply").is_file()
