"""The create stage's GPU path (float16 Shap-E and score distillation on CUDA), with tiny weights."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_create_runs_on_the_gpu_in_float16(tmp_path, tiny_sd15):
    from tiny_models import save_tiny_shap_e

    from core.cli import main
    from core.settings import Settings, save_settings
    from core.workspace import Workspace
    from recon.export.inspect import inspect_usdz

    ws = Workspace(tmp_path / "ws")
    save_settings(ws.settings_path, Settings(gpu="0", model_paths={
        "shap-e": str(save_tiny_shap_e(tmp_path / "shap-e")), "sd15": str(tiny_sd15[0])}))
    out = tmp_path / "m.usdz"
    assert main(["create", "--workspace", str(ws.root), "--prompt", "a cup", "--steps", "2", "--grid", "32",
                 "--refine-steps", "4", "--detail", "preview", "-o", str(out)]) == 0
    assert inspect_usdz(out).triangle_count > 0
