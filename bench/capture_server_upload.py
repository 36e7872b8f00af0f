"""Loopback upload goodput of the capture server against a plain socket copy of the same bytes.

    .venv/bin/python bench/capture_server_upload.py [--size-mib 2048] [--clients 8] [--http]

Both sides write the bytes to a file on the same disk, fsync it, and check SHA-256: the baseline
receiver hashes what it wrote; for the server, the client compares the SHA-256 the server lists
for the finished file with its own. Also reports the server's memory growth (RSS) during the big
upload, and eight clients uploading at once. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from capture_server.auth import DeviceStore  # noqa: E402
from capture_server.identity import server_dir  # noqa: E402
from capture_server.names import encode_tus_metadata  # noqa: E402
from core.settings import Settings, save_settings  # noqa: E402
from core.workspace import Workspace  # noqa: E402

BLOCK = 1 << 20


def make_source(path: Path, size: int) -> str:
    h = hashlib.sha256()
    block = os.urandom(BLOCK)
    with open(path, "wb") as f:
        for i in range(size // BLOCK):
            data = block[i % 251:] + block[: i % 251]  # varied, cheap to make
            f.write(data)
            h.update(data)
    return h.hexdigest()


def socket_copy(src: Path, dst: Path) -> tuple[float, str, float]:
    """Baseline: sendfile over loopback TCP; the receiver writes, fsyncs and hashes."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    result: dict[str, str] = {}

    def receive() -> None:
        cpu0 = time.thread_time()
        conn, _ = server.accept()
        h = hashlib.sha256()
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        with conn, open(dst, "wb") as f:
            while n := conn.recv_into(buf):
                f.write(view[:n])
                h.update(view[:n])
            f.flush()
            os.fsync(f.fileno())
        result["sha256"] = h.hexdigest()
        result["cpu"] = str(time.thread_time() - cpu0)

    t0 = time.perf_counter()
    thread = threading.Thread(target=receive)
    thread.start()
    with socket.create_connection(("127.0.0.1", port)) as s, open(src, "rb") as f:
        s.sendfile(f)
    thread.join()
    server.close()
    return time.perf_counter() - t0, result["sha256"], float(result["cpu"])


def _pythonpath() -> str:
    return os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


class Server:
    def __init__(self, root: Path, http: bool) -> None:
        self.workspace = Workspace(root / "ws")
        save_settings(self.workspace.settings_path,
                      Settings(max_upload_bytes=1 << 40, allow_plain_http=http, https=not http))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "capture_server", "serve", "--workspace", str(self.workspace.root),
             "--host", "127.0.0.1", "--port", "0", "--no-mdns", "--no-worker"],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": _pythonpath()},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].strip()
                break
        store = DeviceStore(server_dir(self.workspace))
        code, _ = store.new_code()
        self.token = store.redeem(code, "bench").token
        self.ps = psutil.Process(self.proc.pid)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=False, timeout=600,
                            headers={"Authorization": f"Bearer {self.token}"})

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def raw_patch(server: Server, url: str, src: Path) -> None:
    """PATCH the whole file from a bare (TLS) socket: the cheapest possible client. Plain HTTP
    uses sendfile; TLS sends 1 MiB blocks (full 16 KiB records; socket.sendfile's fallback would
    send 8 KiB records, which costs the server a third more CPU per byte)."""
    import ssl

    size = src.stat().st_size
    host, port = server.url.split("://", 1)[1].split(":")
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    head = (f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.token}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: {size}\r\n"
            "Content-Type: application/offset+octet-stream\r\n\r\n").encode()
    sock = socket.create_connection((host, int(port)))
    if server.url.startswith("https"):
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        sock = ctx.wrap_socket(sock)
    with sock, open(src, "rb") as f:
        sock.sendall(head)
        if server.url.startswith("https"):
            while block := f.read(BLOCK):
                sock.sendall(block)
        else:
            sock.sendfile(f)
        reply = sock.recv(65536).decode("latin-1")
    assert reply.startswith("HTTP/1.1 204"), reply


def upload(server: Server, src: Path, name: str, expected_sha256: str, raw: bool = False) -> None:
    tus = {"Tus-Resumable": "1.0.0"}
    size = src.stat().st_size
    with server.client() as c:
        cid = c.post("/v1/captures", json={"mode": "import", "name": name}).json()["id"]
        meta = encode_tus_metadata({"capture_id": cid, "filename": name})
        url = c.post("/v1/uploads", headers={**tus, "Upload-Length": str(size),
                                             "Upload-Metadata": meta}).headers["Location"]
        if raw:
            raw_patch(server, url, src)
            files = c.get(f"/v1/captures/{cid}").json()["files"]
            assert files[0]["sha256"] == expected_sha256, "hash mismatch"
            return

        def body():  # noqa: ANN202
            with open(src, "rb") as f:
                while block := f.read(BLOCK):
                    yield block

        r = c.patch(url, content=body(), headers={**tus, "Upload-Offset": "0", "Content-Length": str(size),
                                                  "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 204, r.text
        files = c.get(f"/v1/captures/{cid}").json()["files"]
    assert files[0]["sha256"] == expected_sha256, "hash mismatch"


def cpu_s(server: Server) -> float:
    t = server.ps.cpu_times()
    return t.user + t.system


def measure(server: Server, run) -> tuple[float, float, float]:  # noqa: ANN001
    """(wall seconds, server CPU seconds, server peak RSS growth in MiB) of ``run()``."""
    rss0, cpu0 = server.ps.memory_info().rss, cpu_s(server)
    peak = [rss0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], server.ps.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    return wall, cpu_s(server) - cpu0, (peak[0] - rss0) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--client-mib", type=int, default=256, help="size of each concurrent upload")
    ap.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each single transfer (median shown)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        size = args.size_mib * BLOCK
        src = root / "source.bin"
        digest = make_source(src, size)
        rows = []

        def median_run(run):  # noqa: ANN001, ANN202
            """Median wall time of ``args.repeats`` runs, with that run's other figures."""
            results = sorted((run(k) for k in range(args.repeats)), key=lambda r: r[0])
            return results[len(results) // 2]

        def copy_once(k: int) -> tuple[float, float]:
            t, got, cpu = socket_copy(src, root / "copy.bin")
            assert got == digest
            (root / "copy.bin").unlink()
            return t, cpu

        t, cpu = median_run(copy_once)
        base = size / t / 2**20
        rows.append(("plain socket copy (sendfile; receiver writes, fsyncs, SHA-256)", t, base, "1.00x",
                     cpu, ""))

        server = Server(root, args.http)
        scheme = "HTTP" if args.http else "HTTPS"
        for label, raw in (("bare-socket client", True), ("httpx client", False)):
            t, cpu, mem = median_run(lambda k, raw=raw: measure(
                server, lambda: upload(server, src, f"big-{raw}-{k}.bin", digest, raw=raw)))
            rows.append((f"server, tus PATCH over {scheme}, {label}", t, size / t / 2**20,
                         f"{size / t / 2**20 / base:.2f}x", cpu, f"{mem:.0f} MiB"))
            for done in server.workspace.root.glob("captures/*/raw/big-*.bin"):
                done.unlink()  # keep the scratch disk from filling up

        small = root / "small.bin"
        small_digest = make_source(small, args.client_mib * BLOCK)
        threads = [threading.Thread(target=upload, args=(server, small, f"c{i}.bin", small_digest, True))
                   for i in range(args.clients)]

        def run_all() -> None:
            for th in threads:
                th.start()
            for th in threads:
                th.join()

        t, cpu, mem = measure(server, run_all)
        total = args.clients * args.client_mib * BLOCK
        rows.append((f"{args.clients} bare-socket clients at once, {args.client_mib} MiB each, {scheme}", t,
                     total / t / 2**20, f"{total / t / 2**20 / base:.2f}x", cpu, f"{mem:.0f} MiB"))
        server.stop()

    try:
        import httptools  # noqa: F401

        parser = "httptools"
    except ImportError:
        parser = "h11"
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    print(f"\n{args.size_mib} MiB over loopback, median of {args.repeats}; {os.cpu_count()} CPUs, load "
          f"average {os.getloadavg()[0]:.1f}; uvicorn HTTP parser: {parser}, event loop: {loop}\n")
    print("| transfer | seconds | MiB/s | vs socket copy | receiver CPU s | server RSS growth |")
    print("|---|---|---|---|---|---|")
    for name, t, rate, ratio, cpu, mem in rows:
        print(f"| {name} | {t:.1f} | {rate:.0f} | {ratio} | {cpu:.1f} | {mem} |")


if __name__ == "__main__":
    main()
