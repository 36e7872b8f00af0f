"""The desktop's cluster parts (real Qt offscreen, the real queue and worker): the Jobs view's
Node column, and Settings' cluster address with its "Test connection" button."""

from __future__ import annotations

import json
import socket
import sys

from core.jobs import Step
from desktop.panels.jobs import COLUMNS


def test_the_jobs_view_shows_the_node_each_job_ran_on(sample_workspace, make_app, qtbot, child_pythonpath):
    (capture,) = sample_workspace.captures()
    app = make_app(sample_workspace, start_worker=True)
    panel = app.window.jobs
    job = app.services.submit(capture.id, [Step("stages_for_tests:FIRST", {"ticks": 1})])
    app.window.show_panel("Jobs")
    node_col = COLUMNS.index("Node")

    def node_of_job() -> str:
        for row in range(panel.table.rowCount()):
            if panel.table.item(row, 0) and panel.table.item(row, 0).text() == str(job.id):
                done = panel.table.item(row, 2).text() == "done"
                return panel.table.item(row, node_col).text() if done else ""
        return ""

    qtbot.waitUntil(lambda: node_of_job() != "", timeout=90000)
    assert node_of_job() == socket.gethostname()
    assert panel.table.horizontalHeaderItem(node_col).text() == "Node"


def test_settings_keep_the_cluster_address_and_test_it(sample_workspace, make_app, qtbot, monkeypatch):
    app = make_app(sample_workspace)
    panel = app.window.settings
    app.window.show_panel("Settings")
    panel.cluster_address.setText("10.0.0.5:6379")
    assert panel.save()
    assert json.loads(sample_workspace.settings_path.read_text())["cluster_address"] == "10.0.0.5:6379"

    panel.cluster_address.setText("http://10.0.0.5:6379/; rm -rf /")  # refused, and not saved
    assert not panel.save()
    assert json.loads(sample_workspace.settings_path.read_text())["cluster_address"] == "10.0.0.5:6379"
    qtbot.mouseClick(panel.test_cluster_button, qtbot_left())
    status = panel.cluster_status.text()
    assert status.startswith("Not connected:") and "HOST:PORT" in status

    monkeypatch.setitem(sys.modules, "ray", None)  # this machine without the cluster extra
    panel.cluster_address.setText("10.0.0.5:6379")
    qtbot.mouseClick(panel.test_cluster_button, qtbot_left())
    qtbot.waitUntil(lambda: "pip install scanbridge[cluster]" in panel.cluster_status.text(), timeout=15000)
    assert panel.test_cluster_button.isEnabled()
    panel.load()
    assert panel.cluster_address.text() == "10.0.0.5:6379"


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
