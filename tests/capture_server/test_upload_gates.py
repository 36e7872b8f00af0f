"""Upload gates through the real server on loopback: a checksummed PATCH keeps nothing until its
checksum is right, and no offset is acknowledged before its bytes were fsynced.

Checkpoints are made as eager as they go (every byte, every moment) so that a checkpoint taken
inside a checksummed PATCH would show on every run, not only for bodies over 64 MiB or 2 s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
from server_test_kit import LiveServer, new_capture

import capture_server.uploads as uploads
from capture_server.names import encode_tus_metadata
from core.capture import Manifest, utc_now

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def eager_checkpoints(monkeypatch):
    monkeypatch.setattr(uploads, "CHECKPOINT_BYTES", 1)
    monkeypatch.setattr(uploads, "CHECKPOINT_S", 0.0)


def _create(c: httpx.Client, capture_id: str, filename: str, length: int) -> str:
    meta = encode_tus_metadata({"capture_id": capture_id, "filename": filename})
    r = c.post("/v1/uploads", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": meta})
    assert r.status_code == 201, r.text
    return r.headers["Location"]


def _patch(c: httpx.Client, url: str, offset: int, body: bytes, checksum_of: bytes | None = None):
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
    if checksum_of is not None:
        headers["Upload-Checksum"] = "sha1 " + base64.b64encode(hashlib.sha1(checksum_of).digest()).decode()
    return c.patch(url, content=body, headers=headers)


def _offset(c: httpx.Client, url: str) -> int:
    return int(c.head(url, headers=TUS).headers["Upload-Offset"])


def _upload_files(workspace, capture_id: str) -> tuple[Path, Path]:
    folder = workspace.capture(capture_id).root / uploads.UPLOADS_DIR
    part = next(folder.glob("*.part"))
    return part, part.with_suffix(".json")


def test_a_checksum_mismatch_at_offset_6_keeps_the_first_6_bytes_and_nothing_else(
        live_server: LiveServer, eager_checkpoints) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        url = _create(c, cid, "photo.jpg", 12)
        assert _patch(c, url, 0, b"abcdef").status_code == 204
        r = _patch(c, url, 6, b"ghiXkl", checksum_of=b"ghijkl")  # one byte changed on the way
        assert r.status_code == 460 and r.json()["where"] == "Upload-Checksum"
        assert _offset(c, url) == 6
        part, state = _upload_files(live_server.workspace, cid)
        assert part.read_bytes() == b"abcdef"
        assert json.loads(state.read_text())["offset"] == 6
        # A resume from the acknowledged offset completes the file with the right bytes only.
        assert _patch(c, url, 6, b"ghijkl", checksum_of=b"ghijkl").status_code == 204
        info = c.head(url, headers=TUS)
        assert info.headers["Upload-Offset"] == "12"
    raw = live_server.workspace.capture(cid).raw_dir / "photo.jpg"
    assert raw.read_bytes() == b"abcdefghijkl"


def test_a_checksummed_patch_cut_off_midway_keeps_nothing_of_it(workspace, eager_checkpoints) -> None:
    """The store under the HTTP layer, where a dropped connection ends in ``abort``."""
    with workspace.staged_capture("cap") as staged:
        staged.raw_dir.mkdir()
        staged.save(Manifest(id="cap", name="cap", created=utc_now(), mode="free", status="receiving"))
    store = uploads.UploadStore(workspace, max_bytes=1 << 20)
    info = store.create("cap", "clip.mov", 4000)
    writer = store.open_patch("cap", info.id, 0)
    writer.write(b"x" * 6)
    assert writer.finish().offset == 6
    digest = base64.b64encode(hashlib.sha1(b"y" * 3994).digest()).decode()
    writer = store.open_patch("cap", info.id, 6, ("sha1", digest))
    writer.write(b"y" * 1000)
    writer.write(b"y" * 1000)
    assert writer.abort().offset == 6  # the phone lost Wi-Fi: the checksum can never be checked
    assert store.get("cap", info.id).offset == 6
    part, _ = _upload_files(workspace, "cap")
    assert part.read_bytes() == b"x" * 6


class DurabilityLog:
    """What reached the disk, in order: fsyncs of a partial file (with its size then) and the
    offsets written into the upload's state file."""

    def __init__(self, monkeypatch) -> None:
        self.events: list[tuple[str, int]] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            real_fsync(fd)
            path = os.readlink(f"/proc/self/fd/{fd}")
            if path.endswith(".part"):
                self.events.append(("fsync", os.fstat(fd).st_size))

        def replace(src, dst, *args, **kwargs) -> None:
            if str(dst).endswith(".json") and f"/{uploads.UPLOADS_DIR}/" in str(dst):
                self.events.append(("offset", json.loads(Path(src).read_text())["offset"]))
            real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)

    def offsets_recorded_before_their_bytes_were_synced(self) -> list[int]:
        synced = 0
        unsynced = []
        for kind, value in self.events:
            if kind == "fsync":
                synced = max(synced, value)
            elif value > synced:
                unsynced.append(value)
        return unsynced


@pytest.mark.parametrize("checksummed", [False, True])
def test_every_acknowledged_offset_was_fsynced_first(live_server: LiveServer, monkeypatch,
                                                     checksummed) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        url = _create(c, cid, "scan.bin", 3000)
        log = DurabilityLog(monkeypatch)
        acknowledged = []
        for offset in (0, 1000, 2000):
            body = bytes([65 + offset // 1000]) * 1000
            r = _patch(c, url, offset, body, checksum_of=body if checksummed else None)
            assert r.status_code == 204
            acknowledged.append(int(r.headers["Upload-Offset"]))
            fsynced = max((v for k, v in log.events if k == "fsync"), default=0)
            assert fsynced >= acknowledged[-1], f"offset {acknowledged[-1]} acknowledged, {fsynced} synced"
        monkeypatch.undo()
    assert acknowledged == [1000, 2000, 3000]
    assert [v for k, v in log.events if k == "offset"][:2] == [1000, 2000]
    assert log.offsets_recorded_before_their_bytes_were_synced() == []
