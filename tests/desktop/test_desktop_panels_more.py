"""Settings, drag and drop, sharing, the CLI entry, and errors reaching the user."""

from __future__ import annotations

import json
import socket

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from core.cli import build_parser


def test_app_command_takes_the_workspace_before_or_after_it():
    assert build_parser("app").parse_args(["app", "--workspace", "/tmp/a"]).workspace == "/tmp/a"
    assert build_parser("app").parse_args(["--workspace", "/tmp/b", "app"]).workspace == "/tmp/b"


def test_settings_are_saved_and_bad_values_are_refused(sample_workspace, make_app, qtbot):
    app = make_app(sample_workspace)
    panel = app.window.settings
    panel.port.setValue(9000)
    panel.https.setChecked(False)
    panel.gpu.setCurrentText("0")
    panel._add_model("mcc", "/models/mcc.pth")
    assert panel.save()
    stored = json.loads(sample_workspace.settings_path.read_text())
    assert stored["server_port"] == 9000 and stored["https"] is False and stored["gpu"] == "0"
    assert stored["model_paths"] == {"mcc": "/models/mcc.pth"}

    panel.gpu.setCurrentText("the fast one")
    assert not panel.save()
    assert "gpu" in app.ctx.notifier.texts("error")[-1]
    assert json.loads(sample_workspace.settings_path.read_text())["gpu"] == "0"  # unchanged


def test_dropping_a_folder_imports_it(sample_workspace, make_app, qtbot, tmp_path):
    import shutil

    app = make_app(sample_workspace)
    library = app.window.library
    (capture,) = sample_workspace.captures()
    folder = tmp_path / "dropped"
    folder.mkdir()
    for p in sorted((capture.root / "images").iterdir())[:4]:
        shutil.copy(p, folder / p.name)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    library.dropEvent(event)
    qtbot.waitUntil(lambda: len(library.capture_ids()) == 2, timeout=30000)


def test_share_to_phone_shows_the_link_as_a_qr_code(sample_workspace, make_app, qtbot, read_qr):
    import httpx

    from recon.export.exporter import export
    from recon.export.samples import uv_sphere

    app = make_app(sample_workspace, start_server=True)
    qtbot.waitUntil(lambda: app.services.server_url is not None, timeout=30000)
    (capture,) = sample_workspace.captures()
    view = app.window.result_view
    app.window.open_result(capture.id)
    assert view.share() is None  # nothing exported yet: the user is told
    assert "no exported model yet" in app.ctx.notifier.texts("error")[-1]

    export(uv_sphere(), capture.exports_dir / "model.usdz", preset="preview")
    dialog = view.share()
    assert dialog is not None and dialog.isVisible()
    assert dialog.link.startswith(f"{app.services.server_url}/s/")
    assert read_qr(dialog.qr_label.pixmap()) == dialog.link
    page = httpx.get(dialog.link, verify=False, timeout=30)  # what the phone opens, no token needed
    assert page.status_code == 200 and 'rel="ar"' in page.text


def test_a_server_that_cannot_start_is_reported(sample_workspace, make_app, qtbot):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        app = make_app(sample_workspace, start_server=True, server_port=busy.getsockname()[1])
        qtbot.waitUntil(lambda: any("Capture server" in t and "cannot listen" in t
                                    for t in app.ctx.notifier.texts("error")), timeout=30000)
        assert app.services.server_url is None
        assert "off" in app.window.server_status.text()
    finally:
        busy.close()


def test_a_broken_manifest_is_reported_when_opening_a_capture(sample_workspace, make_app, qtbot):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace)
    capture.manifest_path.write_text('{"schema_version": 1, "id": 5}')
    app.window.open_capture(capture.id)
    qtbot.waitUntil(lambda: bool(app.ctx.notifier.texts("error")), timeout=30000)
    assert "capture.json" in app.ctx.notifier.texts("error")[-1]


def test_app_without_a_display_says_so(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "core.cli", "app", "--workspace", str(tmp_path / "ws")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "DISPLAY: no display" in done.stderr
