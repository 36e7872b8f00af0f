"""The Create panel over the real queue and worker: a prompt becomes a job with progress, whose model
(tiny random Shap-E weights from the registry) opens in the Result view; there, Make video queues a
clip job that Cancel stops."""

from __future__ import annotations

import sys
from pathlib import Path

from core.settings import Settings, save_settings
from core.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generation"))


def test_create_a_model_from_a_prompt_then_queue_and_cancel_its_video(make_app, qtbot, tmp_path):
    from tiny_models import save_tiny_shap_e

    ws = Workspace(tmp_path / "ws")
    save_settings(ws.settings_path, Settings(model_paths={"shap-e": str(save_tiny_shap_e(tmp_path / "se"))}))
    app = make_app(ws, start_worker=True)
    app.window.show_panel("Create")
    panel = app.window.create
    panel.create_button.click()
    assert "prompt" in panel.status.text()  # nothing to make yet: nothing queued
    assert app.services.jobs() == []
    panel.prompt.setText("a blue vase")
    panel.size.setValue(0.25)
    panel.steps.setValue(2)
    panel.grid.setValue(24)
    panel.detail.setCurrentText("preview")
    panel.create_button.click()
    qtbot.waitUntil(lambda: panel.job_id is not None, timeout=30000)
    assert not panel.create_button.isEnabled() and panel.cancel_button.isEnabled()
    job = app.services.job(panel.job_id)
    overrides = job.steps[0].config["overrides"]["create"]
    assert overrides["prompt"] == "a blue vase" and overrides["height_m"] == 0.25
    qtbot.waitUntil(lambda: app.window.current_panel() == "Result", timeout=600000)
    assert app.services.job(panel.job_id).state == "done" and panel.progress.value() == 100
    assert app.window.result_view.capture_id == panel.capture_id
    names = {r.path.name for r in app.services.result_files(panel.capture_id)}
    assert "model.usdz" in names

    app.window.result_view.video_button.click()
    qtbot.waitUntil(lambda: any(j.steps[0].stage == "video" for j in app.services.jobs()), timeout=30000)
    video = next(j for j in app.services.jobs() if j.steps[0].stage == "video")
    assert video.capture_id == panel.capture_id
    assert [s.stage for s in video.steps] == ["video", "video-publish"]
    app.services.cancel_job(video.id)
    qtbot.waitUntil(lambda: app.services.job(video.id).state == "cancelled", timeout=60000)
