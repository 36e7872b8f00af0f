"""The Jobs view shows the selected job's training while it runs: the PSNR curve from its metric
events and the latest preview render, both arriving from a stage child process through the
real queue and worker (the stage reports like the neural stages, through recon.training_preview)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from training_stage_for_tests import preview_color, psnr_at

from core.jobs import JobEvent, Step

TRAIN = "training_stage_for_tests:TRAIN"
HERE = Path(__file__).resolve().parent


@pytest.fixture
def training_stage_importable(monkeypatch, child_pythonpath):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ["PYTHONPATH"]]))


def test_psnr_curve_and_preview_refresh_while_the_job_trains(sample_workspace, make_app, qtbot, tmp_path,
                                                             training_stage_importable):
    (capture,) = sample_workspace.captures()
    hold = tmp_path / "hold"
    hold.write_text("the stage waits at step 10 while this file exists")
    app = make_app(sample_workspace, start_worker=True)
    panel = app.window.jobs
    job = app.services.submit(capture.id, [Step(TRAIN, {"steps": 20, "hold_at": 10, "hold_file": str(hold)})])
    app.window.show_panel("Jobs")
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1, timeout=30000)
    panel.select_job(job.id)
    view = panel.training
    try:
        # While it trains (held at step 10): steps 1..10 on the curve, the step-10 preview shown.
        qtbot.waitUntil(lambda: len(view.points) == 10 and view.preview_step == 10, timeout=90000)
        assert app.services.job(job.id).state == "running"
        assert view.points == [(s, psnr_at(s)) for s in range(1, 11)]
        assert view.curve.points == view.points
        image = view.preview.pixmap().toImage()
        pixel = image.pixelColor(image.width() // 2, image.height() // 2)
        assert (pixel.red(), pixel.green(), pixel.blue()) == preview_color(10)
        assert "step 10, PSNR 15.00 dB" in view.title.text()
        assert view.preview_file.is_relative_to(capture.root.resolve())
        assert view.curve.grab().toImage().width() > 0  # it paints
    finally:
        hold.unlink()
    qtbot.waitUntil(lambda: len(view.points) == 20 and view.preview_step == 20, timeout=90000)
    assert view.points[-1] == (20, psnr_at(20))
    qtbot.waitUntil(lambda: app.services.job(job.id).state == "done", timeout=60000)


def test_a_preview_outside_the_capture_is_not_shown_and_another_job_starts_clean(qtbot, tmp_path):
    from desktop.panels.training import TrainingPanel

    view = TrainingPanel()
    qtbot.addWidget(view)
    capture = tmp_path / "captures" / "cap"
    capture.mkdir(parents=True)
    secret = tmp_path / "secret.png"
    from PySide6.QtGui import QImage

    QImage(4, 4, QImage.Format.Format_RGB32).save(str(secret))

    def event(kind, **kw):
        return JobEvent(id=None, job_id=1, step_index=0, kind=kind, stage="splat", fraction=None, eta_s=None,
                        message="", level="info", time=0.0, **kw)

    view.add_events([event("preview", step=5, path="../../secret.png"),
                     event("metric", step=5, values={"psnr": 12.0}),
                     event("metric", step=6, values={"loss": 0.1}),
                     event("metric", step=7, values={"psnr": float("nan")})], capture)
    assert view.preview_step is None and view.preview.pixmap().isNull()
    assert view.points == [(5, 12.0)]
    # A resumed attempt reports from its checkpoint again: the curve continues, no step twice.
    view.add_events([event("metric", step=4, values={"psnr": 11.0}),
                     event("metric", step=5, values={"psnr": 12.5})], capture)
    assert view.points == [(4, 11.0), (5, 12.5)]
    view.clear()
    assert view.points == [] and view.curve.points == [] and "nothing reported" in view.title.text()
