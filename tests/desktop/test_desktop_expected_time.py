"""The Capture view's Process box says what the chosen method is expected to take on this
machine at the chosen detail, or that it would be refused here, before anything is queued."""

from __future__ import annotations

import re

import pytest
import torch


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU figures apply without a CUDA GPU")
def test_the_process_box_shows_the_expected_time_or_the_refusal(sample_workspace, make_app, qtbot):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace)
    view = app.window.capture_view
    app.window.open_capture(capture.id)
    qtbot.waitUntil(lambda: view.details is not None, timeout=60000)
    view.method.setCurrentText("splat")
    view.detail.setCurrentText("preview")
    assert view.expected.isVisibleTo(view)
    assert re.match(r"Expected: about \d+ (s|min) on this machine's CPU \(300 steps", view.expected.text())
    view.detail.setCurrentText("full")
    refused = view.expected.text()
    assert re.match(r"Expected: refused here: splatting at 'full' detail on this CPU would take "
                    r"about \d+ days", refused) and "--detail preview (about" in refused
    view.method.setCurrentText("nerf")
    view.detail.setCurrentText("preview")
    assert view.expected.text().startswith("Expected: about 18 min on this machine's CPU")
    tip = view.method.itemData(view.method.findText("nerf"), 3)  # Qt.ToolTipRole
    assert "preview: about 18 min" in tip and "full: refused here:" in tip
    view.method.setCurrentText("auto")  # the classic methods give no estimate
    assert view.expected.text() == "" and not view.expected.isVisibleTo(view)
    assert app.services.jobs() == []
