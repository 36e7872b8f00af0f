"""Library: the workspace's captures as a grid of thumbnails with mode, frames, size, date and
status; import by drag and drop or a file dialog (ingest runs off the GUI thread); rename, delete.
An empty workspace shows what to do first, with a button that imports the bundled sample."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.progress import Progress, ProgressEvent
from desktop.capture_info import CaptureSummary, human_size
from desktop.context import AppContext
from desktop.services import Services
from desktop.thumbnails import ThumbnailCache, load_thumbnail

THUMB = QSize(200, 150)
IMPORT_FILTER = ("Captures (*.zip *.mp4 *.mov *.m4v *.avi *.mkv *.json *.jpg *.jpeg *.png *.heic);;"
                 "All files (*)")


SAMPLE_NAME = "Sample object"
EMPTY_TEXT = ("<h2>No captures yet</h2>"
              "<p>Drop a folder of photos, a video, a zip, or a Record3D / Stray Scanner export here, "
              "or pair a phone under <b>Devices</b> and send a capture from it.</p>"
              "<p>To see what ScanBridge does first, try the sample: a small object with depth and "
              "camera poses that processes in a few minutes on this computer.</p>")


def import_sample(services: Services, progress: Progress | None = None) -> str:
    """Ingest the bundled sample as a new capture; returns its id."""
    from recon.sample.paths import bundled_sample_dir

    capture_id = services.import_source(bundled_sample_dir(), progress, name=SAMPLE_NAME)
    capture = services.capture(capture_id)
    # The sample is rendered in metres; its nerfstudio export does not say so.
    capture.save(dataclasses.replace(capture.load(), scale="metric"))
    return capture_id


class _ProgressRelay(QObject):
    """Ingest reports from a pool thread; this queues its events to the GUI thread."""

    event = Signal(object)


def describe(summary: CaptureSummary) -> str:
    date = summary.created.replace("T", " ").rstrip("Z")[:16]
    size = human_size(summary.size_bytes)
    facts = f"{summary.mode} · {summary.frame_count} frames · {size}"
    return f"{summary.name}\n{facts}\n{date} · {summary.status}"


class LibraryPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self.summaries: dict[str, CaptureSummary] = {}
        self.thumbs = ThumbnailCache()
        self.imports_running = 0
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.hint = QLabel("Drop folders, videos, zips, Record3D or Stray Scanner exports here to import.")
        self.hint.setStyleSheet("color: #8a93a3;")
        self.import_folder_button = QPushButton("Import folder…")
        self.import_file_button = QPushButton("Import file…")
        self.open_button = QPushButton("Open")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete")
        for b in (self.import_folder_button, self.import_file_button):
            bar.addWidget(b)
        bar.addWidget(self.hint, 1)
        for b in (self.open_button, self.rename_button, self.delete_button):
            bar.addWidget(b)
        layout.addLayout(bar)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress_label = QLabel()
        self.progress_label.setVisible(False)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress)
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(THUMB)
        self.grid.setGridSize(QSize(THUMB.width() + 40, THUMB.height() + 80))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setWordWrap(True)
        self.grid.setSpacing(8)
        self.grid.itemDoubleClicked.connect(lambda item: self._open(item))
        self.empty = QWidget()
        empty_box = QVBoxLayout(self.empty)
        empty_box.addStretch(1)
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setMaximumWidth(560)
        self.sample_button = QPushButton("Try the sample")
        self.sample_button.setDefault(True)
        self.sample_button.clicked.connect(self.try_sample)
        empty_box.addWidget(self.empty_label, 0, Qt.AlignmentFlag.AlignHCenter)
        empty_box.addWidget(self.sample_button, 0, Qt.AlignmentFlag.AlignHCenter)
        empty_box.addStretch(2)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.grid)
        self.pages.addWidget(self.empty)
        layout.addWidget(self.pages, 1)

        self.import_folder_button.clicked.connect(self._pick_folder)
        self.import_file_button.clicked.connect(self._pick_file)
        self.open_button.clicked.connect(lambda: self._open(self.grid.currentItem()))
        self.rename_button.clicked.connect(self._rename)
        self.delete_button.clicked.connect(self._delete)
        ctx.signals.captures_changed.connect(self.refresh)
        self._loading = False
        self._timer = QTimer(self, interval=4000)  # captures also arrive from phones
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    # -- listing -------------------------------------------------------------------------------

    def refresh(self) -> None:
        if self._loading:
            return
        self._loading = True

        def done(summaries: list[CaptureSummary]) -> None:
            self._loading = False
            self._show(summaries)

        def failed(error: BaseException) -> None:
            self._loading = False
            self.ctx.notifier.error(error, "Cannot read the library")

        self.ctx.tasks.run(self.ctx.services.captures, done, failed)

    def _show(self, summaries: list[CaptureSummary]) -> None:
        self.pages.setCurrentWidget(self.grid if summaries or self.imports_running else self.empty)
        if summaries == list(self.summaries.values()):
            return
        if [s.id for s in summaries] == list(self.summaries) and all(
                s.first_image == self.summaries[s.id].first_image for s in summaries):
            # the same captures (one growing, say): new texts in place, no rebuild of the grid
            for i, s in enumerate(summaries):
                if s != self.summaries[s.id]:
                    self.grid.item(i).setText(describe(s))
                    self.grid.item(i).setToolTip(f"{s.id}\nsource: {s.source_kind or '-'}; scale: {s.scale}")
            self.summaries = {s.id: s for s in summaries}
            return
        current = self.selected_id()
        self.summaries = {s.id: s for s in summaries}
        self.grid.clear()
        missing = []
        for s in summaries:
            item = QListWidgetItem(describe(s))
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            item.setToolTip(f"{s.id}\nsource: {s.source_kind or '-'}; scale: {s.scale}")
            image = self.thumbs.get(s.first_image, THUMB)
            if image is not None:
                item.setIcon(QIcon(QPixmap.fromImage(image)))
            else:
                missing.append(s)
            self.grid.addItem(item)
            if s.id == current:
                self.grid.setCurrentItem(item)
        if missing:
            self.ctx.tasks.run(lambda: [(s, load_thumbnail(s.first_image, THUMB)) for s in missing],
                               self._thumbs_loaded, lambda e: self.ctx.notifier.error(e, "Thumbnails"))

    def _thumbs_loaded(self, loaded: list) -> None:
        by_id = {}
        for summary, image in loaded:
            self.thumbs.put(summary.first_image, THUMB, image)
            by_id[summary.id] = image
        for i in range(self.grid.count()):
            item = self.grid.item(i)
            image = by_id.get(item.data(Qt.ItemDataRole.UserRole))
            if image is not None:
                item.setIcon(QIcon(QPixmap.fromImage(image)))

    def capture_ids(self) -> list[str]:
        return [self.grid.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.grid.count())]

    def thumbnail_count(self) -> int:
        return sum(1 for i in range(self.grid.count()) if not self.grid.item(i).icon().isNull())

    def selected_id(self) -> str | None:
        item = self.grid.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def select(self, capture_id: str) -> None:
        for i in range(self.grid.count()):
            if self.grid.item(i).data(Qt.ItemDataRole.UserRole) == capture_id:
                self.grid.setCurrentRow(i)

    # -- importing -----------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        for path in paths:
            self.import_path(path)

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a capture folder")
        if folder:
            self.import_path(Path(folder))

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a video, archive or export", "", IMPORT_FILTER)
        if path:
            self.import_path(Path(path))

    def try_sample(self) -> None:
        """Import the bundled sample and open it."""
        self.sample_button.setEnabled(False)

        def opened(capture_id: str) -> None:
            self.sample_button.setEnabled(True)
            self.ctx.signals.open_capture.emit(capture_id)

        self._start_import(Path(SAMPLE_NAME), lambda progress: import_sample(self.ctx.services, progress),
                           opened, lambda: self.sample_button.setEnabled(True))

    def import_path(self, path: Path) -> None:
        """Ingest ``path`` on a pool thread; progress shows here, the result or error as a notice."""
        self._start_import(path, lambda progress: self.ctx.services.import_source(path, progress))

    def _start_import(self, path: Path, run: Callable[[Progress], str],
                      then: Callable[[str], None] | None = None,
                      failed_then: Callable[[], None] | None = None) -> None:
        relay = _ProgressRelay(self)
        relay.event.connect(self._import_progress)
        progress = Progress("ingest", relay.event.emit)
        self.imports_running += 1
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.progress_label.setText(f"Importing {path.name}…")
        self.progress_label.setVisible(True)

        self.pages.setCurrentWidget(self.grid)

        def done(capture_id: str) -> None:
            self._import_ended(relay)
            self.ctx.notifier.notify(f"Imported {path.name} as {capture_id}", "success")
            self.ctx.signals.captures_changed.emit()
            if then is not None:
                then(capture_id)

        def failed(error: BaseException) -> None:
            self._import_ended(relay)
            self.ctx.notifier.error(error, f"Import of {path.name} failed")
            self.refresh()
            if failed_then is not None:
                failed_then()

        self.ctx.tasks.run(lambda: run(progress), done, failed)

    def _import_progress(self, event: ProgressEvent) -> None:
        if event.kind == "progress" and event.fraction is not None:
            self.progress.setValue(int(event.fraction * 1000))
        if event.message:
            self.progress_label.setText(event.message)

    def _import_ended(self, relay: QObject) -> None:
        relay.deleteLater()
        self.imports_running -= 1
        if self.imports_running == 0:
            self.progress.setVisible(False)
            self.progress_label.setVisible(False)

    # -- actions -------------------------------------------------------------------------------

    def _open(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.ctx.signals.open_capture.emit(item.data(Qt.ItemDataRole.UserRole))

    def _rename(self) -> None:
        capture_id = self.selected_id()
        if capture_id is None:
            return
        name, ok = QInputDialog.getText(self, "Rename capture", "Name:",
                                        text=self.summaries[capture_id].name)
        if ok:
            self.rename(capture_id, name)

    def rename(self, capture_id: str, name: str) -> None:
        try:
            self.ctx.services.rename_capture(capture_id, name)
        except Exception as e:
            self.ctx.notifier.error(e, "Rename")
        self.ctx.signals.captures_changed.emit()

    def _delete(self) -> None:
        capture_id = self.selected_id()
        if capture_id is None:
            return
        answer = QMessageBox.question(self, "Delete capture",
                                      f"Delete {self.summaries[capture_id].name} and all its results?")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(capture_id)

    def delete(self, capture_id: str) -> None:
        try:
            self.ctx.services.delete_capture(capture_id)
            self.ctx.notifier.notify("Capture deleted", "info")
        except Exception as e:
            self.ctx.notifier.error(e, "Delete")
        self.ctx.signals.captures_changed.emit()
