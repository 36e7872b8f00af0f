"""Thumbnails of capture frames, decoded at their shown size off the GUI thread (QImage is
thread-safe; QPixmap is not) and kept in a small in-memory cache."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter


def load_thumbnail(path: Path | None, size: QSize) -> QImage:
    """The image at ``path`` scaled to fit ``size`` (a grey tile when it cannot be read)."""
    if path is not None:
        reader = QImageReader(str(path))
        reader.setAutoTransform(True)
        full = reader.size()
        if full.isValid() and full.width() > 0:
            reader.setScaledSize(full.scaled(size, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if not image.isNull():
            return image
    tile = QImage(size, QImage.Format.Format_RGB32)
    tile.fill(QColor(60, 64, 72))
    painter = QPainter(tile)
    painter.setPen(QColor(160, 165, 175))
    painter.drawText(tile.rect(), Qt.AlignmentFlag.AlignCenter, "no image")
    painter.end()
    return tile


class ThumbnailCache:
    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int, int], QImage] = OrderedDict()

    def get(self, path: Path | None, size: QSize) -> QImage | None:
        key = (str(path), size.width(), size.height())
        image = self._items.get(key)
        if image is not None:
            self._items.move_to_end(key)
        return image

    def put(self, path: Path | None, size: QSize, image: QImage) -> None:
        self._items[(str(path), size.width(), size.height())] = image
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
