"""UploadStore without HTTP: each crash window of a write and of publishing, recovered exactly."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os

import pytest

from capture_server.errors import ChecksumMismatch, Conflict, RequestError, TooLarge, UploadGone
from capture_server.uploads import UploadInfo, UploadStore
from core.capture import Manifest, utc_now
from core.workspace import Workspace


@pytest.fixture
def store(tmp_path) -> UploadStore:
    workspace = Workspace(tmp_path / "ws")
    with workspace.staged_capture("cap") as staged:
        staged.raw_dir.mkdir()
        staged.save(Manifest(id="cap", name="cap", created=utc_now(), mode="free", status="receiving"))
    return UploadStore(workspace, max_bytes=1 << 20)


def paths(store: UploadStore, info: UploadInfo):
    folder = store.workspace.capture("cap").root / ".uploads"
    return folder / f"{info.id}.part", folder / f"{info.id}.json"


def sha1(data: bytes) -> tuple[str, str]:
    return "sha1", base64.b64encode(hashlib.sha1(data).digest()).decode()


def test_bytes_past_the_persisted_offset_are_cut_off(store: UploadStore) -> None:
    info = store.create("cap", "a.bin", 10)
    writer = store.open_patch("cap", info.id, 0)
    writer.write(b"abcd")
    writer.finish()
    part, _ = paths(store, info)
    with open(part, "ab") as f:  # a crash after writing, before persisting the offset
        f.write(b"junk")
    assert store.get("cap", info.id).offset == 4
    writer = store.open_patch("cap", info.id, 4)
    writer.write(b"efghij")
    done = writer.finish()
    assert done.state == "complete" and done.sha256 == hashlib.sha256(b"abcdefghij").hexdigest()
    assert (store.workspace.capture("cap").raw_dir / "a.bin").read_bytes() == b"abcdefghij"


def test_a_complete_upload_killed_before_its_rename_is_published_on_next_look(store: UploadStore) -> None:
    info = store.create("cap", "a.bin", 3)
    part, meta = paths(store, info)
    part.write_bytes(b"xyz")
    meta.write_text(json.dumps(dataclasses.replace(info, offset=3).to_json()))  # offset persisted, no rename
    assert not (store.workspace.capture("cap").raw_dir / "a.bin").exists()
    got = store.get("cap", info.id)
    assert got.state == "complete" and got.sha256 == hashlib.sha256(b"xyz").hexdigest()
    assert (store.workspace.capture("cap").raw_dir / "a.bin").read_bytes() == b"xyz"
    assert not part.exists()


def test_killed_after_the_rename_before_marking_complete(store: UploadStore) -> None:
    info = store.create("cap", "a.bin", 3)
    part, meta = paths(store, info)
    meta.write_text(json.dumps(dataclasses.replace(info, offset=3).to_json()))
    os.replace(part, store.workspace.capture("cap").raw_dir / "a.bin")
    (store.workspace.capture("cap").raw_dir / "a.bin").write_bytes(b"xyz")
    got = store.get("cap", info.id)
    assert got.state == "complete" and got.sha256 == hashlib.sha256(b"xyz").hexdigest()


def test_a_lost_partial_file_makes_the_upload_gone(store: UploadStore) -> None:
    info = store.create("cap", "a.bin", 3)
    part, meta = paths(store, info)
    part.unlink()
    with pytest.raises(UploadGone):
        store.get("cap", info.id)
    assert not meta.exists()


def test_checksum_mismatch_and_overrun_keep_nothing(store: UploadStore) -> None:
    info = store.create("cap", "a.bin", 6)
    writer = store.open_patch("cap", info.id, 0, sha1(b"abc"))
    writer.write(b"abX")
    with pytest.raises(ChecksumMismatch):
        writer.finish()
    assert store.get("cap", info.id).offset == 0
    writer = store.open_patch("cap", info.id, 0)
    with pytest.raises(TooLarge):
        writer.write(b"abcdefg")
    assert store.get("cap", info.id).offset == 0
    writer = store.open_patch("cap", info.id, 0, sha1(b"abc"))
    writer.write(b"abc")
    assert writer.finish().offset == 3
    # the running SHA-256 is right after a rejected request too
    writer = store.open_patch("cap", info.id, 3)
    writer.write(b"def")
    assert writer.finish().sha256 == hashlib.sha256(b"abcdef").hexdigest()


def test_a_dropped_connection_keeps_unchecked_bytes_but_not_checksummed_ones(store: UploadStore) -> None:
    info = store.create("cap", "a.bin", 10)
    writer = store.open_patch("cap", info.id, 0)
    writer.write(b"abc")
    assert writer.abort().offset == 3
    writer = store.open_patch("cap", info.id, 3, sha1(b"defg"))
    writer.write(b"de")
    assert writer.abort().offset == 3


def test_creation_rules(store: UploadStore) -> None:
    with pytest.raises(TooLarge):
        store.create("cap", "big.bin", (1 << 20) + 1)
    with pytest.raises(RequestError):
        store.create("cap", "../x.bin", 1)
    store.create("cap", "x.bin", 1)
    with pytest.raises(Conflict):
        store.create("cap", "x.bin", 1)
    empty = store.create("cap", "empty.txt", 0)
    assert empty.state == "complete"
    assert (store.workspace.capture("cap").raw_dir / "empty.txt").read_bytes() == b""
    with pytest.raises(Conflict):
        store.open_patch("cap", empty.id, 0)
