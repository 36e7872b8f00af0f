"""``scanbridge send`` (run as ``python -m capture_server send``) as the phone: mDNS discovery,
pairing with a code, pinned TLS, uploading a real Stray Scanner folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_test_kit import REPO, STRAY, LiveServer, small_stray_folder

from core.settings import Settings


def send(client_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCANBRIDGE_CLIENT_DIR": str(client_dir), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "capture_server", "send", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120, check=False)


@pytest.fixture
def mdns_server(workspace) -> LiveServer:
    server = LiveServer(workspace, Settings(), mdns=True, mdns_interfaces=["127.0.0.1"], name="send-test")
    yield server
    server.stop()


@pytest.mark.skipif(not STRAY.is_dir(), reason="needs ../shared/data")
def test_send_discovers_pairs_and_uploads_a_stray_scanner_folder(mdns_server: LiveServer,
                                                                  tmp_path: Path) -> None:
    folder = small_stray_folder(tmp_path / "stray")
    code, _ = mdns_server.devices.new_code()
    result = send(tmp_path / "client", str(folder), "--code", code, "--mdns-interface", "127.0.0.1",
                  "--discover-timeout", "15")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    capture = mdns_server.workspace.capture(out["capture_id"])
    manifest = capture.load()
    assert manifest.mode == "rgbd" and manifest.status in ("new", "processing")
    sent = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}
    stored = {p.relative_to(capture.raw_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in capture.raw_dir.rglob("*") if p.is_file()}
    assert stored == sent and len(sent) == 14
    assert {f["name"]: f["sha256"] for f in manifest.source["files"]} == sent
    assert [d.name for d in mdns_server.devices.devices()] != []
    token_file = json.loads((tmp_path / "client" / "servers.json").read_text())
    assert list(token_file) == [mdns_server.server.identity.server_id]

    # Paired now: a second send by address needs no code, and the pin is checked.
    port = mdns_server.url.rsplit(":", 1)[1]
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(os.urandom(100_000))
    again = send(tmp_path / "client", str(clip), "--server", f"127.0.0.1:{port}")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout.strip().splitlines()[-1])
    assert mdns_server.workspace.capture(second["capture_id"]).load().mode == "import"
    assert (mdns_server.workspace.capture(second["capture_id"]).raw_dir / "clip.mp4").read_bytes() == \
        clip.read_bytes()


def test_send_refuses_a_server_with_another_certificate(live_server: LiveServer, tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg")
    code, _ = live_server.devices.new_code()
    port = live_server.url.rsplit(":", 1)[1]
    result = send(tmp_path / "client", str(photo), "--code", code, "--server", f"127.0.0.1:{port}",
                  "--fingerprint", "0" * 64)
    assert result.returncode == 2
    assert "fingerprint" in result.stderr
    assert live_server.workspace.captures() == []
    assert live_server.devices.devices() == []  # never paired: the code was not even sent


def test_send_without_pairing_says_what_to_do(live_server: LiveServer, tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg")
    port = live_server.url.rsplit(":", 1)[1]
    result = send(tmp_path / "client", str(photo), "--server", f"127.0.0.1:{port}")
    assert result.returncode == 2 and "--code" in result.stderr
