"""The Restyle panel (real Qt offscreen): prompt, reference image and fidelity go into the same job the
CLI and the server queue; the job worker runs it (tiny random weights) and the after view shows the
result; Cancel stops a queued job."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.settings import Settings, save_settings
from desktop.panels.restyle import RestylePanel
from desktop.services import Services
from desktop.tasks import TaskRunner

GENERATION_TESTS = Path(__file__).resolve().parents[1] / "generation"
FAST = {"size": 64, "steps": 2, "max_frames": 2}


@pytest.fixture
def restyle_setup(sample_workspace, tmp_path, monkeypatch, qtbot):
    sys.path.insert(0, str(GENERATION_TESTS))
    from tiny_models import save_tiny_sd15

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    base, controlnet = save_tiny_sd15(tmp_path / "tiny")
    save_settings(sample_workspace.settings_path,
                  Settings(model_paths={"sd15": str(base), "sd15-controlnet-depth": str(controlnet)}))
    services = Services(sample_workspace)
    tasks = TaskRunner()
    panel = RestylePanel(services, tasks, extra_options=FAST)
    qtbot.addWidget(panel)
    capture_id = services.captures()[0].id
    panel.set_capture(capture_id)
    yield services, panel, capture_id
    services.stop_worker()
    tasks.wait()


def _started(panel) -> bool:
    return panel.job_id is not None


def test_restyle_runs_the_job_and_shows_before_and_after(restyle_setup, qtbot, tmp_path):
    services, panel, capture_id = restyle_setup
    assert not panel.before.pixmap().isNull()  # the capture's first photo
    reference = tmp_path / "look.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(reference)
    panel.prompt.setText("a bronze statue")
    panel.fidelity.setValue(85)
    panel.set_reference(reference)
    assert panel.reference_label.text() == "look.png"
    panel.set_reference(None)  # Clear: this job goes without one (no IP-Adapter in this workspace)
    panel.start.click()
    qtbot.waitUntil(lambda: _started(panel), timeout=30000)
    assert not panel.start.isEnabled() and panel.cancel.isEnabled()
    job = services.job(panel.job_id)
    assert [s.stage for s in job.steps] == ["restyle"]
    assert job.steps[0].config == {"prompt": "a bronze statue", "fidelity": 0.85, **FAST}
    with qtbot.waitSignal(panel.job_ended, timeout=240000) as ended:
        services.start_worker()
    assert ended.args == ["done"], services.job(panel.job_id).error
    assert panel.progress.value() == 100 and not panel.after.pixmap().isNull()
    assert panel.start.isEnabled() and not panel.cancel.isEnabled()


def test_cancel_stops_the_queued_job_and_the_reference_is_copied_into_the_capture(
        restyle_setup, qtbot, tmp_path):
    services, panel, capture_id = restyle_setup
    reference = tmp_path / "look.png"
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(reference)
    panel.prompt.setText("gold")
    panel.set_reference(reference)
    panel.start.click()
    qtbot.waitUntil(lambda: _started(panel), timeout=30000)
    config = services.job(panel.job_id).steps[0].config
    assert config["image"].startswith("references/")
    assert (services.capture(capture_id).root / config["image"]).read_bytes() == reference.read_bytes()
    with qtbot.waitSignal(panel.job_ended, timeout=30000) as ended:
        panel.cancel.click()
    assert ended.args == ["cancelled"] and services.job(panel.job_id).state == "cancelled"


def test_an_empty_prompt_queues_nothing(restyle_setup):
    services, panel, _capture_id = restyle_setup
    panel.start.click()
    assert "prompt" in panel.status.text() and panel.job_id is None and services.jobs() == []


def test_the_main_window_offers_restyle_for_the_open_capture(sample_workspace, make_app):
    app = make_app(sample_workspace)
    capture_id = app.services.captures()[0].id
    app.window.open_capture(capture_id)
    app.window.show_panel("Restyle")
    assert app.window.stack.currentWidget() is app.window.restyle
    assert app.window.restyle.capture_id == capture_id and not app.window.restyle.before.pixmap().isNull()
