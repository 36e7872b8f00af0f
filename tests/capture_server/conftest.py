"""Fixtures for the capture-server tests (helpers live in server_test_kit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_kit import INSTALL_CHROMIUM, INSTALL_TUS, find_chromium, require
from server_test_kit import LiveServer, ServerProcess

from capture_server.web import NODE_MODULES, TUS_BUNDLE
from core.settings import Settings, save_settings
from core.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def live_server(workspace: Workspace) -> Iterator[LiveServer]:
    server = LiveServer(workspace, Settings(max_upload_bytes=10 * 1024 * 1024))
    yield server
    server.stop()


@pytest.fixture
def server_process(workspace: Workspace) -> Iterator[ServerProcess]:
    save_settings(workspace.settings_path, Settings(max_upload_bytes=1 << 30))
    proc = ServerProcess(workspace)
    yield proc
    proc.kill()


@pytest.fixture
def tus_bundle() -> None:
    """node_modules' tus-js-client (skipped locally without it, a failure under CI)."""
    require((NODE_MODULES / TUS_BUNDLE).is_file(), "node_modules/tus-js-client", INSTALL_TUS)


@pytest.fixture
def chromium_present() -> None:
    """Debian's Chromium (skipped locally without it, a failure under CI)."""
    require(find_chromium() is not None, "chromium", INSTALL_CHROMIUM)
