"""The Capture view's "Complete from this frame": it queues the mcc method on the selected frame,
and is off for a capture without depth."""

from __future__ import annotations

from core.workspace import Workspace
from recon.mcc.sample import generated_view_images, write_generated_capture


def test_complete_from_this_frame_queues_mcc_on_the_selected_frame(tmp_path, make_app, qtbot):
    ws = Workspace(tmp_path / "ws")
    capture = write_generated_capture(ws, generated_view_images(seed=5, size=96), name="mug")
    app = make_app(ws)  # no worker: the job stays queued, as the user would see it
    view = app.window.capture_view
    app.window.open_capture(capture.id)
    qtbot.waitUntil(lambda: view.details is not None and view.strip.count() == 1, timeout=60000)
    assert not view.complete_button.isEnabled()  # no frame selected yet
    view.strip.setCurrentRow(0)
    qtbot.waitUntil(view.complete_button.isEnabled, timeout=10000)
    view.complete_button.click()
    qtbot.waitUntil(lambda: len(app.services.jobs()) == 1, timeout=10000)
    (job,) = app.services.jobs()
    plan = next(s for s in job.steps if s.stage == "plan")
    assert plan.config["method"] == "mcc"
    assert plan.config["overrides"] == {"mcc": {"frame": 0}}


def test_complete_is_off_for_a_capture_without_depth(sample_workspace, make_app, qtbot):
    (capture,) = sample_workspace.captures()
    manifest = capture.load()
    if any(f.depth for f in manifest.frames):  # the bundled sample: make it photos only
        import dataclasses

        capture.save(dataclasses.replace(manifest, frames=tuple(
            dataclasses.replace(f, depth=None, confidence=None) for f in manifest.frames)))
    app = make_app(sample_workspace)
    view = app.window.capture_view
    app.window.open_capture(capture.id)
    qtbot.waitUntil(lambda: view.details is not None and view.strip.count() > 0, timeout=60000)
    view.strip.setCurrentRow(0)
    qtbot.wait(200)
    assert not view.complete_button.isEnabled()
    assert "depth" in view.complete_button.toolTip()
