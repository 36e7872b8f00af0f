"""Settings: workspace, server port and HTTPS, GPU choice, model paths (core.settings)."""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.settings import Settings
from desktop.context import AppContext
from desktop.services import DETAILS, METHODS

GPU_CHOICES = ("auto", "cpu", "0", "1", "2", "3")


class SettingsPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        layout = QVBoxLayout(self)
        general = QGroupBox("Workspace")
        form = QFormLayout(general)
        self.workspace_label = QLabel(str(ctx.services.workspace.root))
        form.addRow("Folder", self.workspace_label)
        form.addRow("", QLabel("Start the app with --workspace DIR (or $SCANBRIDGE_WORKSPACE) "
                               "to use another."))
        layout.addWidget(general)

        server = QGroupBox("Capture server")
        form = QFormLayout(server)
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.https = QCheckBox("HTTPS with this computer's own certificate (recommended)")
        self.plain = QCheckBox("Allow plain HTTP for the phone web page")
        self.max_upload = QSpinBox()
        self.max_upload.setRange(1, 1024)
        self.max_upload.setSuffix(" GB")
        form.addRow("Port", self.port)
        form.addRow("", self.https)
        form.addRow("", self.plain)
        form.addRow("Largest upload", self.max_upload)
        layout.addWidget(server)

        processing = QGroupBox("Processing")
        form = QFormLayout(processing)
        self.gpu = QComboBox()
        self.gpu.addItems(GPU_CHOICES)
        self.gpu.setEditable(True)
        self.process_on_finish = QCheckBox("Process captures when a phone finishes sending them")
        self.method = QComboBox()
        self.method.addItems(METHODS)
        self.detail = QComboBox()
        self.detail.addItems(DETAILS)
        form.addRow("GPU", self.gpu)
        form.addRow("", self.process_on_finish)
        form.addRow("Default method", self.method)
        form.addRow("Default detail", self.detail)
        layout.addWidget(processing)
        layout.addWidget(self._cluster_group())

        models = QGroupBox("Model paths (local folders or hub ids)")
        box = QVBoxLayout(models)
        self.models = QTableWidget(0, 2)
        self.models.setHorizontalHeaderLabels(["Model", "Path or hub id"])
        self.models.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.models.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.models.verticalHeader().setVisible(False)
        box.addWidget(self.models)
        row = QHBoxLayout()
        add, remove = QPushButton("Add"), QPushButton("Remove")
        add.clicked.connect(lambda: self._add_model("", ""))
        remove.clicked.connect(lambda: self.models.removeRow(self.models.currentRow()))
        row.addStretch(1)
        row.addWidget(add)
        row.addWidget(remove)
        box.addLayout(row)
        layout.addWidget(models, 1)

        bottom = QHBoxLayout()
        self.note = QLabel("Server changes apply the next time the app starts.")
        self.note.setStyleSheet("color: #8a93a3;")
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        bottom.addWidget(self.note, 1)
        bottom.addWidget(self.save_button)
        layout.addLayout(bottom)
        self.load()

    def _cluster_group(self) -> QGroupBox:
        cluster = QGroupBox("Cluster (Ray; for `scanbridge worker`)")
        form = QFormLayout(cluster)
        self.cluster_address = QLineEdit()
        self.cluster_address.setPlaceholderText("empty: this computer · auto · HEAD-HOST:6379")
        row = QHBoxLayout()
        row.addWidget(self.cluster_address, 1)
        self.test_cluster_button = QPushButton("Test connection")
        self.test_cluster_button.clicked.connect(self.test_cluster)
        row.addWidget(self.test_cluster_button)
        form.addRow("Address", row)
        self.cluster_status = QLabel("Ray has no passwords: use a cluster on a private network only.")
        self.cluster_status.setWordWrap(True)
        form.addRow("", self.cluster_status)
        return cluster

    def test_cluster(self) -> None:
        """Connect to the address in the box (in the background) and say what answered."""
        from core.executor_ray import check_address, test_connection

        address = self.cluster_address.text().strip()
        try:
            address = check_address(address)
        except Exception as e:
            self.cluster_status.setText(f"Not connected: {e}")
            return
        self.test_cluster_button.setEnabled(False)
        self.cluster_status.setText(f"Connecting to {address}…")
        self.ctx.tasks.run(lambda: test_connection(address), self._cluster_ok, self._cluster_failed)

    def _cluster_ok(self, description: str) -> None:
        self.test_cluster_button.setEnabled(True)
        self.cluster_status.setText(f"Connected: {description}")

    def _cluster_failed(self, error: BaseException) -> None:
        self.test_cluster_button.setEnabled(True)
        self.cluster_status.setText(f"Not connected: {error}")

    def _add_model(self, key: str, value: str) -> None:
        row = self.models.rowCount()
        self.models.insertRow(row)
        self.models.setItem(row, 0, QTableWidgetItem(key))
        self.models.setItem(row, 1, QTableWidgetItem(value))

    def load(self) -> None:
        try:
            s = self.ctx.services.settings()
        except Exception as e:
            self.ctx.notifier.error(e, "Settings")
            s = Settings()
        self.port.setValue(s.server_port)
        self.https.setChecked(s.https)
        self.plain.setChecked(s.allow_plain_http)
        self.max_upload.setValue(max(1, s.max_upload_bytes // 1024**3))
        self.gpu.setCurrentText(s.gpu)
        self.process_on_finish.setChecked(s.process_on_finish)
        self.method.setCurrentText(s.default_method)
        self.detail.setCurrentText(s.default_detail)
        self.cluster_address.setText(s.cluster_address)
        self.models.setRowCount(0)
        for key, value in sorted(s.model_paths.items()):
            self._add_model(key, value)

    def current(self) -> Settings:
        try:
            base = self.ctx.services.settings()
        except Exception:
            base = Settings()
        models = {}
        for row in range(self.models.rowCount()):
            key = (self.models.item(row, 0).text() if self.models.item(row, 0) else "").strip()
            value = (self.models.item(row, 1).text() if self.models.item(row, 1) else "").strip()
            if key:
                models[key] = value
        return dataclasses.replace(
            base, server_port=self.port.value(), https=self.https.isChecked(),
            allow_plain_http=self.plain.isChecked(), max_upload_bytes=self.max_upload.value() * 1024**3,
            gpu=self.gpu.currentText().strip(), process_on_finish=self.process_on_finish.isChecked(),
            default_method=self.method.currentText(), default_detail=self.detail.currentText(),
            model_paths=models, cluster_address=self.cluster_address.text().strip(),
        )

    def save(self) -> bool:
        from core.executor_ray import check_address

        try:
            settings = self.current()
            if settings.cluster_address:
                check_address(settings.cluster_address)
            self.ctx.services.save_settings(settings)
        except Exception as e:
            self.ctx.notifier.error(e, "Settings not saved")
            return False
        self.ctx.notifier.notify("Settings saved", "success")
        return True
