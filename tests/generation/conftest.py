from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Any accidental hub call fails at once instead of downloading.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_sd15(tmp_path_factory) -> tuple[Path, Path]:
    """(base pipeline folder, depth ControlNet folder) of tiny random weights, saved once per session."""
    from tiny_models import save_tiny_sd15

    return save_tiny_sd15(tmp_path_factory.mktemp("tiny-sd15"))


@pytest.fixture(scope="session")
def sample_capture(tmp_path_factory, tiny_sd15):
    """The bundled sample capture (photos, depth, poses, masks) in a workspace whose settings point
    the sd15-depth preset's model names at the tiny weights."""
    from core.settings import Settings, save_settings
    from core.workspace import Workspace
    from recon.ingest import ingest
    from recon.sample import bundled_sample_dir

    base, controlnet = tiny_sd15
    workspace = Workspace(tmp_path_factory.mktemp("restyle-ws"))
    save_settings(workspace.settings_path,
                  Settings(model_paths={"sd15": str(base), "sd15-controlnet-depth": str(controlnet)}))
    return workspace, ingest(bundled_sample_dir(), workspace, name="sample")
