"""Small things a new user meets on the first day (issue 9): banners that float instead of
pushing the panels, Pair that says the server is off, a coverage line that is not cut, an empty
library that offers the sample, and ``scanbridge app --host/--no-mdns``."""

from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QPushButton, QWidget

from core.workspace import Workspace


def place(widget, window) -> tuple[int, int, int, int]:
    top_left = widget.mapTo(window, QPoint(0, 0))
    return top_left.x(), top_left.y(), widget.width(), widget.height()


def test_banners_do_not_move_the_panels(sample_workspace, make_app, qtbot):
    app = make_app(sample_workspace)
    window, notifier = app.window, app.ctx.notifier
    qtbot.waitUntil(lambda: window.library.grid.count() == 1, timeout=30000)
    qtbot.wait(100)
    before = place(window.stack, window), place(window.library.open_button, window)
    notifier.notify("Imported a long folder name " * 4, "success")
    notifier.notify("Capture server: cannot listen on 0.0.0.0:8443", "error")
    qtbot.wait(100)
    banners = [b for b in notifier.findChildren(QWidget, "banner") if b.isVisible()]
    assert len(banners) == 2
    for banner in banners:  # on screen, inside the window
        x, y, w, h = place(banner, window)
        assert 0 <= x and x + w <= window.width() and 0 <= y and y + h <= window.height() and h > 10
    assert (place(window.stack, window), place(window.library.open_button, window)) == before
    for banner in banners:
        banner.findChild(QPushButton).click()  # ×
    qtbot.waitUntil(lambda: not [b for b in notifier.findChildren(QWidget, "banner") if b.isVisible()],
                    timeout=5000)
    qtbot.wait(100)
    assert (place(window.stack, window), place(window.library.open_button, window)) == before


def test_pair_says_the_server_is_off_instead_of_showing_a_qr(sample_workspace, make_app, qtbot):
    app = make_app(sample_workspace)  # no server
    panel = app.window.devices
    assert not panel.pair_button.isEnabled() and "off" in panel.pair_button.toolTip()
    assert panel.open_pairing() is None and panel.pair_dialog is None
    assert any("capture server is off" in t for t in app.ctx.notifier.texts("warning"))
    assert panel.server_label.text().startswith("Capture server: off")


def test_pair_is_offered_once_the_server_runs(sample_workspace, make_app, qtbot):
    app = make_app(sample_workspace, start_server=True)
    panel = app.window.devices
    qtbot.waitUntil(lambda: panel.pair_button.isEnabled(), timeout=30000)
    dialog = panel.open_pairing()
    assert dialog is not None and dialog.pairing.url.startswith(app.services.server_url)
    dialog.reject()


def test_coverage_line_is_whole_at_the_default_window_size(sample_workspace, make_app, qtbot):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace)
    app.window.resize(1280, 800)  # what `scanbridge app` opens with
    app.window.open_capture(capture.id)
    view = app.window.capture_view
    qtbot.waitUntil(lambda: view.details is not None, timeout=60000)
    qtbot.wait(200)
    label = view.coverage.label
    assert label.isVisible() and "of directions covered" in label.text() and "24 views" in label.text()
    metrics = label.fontMetrics()
    # every word fits the width, and the wrapped lines fit the height the label got
    assert max(metrics.horizontalAdvance(w) for w in label.text().split()) <= label.width()
    assert label.heightForWidth(label.width()) <= label.height()
    rings = view.coverage.rings
    assert rings.isVisible() and rings.height() >= 150


def test_an_empty_library_offers_the_sample(tmp_path, make_app, qtbot):
    app = make_app(Workspace(tmp_path / "fresh"))
    library = app.window.library
    qtbot.waitUntil(lambda: library.pages.currentWidget() is library.empty, timeout=15000)
    assert library.sample_button.isVisible() and "No captures yet" in library.empty_label.text()
    library.sample_button.click()
    qtbot.waitUntil(lambda: app.window.current_panel() == "Capture", timeout=120000)
    view = app.window.capture_view
    qtbot.waitUntil(lambda: view.details is not None, timeout=60000)
    assert view.details.summary.name == "Sample object" and view.details.summary.frame_count == 24
    assert view.details.summary.scale == "metric"  # so Process can fuse its depth
    qtbot.waitUntil(lambda: library.pages.currentWidget() is library.grid and library.grid.count() == 1,
                    timeout=15000)


def test_app_command_takes_host_and_no_mdns(tmp_path, qtbot):
    from core.cli import build_parser
    from core.settings import Settings, save_settings
    from desktop.app import open_app
    from desktop.cli import app_options

    workspace = Workspace(tmp_path / "ws")
    save_settings(workspace.settings_path, Settings(server_port=0))  # any free port
    args = build_parser("app").parse_args(["app", "--workspace", str(workspace.root), "--host", "127.0.0.1",
                                           "--no-mdns"])
    desktop = open_app(**app_options(args))  # what `scanbridge app ...` runs, less the event loop
    qtbot.addWidget(desktop.window)
    try:
        qtbot.waitUntil(lambda: desktop.services.server_url is not None, timeout=30000)
        server = desktop.services._server.server
        assert server.host == "127.0.0.1" and server.mdns is False
        assert desktop.services.server_url.startswith("https://127.0.0.1:")
        assert (desktop.window.width(), desktop.window.height()) == (1280, 800)
    finally:
        desktop.close()
    defaults = app_options(build_parser("app").parse_args(["app"]))
    assert defaults["host"] == "0.0.0.0" and defaults["mdns"] is True
