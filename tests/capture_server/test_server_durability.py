"""The server process is SIGKILLed mid-upload, restarted, and the uploads resume: acknowledged
bytes are never lost, a partial upload is never visible as a finished file, stored files match
their hashes. Also a real disk-full (a small tmpfs) during a write."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_test_kit import LiveServer, ServerProcess, files_under, new_capture
from tusclient import client as tus_client

from capture_server.auth import DeviceStore
from capture_server.identity import server_dir
from capture_server.names import encode_tus_metadata
from core.settings import Settings
from core.workspace import Workspace

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
TUS = {"Tus-Resumable": "1.0.0"}


def pair(workspace: Workspace) -> str:
    store = DeviceStore(server_dir(workspace))
    code, _ = store.new_code()
    return store.redeem(code, "durability test").token


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, verify=False, timeout=30, headers={"Authorization": f"Bearer {token}"})


def test_tuspy_resumes_against_a_restarted_server(server_process: ServerProcess, tmp_path: Path) -> None:
    url = server_process.start()
    token = pair(server_process.workspace)
    with client(url, token) as c:
        cid = new_capture(c, "import")
    data = random.Random(1).randbytes(12 * 1024 * 1024)
    src = tmp_path / "walkaround.mov"
    src.write_bytes(data)
    headers = {"Authorization": f"Bearer {token}"}
    meta = {"capture_id": cid, "filename": "walkaround.mov", "kind": "video"}
    uploader = tus_client.TusClient(url + "/v1/uploads", headers=headers).uploader(
        str(src), chunk_size=512 * 1024, verify_tls_cert=False, metadata=meta)
    failure: list[BaseException] = []

    def upload() -> None:
        try:
            uploader.upload()
        except BaseException as e:  # the server dies under it
            failure.append(e)

    thread = threading.Thread(target=upload)
    thread.start()
    uploads = server_process.workspace.capture(cid).root / ".uploads"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = list(uploads.glob("*.part"))
        if parts and parts[0].stat().st_size > len(data) // 3:
            break
        time.sleep(0.005)
    server_process.kill()
    thread.join(60)
    assert failure, "the upload should have been cut mid-file"
    raw = server_process.workspace.capture(cid).raw_dir
    assert not (raw / "walkaround.mov").exists()

    server_process.start()  # same port, so the upload URL still works
    resumed = tus_client.TusClient(url + "/v1/uploads", headers=headers).uploader(
        str(src), url=uploader.url, chunk_size=512 * 1024, verify_tls_cert=False, metadata=meta)
    start = resumed.get_offset()
    assert 0 < start < len(data)
    resumed.upload()
    stored = (raw / "walkaround.mov").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    server_process.stop()


def _body(data: bytes, kill_at: int | None, server: ServerProcess) -> Iterator[bytes]:
    sent = 0
    for i in range(0, len(data), 32 * 1024):
        chunk = data[i:i + 32 * 1024]
        if kill_at is not None and sent + len(chunk) > kill_at:
            yield chunk[: kill_at - sent]
            server.kill()
            return
        yield chunk
        sent += len(chunk)


def _kill_and_resume(server: ServerProcess, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    server.start()
    token = pair(server.workspace)
    with client(server.url, token) as c:
        cid = new_capture(c)
    capture = server.workspace.capture(cid)
    files = {f"photo_{i}.jpg": rng.randbytes(rng.randint(300_000, 1_200_000)) for i in range(3)}
    urls: dict[str, str] = {}
    acked = dict.fromkeys(files, 0)
    kill_points = sorted(rng.sample(range(1, sum(map(len, files.values()))), kills))
    sent_total, killed = 0, 0
    while len([n for n in files if acked[n] < len(files[n])]):
        if server.proc is None or server.proc.poll() is not None:
            server.start()
        with client(server.url, token) as c:
            for name, data in files.items():
                if name not in urls:
                    r = c.post("/v1/uploads", headers={**TUS, "Upload-Length": str(len(data)),
                               "Upload-Metadata": encode_tus_metadata({"capture_id": cid, "filename": name})})
                    assert r.status_code == 201, r.text
                    urls[name] = r.headers["Location"]
                offset = int(c.head(urls[name], headers=TUS).headers["Upload-Offset"])
                # Acknowledged bytes survive; unacknowledged ones are either kept or dropped whole.
                assert acked[name] <= offset <= len(data)
                part = capture.root / ".uploads" / (urls[name].rsplit("/", 1)[1] + ".part")
                if offset < len(data):
                    assert not (capture.raw_dir / name).exists()
                    assert part.read_bytes()[:offset] == data[:offset]
                acked[name] = offset
                if offset == len(data):
                    continue
                size = min(len(data) - offset, rng.randint(64 * 1024, 512 * 1024))
                piece = data[offset:offset + size]
                next_kill = kill_points[killed] if killed < len(kill_points) else None
                kill_at = None
                if next_kill is not None and next_kill < sent_total + size:
                    kill_at = next_kill - sent_total
                use_checksum = rng.random() < 0.5
                headers = {**TUS, "Upload-Offset": str(offset),
                           "Content-Type": "application/offset+octet-stream"}
                if use_checksum:
                    digest = base64.b64encode(hashlib.sha1(piece).digest()).decode()
                    headers["Upload-Checksum"] = f"sha1 {digest}"
                try:
                    r = c.patch(urls[name], content=_body(piece, kill_at, server), headers=headers)
                    if kill_at is None:
                        assert r.status_code == 204, r.text
                        acked[name] = int(r.headers["Upload-Offset"])
                except httpx.HTTPError:
                    assert kill_at is not None
                sent_total += size if kill_at is None else kill_at
                if kill_at is not None:
                    killed += 1
                    break
    assert killed == kills
    for name, data in files.items():
        stored = capture.raw_dir / name
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert list((capture.root / ".uploads").glob("*.part")) == []
    server.stop()


def test_sigkill_at_twenty_random_points_then_resume(server_process: ServerProcess) -> None:
    _kill_and_resume(server_process, kills=24, seed=2026)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs (root only), so writes fail with ENOSPC like a full disk."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_publishes_nothing_half_written(tiny_disk: Path) -> None:
    workspace = Workspace(tiny_disk / "ws")
    server = LiveServer(workspace, Settings())
    try:
        token = server.token()
        with server.client(token) as c:
            cid = new_capture(c)
            small = os.urandom(1024 * 1024)
            meta = encode_tus_metadata({"capture_id": cid, "filename": "first.jpg"})
            url = c.post("/v1/uploads", headers={**TUS, "Upload-Length": str(len(small)),
                                                 "Upload-Metadata": meta}).headers["Location"]
            r = c.patch(url, content=small, headers={**TUS, "Upload-Offset": "0",
                                                     "Content-Type": "application/offset+octet-stream"})
            assert r.status_code == 204
            big = os.urandom(5 * 1024 * 1024)
            meta = encode_tus_metadata({"capture_id": cid, "filename": "second.mp4"})
            url = c.post("/v1/uploads", headers={**TUS, "Upload-Length": str(len(big)),
                                                 "Upload-Metadata": meta}).headers["Location"]
            before = files_under(workspace.root)
            r = c.patch(url, content=big, headers={**TUS, "Upload-Offset": "0",
                                                   "Content-Type": "application/offset+octet-stream"})
            assert r.status_code == 507, r.text
            assert r.json()["where"] == "second.mp4"
            assert c.head(url, headers=TUS).headers["Upload-Offset"] == "0"
            assert files_under(workspace.root) == before  # the partial file is cut back to 0
            raw = workspace.capture(cid).raw_dir
            assert sorted(p.name for p in raw.iterdir()) == ["first.jpg"]
            assert (raw / "first.jpg").read_bytes() == small
            # With the disk full, finishing cannot rewrite the manifest: it stays as it was.
            assert c.delete(url, headers=TUS).status_code == 204
            filler = tiny_disk / "filler"
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            r = c.post(f"/v1/captures/{cid}/finish")
            assert r.status_code == 507, r.text
            assert workspace.capture(cid).load().status == "receiving"
            assert not [p for p in workspace.capture(cid).root.iterdir() if p.name.endswith(".tmp")]
            filler.unlink()
            assert c.post(f"/v1/captures/{cid}/finish").status_code in (200, 202)
    finally:
        server.stop()
