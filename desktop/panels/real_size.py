"""The "Set real size…" dialog: the model's longest side in centimetres, the one dimension the
user knows when a scan had nothing to measure by (the mesh stage's ``real_size_m``)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QDoubleSpinBox, QLabel, QVBoxLayout, QWidget

MIN_CM = 0.1
MAX_CM = 100_000.0  # a kilometre: the mesh stage refuses more


class RealSizeDialog(QDialog):
    def __init__(self, longest_side_cm: float | None, estimated: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set real size")
        box = QVBoxLayout(self)
        why = ("The scan had nothing to measure by, so its size is an estimate."
               if estimated else "The model's size was measured; set it only if it is wrong.")
        box.addWidget(QLabel(f"{why}\nMeasure the object's longest side and enter it: the capture "
                             "is processed again at that size."))
        self.side_cm = QDoubleSpinBox()
        self.side_cm.setRange(MIN_CM, MAX_CM)
        self.side_cm.setDecimals(1)
        self.side_cm.setSuffix(" cm")
        self.side_cm.setValue(longest_side_cm if longest_side_cm else 30.0)
        box.addWidget(QLabel("Longest side"))
        box.addWidget(self.side_cm)
        ok, cancel = QDialogButtonBox.StandardButton.Ok, QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok | cancel)
        buttons.button(ok).setText("Process at this size")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        box.addWidget(buttons)

    def longest_side_m(self) -> float:
        return self.side_cm.value() / 100.0
