"""Read QR codes back with OpenCV's detector, so a QR test checks what a phone camera would read.

Terminal QR codes (``qrcode``'s ``print_ascii``) are turned back into pixels first: each
character is one module wide and two modules tall (upper and lower half blocks).
"""

from __future__ import annotations

import cv2
import numpy as np

_QUIET = 4  # modules of white around the code, as the QR standard asks
_MODULE_PX = 8
_UPPER = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False),
          "\xa0": (False, False)}  # qrcode prints its blank half-blocks as no-break spaces


def decode_image(gray: np.ndarray) -> str:
    """The text of the one QR code in a grey (H, W) uint8 image; '' if none can be read."""
    margin = max(gray.shape) // 8 + 8
    padded = cv2.copyMakeBorder(np.ascontiguousarray(gray), margin, margin, margin, margin,
                                cv2.BORDER_CONSTANT, value=255)
    text = cv2.QRCodeDetectorAruco().detectAndDecode(padded)[0]
    return text or cv2.QRCodeDetector().detectAndDecode(padded)[0]


def decode_png(data: bytes) -> str:
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert gray is not None, "not an image"
    return decode_image(gray)


def terminal_modules(text: str) -> np.ndarray:
    """The block-character rows of ``text`` as a (rows, cols) bool grid of filled half-blocks."""
    rows = [line for line in text.splitlines() if line and set(line) <= set(_UPPER)]
    assert rows, "no block-character QR code in the text"
    width = max(len(r) for r in rows)
    grid = np.zeros((2 * len(rows), width), bool)
    for i, row in enumerate(rows):
        for j, ch in enumerate(row.ljust(width)):
            grid[2 * i, j], grid[2 * i + 1, j] = _UPPER[ch]
    return grid


def decode_terminal(text: str) -> str:
    """The QR code printed in ``text`` with block characters, read in either polarity."""
    grid = terminal_modules(text)
    for dark in (grid, ~grid):
        padded = np.pad(dark, _QUIET, constant_values=False)
        gray = np.where(padded, 0, 255).astype(np.uint8)
        image = cv2.resize(gray, None, fx=_MODULE_PX, fy=_MODULE_PX, interpolation=cv2.INTER_NEAREST)
        found = decode_image(image)
        if found:
            return found
    return ""
