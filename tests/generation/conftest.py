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
