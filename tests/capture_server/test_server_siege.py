"""Issue 8, done-when (server side, slow): 500 half-open and slow connections from 20 addresses on
loopback, held against the server process while a normal client pairs and uploads; every one of
them is closed within the configured timeouts, and the server, started under a 256 open-files
limit, raises that limit itself."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import resource
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from server_test_kit import ServerProcess, raw_socket

from capture_server.auth import DeviceStore
from capture_server.connections import ConnectionLimits
from capture_server.identity import server_dir
from capture_server.names import encode_tus_metadata

TIMEOUT_S = 10.0  # every phase timeout of the server under test
SLACK_S = 5.0  # scheduling on a loaded 2-core machine
ADDRESSES = [f"127.0.0.{i}" for i in range(2, 22)]  # 20 other clients, 25 connections each
KINDS = ("tcp", "tls-idle", "partial-headers", "slow-body")
LAUNCH = """
import sys
from capture_server.connections import ConnectionLimits
from capture_server.server import CaptureServer
from core.workspace import Workspace
t = float(sys.argv[2])
limits = ConnectionLimits(tls_handshake_s=t, header_s=t, body_window_s=t, unauthenticated_body_s=t)
server = CaptureServer(Workspace(sys.argv[1]), host="127.0.0.1", port=0, limits=limits, mdns=False,
                       run_worker=False)
server.run(lambda url: print("listening on", url, flush=True))
"""


@pytest.fixture
def many_files() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard open-files limit ({hard}) leaves no room for 500 sockets and the server's")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))  # this process holds 500 sockets
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def attacker(server: ServerProcess, kind: str, source: str) -> socket.socket:
    sock = raw_socket(server, source=source, tls=kind != "tcp")
    if kind == "partial-headers":
        sock.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n")
    elif kind == "slow-body":
        sock.sendall(b"POST /v1/pair HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 4096\r\n\r\n{")
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Read what is there without waiting (a 408, a TLS session ticket); True once the server closed."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:  # reset
        return True


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def phone_pairs_and_uploads(server: ServerProcess) -> None:
    code, _ = DeviceStore(server_dir(server.workspace)).new_code()
    with httpx.Client(base_url=server.url, verify=False, timeout=30) as c:
        r = c.post("/v1/pair", json={"code": code, "name": "phone"})
        assert r.status_code == 200, r.text
        c.headers["Authorization"] = "Bearer " + r.json()["token"]
        cid = c.post("/v1/captures", json={"mode": "free"}).json()["id"]
        data = os.urandom(4 << 20)
        created = c.post("/v1/uploads", headers={
            "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
            "Upload-Metadata": encode_tus_metadata({"capture_id": cid, "filename": "a.bin"})})
        done = c.patch(created.headers["Location"], content=data, headers={
            "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream"})
        assert done.status_code == 204, done.text
    uploaded = server.workspace.capture(cid).raw_dir / "a.bin"
    assert hashlib.sha256(uploaded.read_bytes()).digest() == hashlib.sha256(data).digest()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_500_slow_connections_do_not_lock_out_a_phone(workspace, many_files: None) -> None:
    argv = [sys.executable, "-c", LAUNCH, str(workspace.root), str(TIMEOUT_S)]
    server = ServerProcess(workspace, argv=argv, open_files=256)
    server.start()
    pid = server.proc.pid
    assert resource.prlimit(pid, resource.RLIMIT_NOFILE)[0] > 1024  # it raised its own limit
    baseline = open_files(pid)
    held: list[tuple[socket.socket, str, float]] = []
    closed_after: dict[socket.socket, float] = {}
    stop = threading.Event()

    def trickle() -> None:  # partial headers and slow bodies get a byte every 2 s
        while not stop.wait(2.0):
            for sock, kind, _ in list(held):
                if kind in ("partial-headers", "slow-body") and sock not in closed_after:
                    try:
                        sock.send(b"x")
                    except OSError:
                        pass

    def watch() -> None:  # when the server closes each one
        opened_at = {}
        while not stop.is_set():
            for sock, _, opened in list(held):
                opened_at.setdefault(sock, opened)
            waiting = [sock for sock in opened_at if sock not in closed_after]
            for sock in select.select(waiting, [], [], 0.2)[0] if waiting else []:
                if closed_by_server(sock):
                    closed_after[sock] = time.monotonic() - opened_at[sock]
            if not waiting:
                time.sleep(0.2)

    try:
        threading.Thread(target=trickle, daemon=True).start()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.monotonic()
        def open_one(n: int) -> None:
            kind = KINDS[n % len(KINDS)]
            held.append((attacker(server, kind, ADDRESSES[n % len(ADDRESSES)]), kind, time.monotonic()))

        with concurrent.futures.ThreadPoolExecutor(16) as pool:  # TLS handshakes release the GIL
            list(pool.map(open_one, range(500)))
        print(f"500 connections opened in {time.monotonic() - started:.1f} s")
        assert open_files(pid) >= baseline + 450  # they are held at once, not refused
        phone_pairs_and_uploads(server)
        deadline = max(opened for _, _, opened in held) + TIMEOUT_S + SLACK_S
        while len(closed_after) < len(held) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        watcher.join(5)
        assert len(closed_after) == 500, f"{500 - len(closed_after)} of 500 connections still open"
        assert max(closed_after.values()) <= TIMEOUT_S + SLACK_S
        # and its sockets are gone once the TLS close has had its own time (tls_shutdown_s).
        deadline = time.monotonic() + ConnectionLimits().tls_shutdown_s + SLACK_S
        while open_files(pid) > baseline + 5 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert open_files(pid) <= baseline + 5
    finally:
        stop.set()
        for sock, _, _ in held:
            sock.close()
        server.stop()
    assert "Traceback" not in "".join(server.log)
