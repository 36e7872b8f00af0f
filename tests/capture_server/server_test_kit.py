"""Helpers for the capture-server tests: a server in a thread or as a process to kill, small data.

A module name of its own (not conftest), so test files import it whatever else pytest loaded."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from websockets.sync.client import connect

from capture_server.auth import DeviceStore
from capture_server.identity import server_dir
from capture_server.replay import encode_frame
from capture_server.server import CaptureServer
from core.settings import Settings
from core.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
STRAY = Path(__file__).resolve().parents[3] / "shared" / "data" / "strayscanner-iphone-lidar-depthonly"
if not STRAY.is_dir():
    STRAY = Path("/work/shared/data/strayscanner-iphone-lidar-depthonly")


class LiveServer:
    """A CaptureServer running in a thread of the test process."""

    def __init__(self, workspace: Workspace, settings: Settings, **kwargs: object) -> None:
        self.workspace = workspace
        kwargs = {"mdns": False, "run_worker": False, **kwargs}
        self.server = CaptureServer(workspace, host="127.0.0.1", port=0, settings=settings, **kwargs)
        ready = threading.Event()
        self.url = ""

        def on_ready(url: str) -> None:
            self.url = url
            ready.set()

        self.thread = threading.Thread(target=self.server.run, args=(on_ready,), daemon=True)
        self.thread.start()
        if not ready.wait(30):
            raise RuntimeError("server did not start")
        self.devices = DeviceStore(server_dir(workspace))

    def token(self, name: str = "test phone") -> str:
        code, _ = self.devices.new_code()
        return self.devices.redeem(code, name).token

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, verify=False, headers=headers, timeout=30)

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(15)


class ServerProcess:
    """``python -m capture_server serve`` as a child process that tests may SIGKILL."""

    def __init__(self, workspace: Workspace, port: int = 0, argv: list[str] | None = None,
                 open_files: int | None = None) -> None:
        self.workspace = workspace
        self.port = port
        self.argv = argv  # another command line that prints "listening on <url>"
        self.open_files = open_files  # start with this soft RLIMIT_NOFILE
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log: list[str] = []  # everything the server printed (stdout and stderr)

    def start(self) -> str:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        argv = self.argv or [sys.executable, "-m", "capture_server", "serve", "--workspace",
                             str(self.workspace.root), "--host", "127.0.0.1", "--port", str(self.port),
                             "--no-mdns", "--no-worker"]

        def limit_files() -> None:
            if self.open_files is not None:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, hard))

        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, cwd=REPO, preexec_fn=limit_files)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            self.log.append(line)
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].strip()
                self.port = int(self.url.rsplit(":", 1)[1])
                threading.Thread(target=self._drain, daemon=True).start()
                return self.url
        raise RuntimeError("server did not start:\n" + "".join(lines))

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def server_address(server: LiveServer) -> tuple[str, int]:
    host, port = server.url.split("://")[1].rsplit(":", 1)
    return host, int(port)


def raw_socket(server: LiveServer, source: str = "127.0.0.1", tls: bool = True,
               timeout: float = 15.0) -> socket.socket:
    """A connection from ``source`` (any 127.x.y.z: another client on loopback), TLS done if asked."""
    sock = socket.create_connection(server_address(server), timeout=timeout, source_address=(source, 0))
    if not tls:
        return sock
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store to load: it is not used
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context.wrap_socket(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed); socket.timeout
    (the test fails) if it keeps the connection open past the socket's timeout."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return out
        if not chunk:
            return out
        out += chunk


def new_capture(client: httpx.Client, mode: str = "free") -> str:
    r = client.post("/v1/captures", json={"mode": mode, "name": "test", "device": {"model": "pytest"}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def files_under(root: Path) -> dict[str, int]:
    """Every file below ``root`` with its size (to show nothing changed outside a capture)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def read_json(path: Path) -> object:
    return json.loads(path.read_text())


def small_stray_folder(dst: Path, frames: int = 6) -> Path:
    """The first frames of the real Stray Scanner export, copied into the test's temp folder."""
    dst.mkdir()
    for name in ("camera_matrix.csv", "odometry.csv"):
        shutil.copy(STRAY / name, dst / name)
    for sub in ("depth", "confidence"):
        (dst / sub).mkdir()
        for p in sorted((STRAY / sub).iterdir())[:frames]:
            shutil.copy(p, dst / sub / p.name)
    return dst


CAMERA = {"width": 64, "height": 48, "fx": 50.0, "fy": 50.0, "cx": 32.0, "cy": 24.0}


def ws_connect(server: LiveServer, capture_id: str, token: str | None, open_timeout: float = 10):  # noqa: ANN201
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    url = server.url.replace("https://", "wss://") + f"/v1/captures/{capture_id}/live"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(url, ssl=context, additional_headers=headers, proxy=None, open_timeout=open_timeout)


def frame(index: int = 0, **changes: object) -> bytes:
    depth = np.full((12, 16), 1500, dtype=np.uint16)  # (H, W) mm
    confidence = np.full((12, 16), 2, dtype=np.uint8)
    header = {"index": index, "timestamp": 1.0, "camera": CAMERA, "pose": np.eye(4).tolist(),
              "color_bytes": 0, "depth": {"width": 16, "height": 12}, "confidence": True, **changes}
    return encode_frame(header, b"", depth, confidence)
