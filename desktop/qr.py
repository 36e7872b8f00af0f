"""QR codes as QImages (the pairing URL, share links), drawn from the ``qrcode`` package's matrix."""

from __future__ import annotations

import numpy as np
import qrcode
from PySide6.QtGui import QImage


def qr_matrix(text: str, border: int = 2) -> np.ndarray:
    """(n, n) bool, True = dark module."""
    qr = qrcode.QRCode(border=border, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    return np.array(qr.get_matrix(), bool)


def qr_image(text: str, size_px: int = 280) -> QImage:
    """A black-on-white QR code of ``text``, about ``size_px`` square (whole pixels per module)."""
    matrix = qr_matrix(text)
    scale = max(1, size_px // len(matrix))
    pixels = np.where(np.kron(matrix, np.ones((scale, scale), bool)), 0, 255).astype(np.uint8)  # (S, S)
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape
    return QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
