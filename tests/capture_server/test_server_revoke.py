"""Issue 8 point 8: revoking a device cuts what it has open at once: its live WebSocket is closed
with 4401 and its PATCH in flight is ended with 401, whichever process revoked it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from server_test_kit import REPO, LiveServer, frame, new_capture, raw_socket, read_until_closed, ws_connect
from websockets.exceptions import ConnectionClosed

from capture_server.auth import DeviceStore
from capture_server.identity import server_dir
from capture_server.names import encode_tus_metadata


def pair(server: LiveServer) -> tuple[str, str]:
    code, _ = server.devices.new_code()
    pairing = server.devices.redeem(code, "soon revoked")
    return pairing.token, pairing.device.id


def test_devices_revoke_closes_the_devices_live_stream(live_server: LiveServer) -> None:
    token, device_id = pair(live_server)
    with live_server.client(token) as c:
        cid = new_capture(c, mode="rgbd")
    with ws_connect(live_server, cid, token) as ws:
        ws.send(frame(0))
        assert json.loads(ws.recv(timeout=10))["ack"] == 0
        revoked = subprocess.run([sys.executable, "-m", "capture_server", "devices", "--revoke", device_id,
                                  "--workspace", str(live_server.workspace.root)],
                                 capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
        assert revoked.returncode == 0, revoked.stderr
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(10):
                ws.recv(timeout=10)  # an ack still on its way may come first
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_revoking_a_device_ends_its_patch_in_flight(live_server: LiveServer) -> None:
    token, device_id = pair(live_server)
    size = 1 << 20
    with live_server.client(token) as c:
        cid = new_capture(c)
        meta = encode_tus_metadata({"capture_id": cid, "filename": "big.bin"})
        created = c.post("/v1/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(size),
                                                 "Upload-Metadata": meta})
        path = "/" + created.headers["Location"].split("://", 1)[1].split("/", 1)[1]
    with raw_socket(live_server) as sock:
        sock.sendall(f"PATCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                     f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: {size}\r\n"
                     "Content-Type: application/offset+octet-stream\r\n\r\n".encode() + b"a" * (size // 4))
        # The desktop revokes through the same DeviceStore code, from its own process or this one.
        DeviceStore(server_dir(live_server.workspace)).revoke(device_id)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    with live_server.client(token) as c:
        r = c.head(path, headers={"Tus-Resumable": "1.0.0"})
        assert r.status_code == 401
    upload = live_server.server.state.uploads.uploads(cid)[0]
    assert upload.state == "receiving" and upload.offset < size
