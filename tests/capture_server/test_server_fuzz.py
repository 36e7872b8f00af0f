"""Issue 8, done-when (server side): a seeded, bounded fuzz run of malformed requests against the
real server process on loopback, over every route (pairing, captures, tus uploads, events, share
links and pages, the live WebSocket) and the HTTP layer under them. Nothing may answer 5xx, the
server may print no traceback, and its memory (peak RSS) stays within 100 MiB of its start."""

from __future__ import annotations

import base64
import json
import random
import re
import ssl
import struct
from pathlib import Path

import httpx
import pytest
from server_test_kit import ServerProcess, frame, raw_socket, read_until_closed, ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from capture_server.auth import DeviceStore
from capture_server.identity import server_dir

SEED = 20261202
TUS = {"Tus-Resumable": "1.0.0"}
DEEP = b"[" * 3000 + b"]" * 3000
HOSTILE_BODIES = [
    DEEP,
    b'{"a": ' + b"{" * 100 + b"}" * 100 + b"}",
    b'{"code": ' + b"9" * 5000 + b"}",
    b'{"mode": NaN}',
    b'{"mode": "free", "device": {"model": Infinity}}',
    b"[1e400]",
    b'{"hours": 1e308}',
    b"\xff\xfe{}",
    b"",
    b"null",
    b'"text"',
    b"[]",
    b"{",
    b'{"mode": "free", "name": "' + b"x" * 60000 + b'"}',
    b'{"code": 12345678, "name": ["x"]}',
    b'{"hours": -1}',
    b'{"hours": true}',
    b'{"mode": "rgbd", "x": 1}',
    b'{"mode": "free", "device": {"k": {"nested": 1}}}',
    b'{"mode": "free", "device": {"' + b"k" * 900 + b'": 1}}',
]
HOSTILE_COUNTS = [
    b"\xb2",
    b"9" * 5000,
    str(2**63).encode(),
    b"-1",
    b"",
    b" 1",
    b"1.5",
    b"0x10",
    b"\xd9\xa1",
    b"1e3",
]
HOSTILE_IDS = [
    "..",
    "%2e%2e",
    "a" * 300,
    "%C3%A9",
    "%00",
    ".staging-x",
    "-x",
    "%2F..%2F..%2Fetc",
    "a%20b",
    "x" * 128,
    "%FF",
]
HOSTILE_NAMES = [
    "../x.jpg",
    "/abs.jpg",
    "a/../../b.jpg",
    "x" * 2000,
    ".hidden",
    "a\\b.jpg",
    "a//b.jpg",
    "1/2/3/4/5/6.jpg",
    "clash",
    "clash/inner.bin",
    "CLASH",
    "",
    "\u202e.jpg",
]
ROUTES = [
    ("GET", "/v1/captures/{id}"),
    ("POST", "/v1/captures/{id}/finish"),
    ("GET", "/v1/captures/{id}/events"),
    ("GET", "/v1/captures/{id}/coverage"),
    ("GET", "/v1/captures/{id}/results"),
    ("GET", "/v1/captures/{id}/results/{id}"),
    ("POST", "/v1/captures/{id}/share"),
    ("HEAD", "/v1/uploads/{id}/{id}"),
    ("PATCH", "/v1/uploads/{id}/{id}"),
    ("DELETE", "/v1/uploads/{id}/{id}"),
    ("GET", "/s/{id}"),
    ("GET", "/s/{id}/model.usdz"),
    ("GET", "/app/{id}"),
]
MAX_GROWTH = 100 * 1024 * 1024
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


def meta(**values: str) -> bytes:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items()).encode()


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def http_cases(rng: random.Random, cid: str, upload: str) -> list[tuple[str, str, dict, bytes]]:
    """(method, path, headers, body): every hostile value on the routes it reaches, then random mixes."""
    json_routes = ["/v1/pair", "/v1/captures", f"/v1/captures/{cid}/share"]
    cases = [
        ("POST", path, {"Content-Type": "application/json"}, body)
        for path in json_routes
        for body in HOSTILE_BODIES
    ]
    for value in HOSTILE_COUNTS:
        cases.append(
            (
                "POST",
                "/v1/uploads",
                {**TUS, "Upload-Length": value, "Upload-Metadata": meta(capture_id=cid, filename="a.jpg")},
                b"",
            )
        )
        cases.append(
            (
                "PATCH",
                upload,
                {**TUS, "Upload-Offset": value, "Content-Type": "application/offset+octet-stream"},
                b"abc",
            )
        )
        cases.append(("GET", f"/v1/captures/{cid}/events?after={value.decode('latin-1')}", {}, b""))
    for name in HOSTILE_NAMES:
        cases.append(
            (
                "POST",
                "/v1/uploads",
                {**TUS, "Upload-Length": b"3", "Upload-Metadata": meta(capture_id=cid, filename=name)},
                b"",
            )
        )
    for header in (
        b"capture_id",
        b"capture_id !!!",
        b"filename YQ==,filename YQ==",
        b"a b c",
        b",,,",
        b"\xff",
    ):
        cases.append(("POST", "/v1/uploads", {**TUS, "Upload-Length": b"3", "Upload-Metadata": header}, b""))
    for method, template in ROUTES:
        for hostile in HOSTILE_IDS:
            cases.append((method, template.replace("{id}", hostile), TUS, b""))
    for _ in range(60):  # random mixes of the above, with broken tus headers and content types
        method, template = rng.choice(ROUTES)
        path = template.replace("{id}", rng.choice([cid, *HOSTILE_IDS]), 1).replace(
            "{id}", rng.choice(["a" * 32, "0" * 32, "g" * 32, *HOSTILE_IDS])
        )
        headers = {
            "Tus-Resumable": rng.choice([b"1.0.0", b"0.2.2", b"", b"\xb2"]),
            "Content-Type": rng.choice([b"application/offset+octet-stream", b"text/plain", b"\xff"]),
            "Upload-Offset": rng.choice(HOSTILE_COUNTS + [b"0"]),
            "Upload-Checksum": rng.choice([b"sha1 !!", b"crc32 AAAA", b"sha1", b"sha256 " + b"A" * 44]),
        }
        cases.append(
            (method, path, headers, rng.choice(HOSTILE_BODIES + [rng.randbytes(rng.randint(1, 4096))]))
        )
    return cases


RAW_CASES = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /v1/info HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET /v1/info HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n",
    b"GET /v1/info HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    b"POST /v1/pair HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /v1/pair HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    b"GET /v1/captures/a\x00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/info HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n",
    b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (16 << 20),  # a 16 MiB header
    b"POST /v1/pair HTTP/1.1\r\nHost: x\r\nContent-Length: 268435456\r\n\r\n" + b"{" * (8 << 20),
    b"POST /v1/pair HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"10000\r\n"
    + b"1" * 0x10000
    + b"\r\n"
    + b"10000\r\n"
    + b"1" * 0x10000
    + b"\r\n0\r\n\r\n",
    b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n" * 49
    + b"GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /v1/captures HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
    + b"A" * 20000
    + b"\r\n\r\n",
]


def header_bytes(header: object) -> bytes:
    return json.dumps(header).encode() if not isinstance(header, bytes) else header


def live_frames() -> list[bytes]:
    """One malformed live frame per case (the server closes the stream on the first bad one)."""
    good = frame(0)
    (n,) = struct.unpack(">I", good[:4])
    header, payload = json.loads(good[4 : 4 + n]), good[4 + n :]

    def with_header(raw: bytes, body: bytes = payload) -> bytes:
        return struct.pack(">I", len(raw)) + raw + body

    nan = json.dumps({**header, "timestamp": 1.0}).replace("1.0", "NaN", 1).encode()
    return [
        b"",
        b"\x00\x00",
        struct.pack(">I", 0) + b"{}",
        struct.pack(">I", 1 << 30) + b"{}",
        with_header(b"not json"),
        with_header(nan),
        with_header(b"[" * 3000 + b"]" * 3000),
        with_header(b'{"index": ' + b"9" * 5000 + b"}"),
        with_header(header_bytes({**header, "index": -1})),
        with_header(header_bytes({**header, "index": 10**12})),
        with_header(header_bytes({**header, "camera": None})),
        with_header(header_bytes({**header, "camera": {**header["camera"], "fx": -1}})),
        with_header(header_bytes({**header, "depth": {"width": 100000, "height": 100000}})),
        with_header(header_bytes(header), payload[:-1]),
        with_header(header_bytes({**header, "color_bytes": 3}), b"abc" + payload),
        with_header(header_bytes({**header, "confidence": True}), payload[:-1] + b"\x07"),
        with_header(header_bytes({**header, "pose": [[1, 0], [0, 1]]})),
    ]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_malformed_requests_never_get_a_5xx_a_traceback_or_unbounded_memory(
    server_process: ServerProcess,
) -> None:
    rng = random.Random(SEED)
    server_process.start()
    workspace = server_process.workspace
    devices = DeviceStore(server_dir(workspace))
    failures: list[str] = []
    sent = 0
    with httpx.Client(base_url=server_process.url, verify=False, timeout=30) as anon:
        codes = [devices.new_code()[0] for _ in range(2)]
        token = anon.post("/v1/pair", json={"code": codes[0], "name": "fuzz"}).json()["token"]
        revoked = anon.post("/v1/pair", json={"code": codes[1], "name": "gone"}).json()
        devices.revoke(revoked["device_id"])
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server_process.url, verify=False, timeout=30, headers=auth) as c:
        cid = c.post("/v1/captures", json={"mode": "free"}).json()["id"]
        rgbd = c.post("/v1/captures", json={"mode": "rgbd"}).json()["id"]
        created = c.post(
            "/v1/uploads",
            headers={**TUS, "Upload-Length": "10", "Upload-Metadata": meta(capture_id=cid, filename="u.bin")},
        )
        upload = "/" + created.headers["Location"].split("://", 1)[1].split("/", 1)[1]
        c.get("/v1/captures"), c.get(f"/v1/captures/{cid}")  # warm: imports and caches are part of the start
        start_kib = memory_kib(server_process.proc.pid, "VmRSS")
        for method, path, headers, body in http_cases(rng, cid, upload):
            who = rng.choice(
                [
                    auth,
                    auth,
                    {"Authorization": ""},
                    {"Authorization": "Basic x"},
                    {"Authorization": "Bearer " + revoked["token"]},
                ]
            )
            try:
                r = c.request(method, path, headers={**headers, **who}, content=body)
            except httpx.LocalProtocolError:
                continue  # a value the client library itself will not send (raw cases cover those)
            sent += 1
            if r.status_code >= 500:
                failures.append(f"{method} {path[:80]} -> {r.status_code} {r.text[:200]}")
        # Requests without a token on every JSON route too.
        for body in HOSTILE_BODIES:
            r = httpx.post(server_process.url + "/v1/pair", content=body, verify=False, timeout=30)
            sent += 1
            if r.status_code >= 500:
                failures.append(f"anonymous pair -> {r.status_code}")
    for raw in RAW_CASES:
        with raw_socket(server_process) as sock:
            try:
                sock.sendall(raw)
            except OSError:
                pass  # the server refused and closed before reading it all
            answer = read_until_closed(sock)
        sent += 1
        if any(int(code) >= 500 for code in STATUS.findall(answer)):
            failures.append(f"raw {raw[:60]!r} -> {answer[:120]!r}")
    # Four connections at once, each sending 32 MiB of one unfinished header: a server that keeps
    # partial headers would hold 128 MiB.
    held = [raw_socket(server_process) for _ in range(4)]
    for sock in held:
        try:
            sock.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (32 << 20))
        except OSError:
            pass
        sent += 1
    for sock in held:
        answer = read_until_closed(sock)
        sock.close()
        if any(int(code) >= 500 for code in STATUS.findall(answer)):
            failures.append(f"32 MiB header -> {answer[:120]!r}")
    sent += _fuzz_live(server_process, token, rgbd, cid, failures)
    peak_kib = memory_kib(server_process.proc.pid, "VmHWM")
    server_process.stop()
    log = "".join(server_process.log)
    assert sent >= 200
    assert not failures, "\n".join(failures) + "\n" + log[-3000:]
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
    assert (peak_kib - start_kib) * 1024 <= MAX_GROWTH, (start_kib, peak_kib)


def _fuzz_live(server: ServerProcess, token: str, rgbd: str, free: str, failures: list[str]) -> int:
    """Malformed frames, each on a fresh stream, and refused handshakes; returns how many were sent."""
    sent = 0
    cases = [(rgbd, token, message) for message in live_frames()]
    cases += [
        (free, token, frame(0)),
        ("no-such-capture", token, frame(0)),
        ("%2e%2e", token, frame(0)),
        (rgbd, "", frame(0)),
        (rgbd, "wrong", frame(0)),
        (rgbd, token, "text, not binary"),
        (rgbd, token, b"\x00" * (17 << 20)),
    ]
    for i, (capture_id, who, message) in enumerate(cases):
        sent += 1
        try:
            with ws_connect(server, capture_id, who or None, open_timeout=30) as ws:
                ws.send(message)
                for _ in range(3):
                    ws.recv(timeout=15)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            if code == 1011 or 4500 <= code < 4600:
                failures.append(
                    f"live {capture_id} {bytes(message[:40]) if isinstance(message, bytes) else message}"
                    f" -> close {code}"
                )
        except InvalidStatus as refused:
            if refused.response.status_code >= 500:
                failures.append(f"live handshake {capture_id} -> {refused.response.status_code}")
        except (TimeoutError, ssl.SSLError, OSError) as e:
            failures.append(f"live case {i} {capture_id}: {type(e).__name__} {e}")
    return sent
