"""The "Set real size…" dialog: the one dimension the user knows when a scan had nothing to measure
by. Either the model's longest side, or the real distance between two points picked on the model in
the viewer ("Measure"); both end as the mesh stage's ``real_size_m`` (the longest side in metres)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QDoubleSpinBox, QLabel, QVBoxLayout, QWidget

MIN_CM = 0.1
MAX_CM = 100_000.0  # a kilometre: the mesh stage refuses more


@dataclass(frozen=True)
class PickedDistance:
    """Two points picked on the shown model: their distance and the model's longest side, in the
    model's own units (metres of the current, possibly estimated, size)."""

    distance: float
    model_longest_side: float


class RealSizeDialog(QDialog):
    def __init__(self, longest_side_cm: float | None, estimated: bool, parent: QWidget | None = None,
                 picked: PickedDistance | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set real size")
        self.picked = picked
        box = QVBoxLayout(self)
        why = ("The scan had nothing to measure by, so its size is an estimate."
               if estimated else "The model's size was measured; set it only if it is wrong.")
        self.side_cm = QDoubleSpinBox()
        self.side_cm.setRange(MIN_CM, MAX_CM)
        self.side_cm.setDecimals(1)
        self.side_cm.setSuffix(" cm")
        if picked is None:
            box.addWidget(QLabel(f"{why}\nMeasure the object's longest side and enter it: the capture "
                                 "is processed again at that size."))
            self.side_cm.setValue(longest_side_cm if longest_side_cm else 30.0)
            box.addWidget(QLabel("Longest side"))
        else:
            box.addWidget(QLabel(f"{why}\nThe two points you picked are {picked.distance * 100:.1f} cm apart "
                                 "on the model. Enter their real distance: the capture is processed again "
                                 "at that scale."))
            self.side_cm.setValue(min(MAX_CM, max(MIN_CM, picked.distance * 100)))
            box.addWidget(QLabel("Real distance between the points"))
        box.addWidget(self.side_cm)
        ok, cancel = QDialogButtonBox.StandardButton.Ok, QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok | cancel)
        buttons.button(ok).setText("Process at this size")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        box.addWidget(buttons)

    def longest_side_m(self) -> float:
        """The model's real longest side: entered, or scaled by real / picked distance."""
        entered_m = self.side_cm.value() / 100.0
        if self.picked is None:
            return entered_m
        return self.picked.model_longest_side * entered_m / self.picked.distance
