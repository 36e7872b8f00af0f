"""Fixtures for the capture-server tests (helpers live in server_test_kit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_test_kit import LiveServer, ServerProcess

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
