"""Issue 8 points 4 and 5: request headers bounded under httptools, a timeout for every phase of a
connection, caps on connections, and the pairing lock-out keyed on the real peer address.

The server runs with short configured timeouts; each test asserts that the connection is closed
(the socket's own timeout, several times longer, fails the test when it is not)."""

from __future__ import annotations

import select
import ssl
import time
from collections.abc import Iterator

import pytest
from server_test_kit import LiveServer, new_capture, raw_socket, read_until_closed

from capture_server.connections import ConnectionLimits
from capture_server.names import encode_tus_metadata
from core.settings import Settings

LIMITS = ConnectionLimits(tls_handshake_s=1.0, header_s=1.5, body_window_s=1.5, body_min_bytes=1024,
                          unauthenticated_body_s=1.5, max_unauthenticated_per_address=4,
                          max_header_bytes=32 * 1024, max_headers=100)


@pytest.fixture
def guarded(workspace) -> Iterator[LiveServer]:
    server = LiveServer(workspace, Settings(max_upload_bytes=1 << 20), limits=LIMITS)
    yield server
    server.stop()


def trickle(sock, data: bytes, every_s: float = 0.4) -> bytes:
    """Send ``data`` one byte at a time until the server answers or closes; what it answered."""
    for i in range(len(data)):
        try:
            sock.sendall(data[i:i + 1])
        except OSError:
            break
        if select.select([sock], [], [], every_s)[0]:
            break
    return read_until_closed(sock)


def test_headers_over_the_limit_are_refused_with_431(guarded: LiveServer) -> None:
    with raw_socket(guarded) as sock:
        sock.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40 * 1024)
        assert read_until_closed(sock).startswith(b"HTTP/1.1 431")
    with raw_socket(guarded) as sock:
        sock.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 431")
    with raw_socket(guarded) as sock:  # within the limits: answered, and the connection stays usable
        sock.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"a" * 8 * 1024 + b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_an_idle_tls_connection_and_a_stalled_handshake_are_closed(guarded: LiveServer) -> None:
    with raw_socket(guarded) as sock:  # TLS done, no request
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")
    with raw_socket(guarded, tls=False) as sock:  # TCP only: no ClientHello ever
        assert read_until_closed(sock) == b""


def test_headers_that_trickle_in_are_closed(guarded: LiveServer) -> None:
    with raw_socket(guarded) as sock:
        answer = trickle(sock, b"GET /v1/info HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_pair_body_at_one_byte_a_while_is_closed(guarded: LiveServer) -> None:
    body = b'{"code": "12345678", "name": "slow phone", "padding": "' + b"x" * 40 + b'"}'
    with raw_socket(guarded) as sock:
        sock.sendall(b"POST /v1/pair HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        answer = trickle(sock, body)
    assert b"200 OK" not in answer


def test_a_slow_authenticated_patch_is_cut_and_frees_its_upload_lock(guarded: LiveServer) -> None:
    token = guarded.token()
    with guarded.client(token) as c:
        cid = new_capture(c)
        meta = encode_tus_metadata({"capture_id": cid, "filename": "slow.bin"})
        created = c.post("/v1/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "64",
                                                 "Upload-Metadata": meta})
        path = created.headers["Location"].split("://", 1)[1].split("/", 1)[1]
        with raw_socket(guarded) as sock:
            sock.sendall(f"PATCH /{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                         "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: 64\r\n"
                         "Content-Type: application/offset+octet-stream\r\n\r\n".encode())
            answer = trickle(sock, b"z" * 64)
        assert b"204" not in answer.split(b"\r\n", 1)[0]
        statuses = []
        for _ in range(5):  # 409 while the cut PATCH is still keeping its bytes; never 423
            offset = int(c.head(f"/{path}", headers={"Tus-Resumable": "1.0.0"}).headers["Upload-Offset"])
            done = c.patch(f"/{path}", content=b"z" * (64 - offset), headers={
                "Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream"})
            statuses.append(done.status_code)
            if done.status_code != 409:
                break
        assert statuses[-1] == 204 and 423 not in statuses, statuses


def test_unauthenticated_connections_are_capped_per_address(guarded: LiveServer) -> None:
    held = [raw_socket(guarded, tls=False) for _ in range(LIMITS.max_unauthenticated_per_address)]
    try:
        time.sleep(0.2)
        with raw_socket(guarded, tls=False) as over:  # the next one from this address is closed at once
            over.settimeout(1.0)
            assert read_until_closed(over) == b""
        with raw_socket(guarded, source="127.0.0.2") as other:  # another address is not locked out
            other.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
            assert other.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


def test_pairing_lock_out_ignores_forwarded_addresses(guarded: LiveServer) -> None:
    statuses = []
    with guarded.client() as c:
        for i in range(8):
            r = c.post("/v1/pair", json={"code": "00000000", "name": "guess"},
                       headers={"X-Forwarded-For": f"10.0.0.{i}", "Forwarded": f"for=10.0.1.{i}"})
            statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}


def test_at_the_connection_cap_a_flooding_address_makes_room_for_a_phone(workspace) -> None:
    limits = ConnectionLimits(max_connections=8, max_unauthenticated_per_address=4)
    server = LiveServer(workspace, Settings(), limits=limits)
    held = [raw_socket(server, source=source) for source in ["127.0.0.2"] * 4 + ["127.0.0.3"] * 4]
    try:
        with raw_socket(server) as phone:  # the cap is reached: an idle flooder is closed for it
            phone.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
            assert phone.recv(65536).startswith(b"HTTP/1.1 200")
        closed = 0
        for sock in held:
            sock.setblocking(False)
            try:
                closed += sock.recv(1) == b""
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except OSError:
                closed += 1
        assert closed >= 1
    finally:
        for sock in held:
            sock.close()
        server.stop()
