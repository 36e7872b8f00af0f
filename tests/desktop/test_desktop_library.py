"""Library and capture view with real Qt over a workspace holding the ingested bundled sample."""

from __future__ import annotations

import shutil

import numpy as np

from core.capture import CaptureFolder


def test_library_shows_captures_with_real_thumbnails(sample_workspace, make_app, qtbot):
    app = make_app(sample_workspace)
    library = app.window.library
    (capture,) = sample_workspace.captures()
    qtbot.waitUntil(lambda: library.capture_ids() == [capture.id], timeout=15000)
    qtbot.waitUntil(lambda: library.thumbnail_count() == 1, timeout=15000)
    item = library.grid.item(0)
    assert "Sample object" in item.text() and "24 frames" in item.text() and "ingested" in item.text()
    # The icon is the capture's first image, not a placeholder tile: it has the image's colours.
    image = item.icon().pixmap(200, 150).toImage()
    first = CaptureFolder(capture.root).load().frames[0].image
    assert image.width() >= 150 and not image.isNull()
    colours = {image.pixelColor(x, y).name() for x in range(0, image.width(), 7)
               for y in range(0, image.height(), 7)}
    assert len(colours) > 50, f"thumbnail of {first} looks flat"


def test_import_appears_in_the_library_and_errors_are_notified(sample_workspace, make_app, qtbot, tmp_path):
    app = make_app(sample_workspace)
    library, notifier = app.window.library, app.ctx.notifier
    (capture,) = sample_workspace.captures()
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((capture.root / "images").iterdir())[:5]:
        shutil.copy(p, photos / p.name)
    library.import_path(photos)  # what a drop or the file dialog calls
    qtbot.waitUntil(lambda: len(library.capture_ids()) == 2, timeout=30000)
    assert any("Imported photos" in t for t in notifier.texts("success"))
    new_id = next(i for i in library.capture_ids() if i != capture.id)
    assert sample_workspace.capture(new_id).load().frames.__len__() == 5
    assert not library.progress.isVisible()

    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture")
    library.import_path(bad)
    qtbot.waitUntil(lambda: bool(notifier.texts("error")), timeout=30000)
    assert "notes.txt" in notifier.texts("error")[0]
    assert len(sample_workspace.captures()) == 2  # nothing half-written

    library.rename(new_id, "Five photos")
    qtbot.waitUntil(lambda: any("Five photos" in library.grid.item(i).text()
                                for i in range(library.grid.count())), timeout=15000)
    library.delete(new_id)
    qtbot.waitUntil(lambda: library.capture_ids() == [capture.id], timeout=15000)
    assert not (sample_workspace.captures_dir / new_id).exists()


def test_capture_view_shows_frames_flags_coverage_and_cameras(sample_workspace, make_app, qtbot):
    (capture,) = sample_workspace.captures()
    # A poses run that registered all but one frame (as the poses stage writes it).
    manifest = capture.load()
    run = capture.runs_dir / "poses-test"
    run.mkdir(parents=True)
    frames = [{"id": f.id, "image": f.image, "c2w": [list(r) for r in f.pose],
               "camera": {"width": f.camera.width, "height": f.camera.height, "fx": f.camera.fx,
                          "fy": f.camera.fy}} for f in manifest.frames[1:]]
    reason = "too few matches: best image pair has 3 inlier matches (< 15)"
    (run / "poses.json").write_text(__import__("json").dumps(
        {"registered": 23, "total": 24, "unregistered": {manifest.frames[0].id: reason}, "frames": frames}))
    (run / "status.json").write_text('{"state": "done", "ended": 1.0}')
    blurred = capture.path(manifest.frames[5].image)
    import cv2

    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(blurred)), (0, 0), 6))
    app = make_app(sample_workspace)
    view = app.window.capture_view
    app.window.open_capture(capture.id)
    assert app.window.current_panel() == "Capture"
    qtbot.waitUntil(lambda: view.strip.count() == 24, timeout=30000)
    first = view.strip.item(0)
    assert "unregistered" in first.text() and reason in first.toolTip()
    assert "blurry" in view.strip.item(5).text() and "blurry" in view.strip.item(5).toolTip()
    assert all("ok" in view.strip.item(i).text() for i in range(1, 24) if i != 5)
    assert "1 unregistered" in view.subtitle.text() and "1 blurry" in view.subtitle.text()
    grid = view.coverage.grid
    assert grid.sum() == 23 and (grid > 0).sum() >= 20  # two rings of views around the object
    with qtbot.waitSignal(view.viewer.rendered, timeout=30000):
        pass
    rendered = view.viewer.last_render
    assert rendered is not None and len(rendered.lines) == 23 * 8  # a frustum per registered frame
    assert rendered.line_flags.sum() == 8  # the blurry frame's is drawn in the warning colour
    assert np.isfinite(rendered.lines).all()
