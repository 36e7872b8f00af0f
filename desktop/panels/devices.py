"""Devices: phones on the LAN (live, from mDNS), paired devices (rename, revoke), "Pair a phone"
(only while a capture server is running: a QR code of an address nobody answers cannot pair)."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.context import AppContext
from desktop.qr import qr_image
from desktop.services import DeviceRow, PairingInfo


class PairDialog(QDialog):
    """The QR code of the pairing URL, the code in large digits, and a countdown; closes itself
    when a new device pairs."""

    def __init__(self, pairing: PairingInfo, known_ids: set[str], ctx: AppContext,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pair a phone")
        self.pairing, self.known_ids, self.ctx = pairing, known_ids, ctx
        self.paired: DeviceRow | None = None
        box = QVBoxLayout(self)
        intro = QLabel("Scan this code with the phone's camera, or open ScanBridge on the phone "
                       "and type the code.")
        intro.setWordWrap(True)
        box.addWidget(intro)
        self.qr_label = QLabel()
        self.qr_label.setPixmap(QPixmap.fromImage(qr_image(pairing.url, 300)))
        self.qr_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box.addWidget(self.qr_label)
        self.code_label = QLabel(f"{pairing.code[:4]} {pairing.code[4:]}")
        font = QFont()
        font.setPointSize(26)
        font.setBold(True)
        font.setLetterSpacing(QFont.SpacingType.AbsoluteSpacing, 4)
        self.code_label.setFont(font)
        self.code_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.code_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self.code_label)
        self.url_label = QLabel(pairing.url)
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url_label.setStyleSheet("color: #8a93a3;")
        self.url_label.setWordWrap(True)
        box.addWidget(self.url_label)
        self.status = QLabel()
        box.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        box.addWidget(buttons)
        self._timer = QTimer(self, interval=500)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self._tick()

    def _tick(self) -> None:
        left = int(self.pairing.expires - time.time())
        if left <= 0:
            self.status.setText("This code has expired; close and pair again.")
            self._timer.stop()
            return
        self.status.setText(f"Valid for {left // 60}:{left % 60:02d}. Waiting for the phone…")
        new = [d for d in self.ctx.services.devices() if d.id not in self.known_ids]
        if new:
            self.paired = new[0]
            self._timer.stop()
            self.ctx.notifier.notify(f"Paired with {new[0].name}", "success")
            self.accept()


class DevicesPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.pair_dialog: PairDialog | None = None
        layout = QVBoxLayout(self)
        head = QHBoxLayout()
        self.server_label = QLabel("Capture server: starting…")
        self.server_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pair_button = QPushButton("Pair a phone…")
        self.pair_button.setEnabled(False)  # until a server answers
        self.pair_button.clicked.connect(self.open_pairing)
        head.addWidget(self.server_label, 1)
        head.addWidget(self.pair_button)
        layout.addLayout(head)

        nearby = QGroupBox("Phones nearby")
        nearby_box = QVBoxLayout(nearby)
        self.phone_list = QListWidget()
        self.phone_list.setMaximumHeight(150)
        nearby_box.addWidget(self.phone_list)
        layout.addWidget(nearby)

        paired = QGroupBox("Paired devices")
        paired_box = QVBoxLayout(paired)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Name", "Device id", "Paired", "Status"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in ((1, 160), (2, 170), (3, 110)):
            self.table.setColumnWidth(col, width)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        paired_box.addWidget(self.table)
        row = QHBoxLayout()
        self.rename_button = QPushButton("Rename…")
        self.revoke_button = QPushButton("Revoke")
        self.rename_button.clicked.connect(self._rename)
        self.revoke_button.clicked.connect(self._revoke)
        row.addStretch(1)
        row.addWidget(self.rename_button)
        row.addWidget(self.revoke_button)
        paired_box.addLayout(row)
        layout.addWidget(paired, 1)

        ctx.signals.server_ready.connect(self._server_ready)
        ctx.signals.server_failed.connect(self.server_off)
        ctx.signals.phone_event.connect(lambda _e: self.refresh_phones())
        self._timer = QTimer(self, interval=1500)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def _server_ready(self, url: str) -> None:
        self.server_label.setText(f"Capture server: {url}  ·  phones on this network can find it")
        self.refresh_phones()
        self._update_pair_button()

    def server_off(self, message: str) -> None:
        self.server_label.setText(f"Capture server: off ({message})")
        self._update_pair_button()

    def server_address(self) -> str | None:
        """Where phones reach a capture server on this workspace: the app's own, or one that
        `scanbridge serve` runs; None when there is none."""
        if self.ctx.services.server_url:
            return self.ctx.services.server_url
        from capture_server.server import read_endpoint

        endpoint = read_endpoint(self.ctx.services.workspace)
        return str(endpoint["url"]) if endpoint else None

    def _update_pair_button(self) -> None:
        running = self.server_address() is not None
        self.pair_button.setEnabled(running)
        self.pair_button.setToolTip("" if running else
                                    "The capture server is off: phones could not reach this computer")
        if not running and not self.server_label.text().startswith("Capture server: off"):
            self.server_label.setText("Capture server: off · phones cannot find or pair with this computer")

    def refresh_phones(self) -> None:
        self.phone_list.clear()
        phones = self.ctx.services.phones()
        for phone in phones:
            label = phone.name.split("._scanbridge")[0]
            model = phone.properties.get("model", "")
            self.phone_list.addItem(f"{label}  —  {', '.join(phone.addresses)}"
                                    + (f"  ({model})" if model else ""))
        if not phones:
            self.phone_list.addItem("No phones with the ScanBridge app seen on this network yet")

    def refresh(self) -> None:
        if not self.server_label.text().endswith("starting…"):
            self._update_pair_button()
        try:
            devices = self.ctx.services.devices()
        except Exception as e:  # a broken devices.json must not go unnoticed
            self._timer.stop()
            self.ctx.notifier.error(e, "Paired devices")
            return
        selected = self.selected_device_id()
        self.table.setRowCount(len(devices))
        for i, d in enumerate(devices):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.paired))
            status = "revoked" if d.revoked else "active"
            for col, text in enumerate((d.name, d.id, when, status)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, d.id)
                self.table.setItem(i, col, item)
            if d.id == selected:
                self.table.selectRow(i)

    def device_names(self) -> list[str]:
        return [self.table.item(i, 0).text() for i in range(self.table.rowCount())]

    def selected_device_id(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def open_pairing(self) -> PairDialog | None:
        if self.server_address() is None:
            self.ctx.notifier.notify("Cannot pair: the capture server is off, so a phone could not "
                                     "reach this computer. Restart the app to start it (see Settings "
                                     "for its port).", "warning")
            self._update_pair_button()
            return None
        try:
            pairing = self.ctx.services.new_pairing()
        except Exception as e:
            self.ctx.notifier.error(e, "Cannot make a pairing code")
            return None
        known = {d.id for d in self.ctx.services.devices()}
        self.pair_dialog = PairDialog(pairing, known, self.ctx, self)
        self.pair_dialog.finished.connect(lambda _r: self.refresh())
        self.pair_dialog.open()
        return self.pair_dialog

    def _rename(self) -> None:
        device_id = self.selected_device_id()
        if device_id is None:
            return
        current = next((d.name for d in self.ctx.services.devices() if d.id == device_id), "")
        name, ok = QInputDialog.getText(self, "Rename device", "Name:", text=current)
        if ok:
            self.rename(device_id, name)

    def rename(self, device_id: str, name: str) -> None:
        try:
            self.ctx.services.rename_device(device_id, name)
        except Exception as e:
            self.ctx.notifier.error(e, "Rename")
        self.refresh()

    def _revoke(self) -> None:
        device_id = self.selected_device_id()
        if device_id is not None:
            self.revoke(device_id)

    def revoke(self, device_id: str) -> None:
        try:
            self.ctx.services.revoke_device(device_id)
            self.ctx.notifier.notify("Device revoked: it can no longer upload until paired again", "info")
        except Exception as e:
            self.ctx.notifier.error(e, "Revoke")
        self.refresh()
