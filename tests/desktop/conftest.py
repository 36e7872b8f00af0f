"""Fixtures for the desktop tests: real Qt offscreen, a workspace holding the ingested bundled
sample, and the app built over it (with the real capture server on loopback when asked)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

CORE_TESTS = Path(__file__).resolve().parents[1] / "core"
SERVER_TESTS = Path(__file__).resolve().parents[1] / "capture_server"
for _helpers in (CORE_TESTS, SERVER_TESTS):  # stages_for_tests (slow stages), server_test_kit
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))

from core.workspace import Workspace  # noqa: E402


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the bundled sample ingested once per session (copied per test)."""
    from recon.ingest.api import ingest
    from recon.sample.paths import bundled_sample_dir

    root = tmp_path_factory.mktemp("template") / "ws"
    ingest(bundled_sample_dir(), Workspace(root), name="Sample object")
    return root


@pytest.fixture
def sample_workspace(sample_template: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(sample_template, root, symlinks=True)
    return Workspace(root)


@pytest.fixture
def child_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage child processes can import stages_for_tests."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(CORE_TESTS), os.environ.get("PYTHONPATH", "")) if p))


@pytest.fixture
def make_app(qtbot: object) -> Iterator[Callable[..., object]]:
    """Build DesktopApps (closed at the end); defaults: no server, no worker."""
    from desktop.app import build_app

    apps = []

    def make(workspace: Workspace, **kwargs: object) -> object:
        kwargs = {"start_server": False, "start_worker": False, "server_host": "127.0.0.1",
                  "server_port": 0, "mdns": False, **kwargs}
        app = build_app(workspace, **kwargs)
        qtbot.addWidget(app.window)
        app.window.resize(1200, 780)
        app.window.show()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()




@pytest.fixture
def read_qr() -> Callable[[object], str]:
    """Decode the QR code in a QPixmap (OpenCV's ArUco-based detector: the classic one misses
    some valid codes)."""
    import cv2
    import numpy as np

    def decode(pixmap: object) -> str:
        image = pixmap.toImage().convertToFormat(pixmap.toImage().Format.Format_Grayscale8)
        w, h, stride = image.width(), image.height(), image.bytesPerLine()
        gray = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)[:, :w]
        gray = cv2.copyMakeBorder(np.ascontiguousarray(gray), 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)
        return cv2.QRCodeDetectorAruco().detectAndDecode(gray)[0]

    return decode
