"""Issue 8 point 3: upload names that would be a file and a folder at once are refused when the
upload is made; a broken upload state left by an older version is set aside with a warning, so
the server starts and no request on its capture answers 500."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest
from server_test_kit import LiveServer, new_capture

from capture_server.names import encode_tus_metadata
from capture_server.uploads import UploadStore
from core.settings import Settings

TUS = {"Tus-Resumable": "1.0.0"}


def create_upload(c: httpx.Client, capture_id: str, filename: str, length: int) -> httpx.Response:
    metadata = encode_tus_metadata({"capture_id": capture_id, "filename": filename})
    return c.post("/v1/uploads", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata})


def send(c: httpx.Client, capture_id: str, filename: str, data: bytes) -> httpx.Response:
    r = create_upload(c, capture_id, filename, len(data))
    if r.status_code != 201:
        return r
    return c.patch(r.headers["Location"], content=data, headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})


@pytest.mark.parametrize("first, second", [("clash", "clash/inner.bin"), ("clash/inner.bin", "clash"),
                                           ("a/b/c.jpg", "a/b"), ("a/b/c.jpg", "a"),
                                           ("Photo.JPG", "photo.jpg")])
def test_a_name_that_clashes_with_an_earlier_one_is_a_409(live_server: LiveServer, first: str,
                                                          second: str) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        assert send(c, cid, first, b"abcd").status_code == 204
        r = create_upload(c, cid, second, 4)
        assert r.status_code == 409 and r.json()["where"] == second, r.text
        status = c.get(f"/v1/captures/{cid}")
        assert status.status_code == 200 and [f["name"] for f in status.json()["files"]] == [first]
        # Clashing with an upload still in progress is refused the same way.
        pending = new_capture(c)
        assert create_upload(c, pending, first, 4).status_code == 201
        assert create_upload(c, pending, second, 4).status_code == 409


def test_an_unpublishable_upload_is_set_aside_and_the_capture_keeps_working(
        live_server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        r = create_upload(c, cid, "clash/inner.bin", 4)
        assert r.status_code == 201
        capture = live_server.workspace.capture(cid)
        (capture.raw_dir / "clash").write_bytes(b"made by an older version")  # its earlier 'clash'
        with caplog.at_level("WARNING"):
            done = c.patch(r.headers["Location"], content=b"abcd", headers={
                **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert done.status_code == 410, done.text
        assert "set aside" in caplog.text
        assert c.get(f"/v1/captures/{cid}").status_code == 200
        assert c.head(r.headers["Location"], headers=TUS).status_code in (404, 410)
        assert send(c, cid, "other.jpg", b"xyz").status_code == 204
        assert c.post(f"/v1/captures/{cid}/finish").status_code in (200, 202)
    assert list((capture.root / ".uploads" / "quarantine").iterdir())


def test_the_server_starts_over_broken_upload_states(workspace, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(max_upload_bytes=1 << 20)
    first = LiveServer(workspace, settings)
    with first.client(first.token()) as c:
        cid = new_capture(c)
    first.stop()
    # What older versions left behind: 'clash' published, 'clash/inner.bin' complete but not
    # renamed into raw/ (every look at it tried the rename again), and a state that is not JSON.
    store = UploadStore(workspace, 1 << 20)
    store.create(cid, "clash", 0)
    inner = store.create(cid, "other/inner.bin", 2)
    uploads = workspace.capture(cid).root / ".uploads"
    (uploads / f"{inner.id}.part").write_bytes(b"ab")
    (uploads / f"{inner.id}.json").write_text(json.dumps(
        dataclasses.replace(inner, filename="clash/inner.bin", offset=2).to_json()))
    (uploads / ("f" * 32 + ".json")).write_text("{not json")
    with caplog.at_level("WARNING"):
        server = LiveServer(workspace, settings)
    try:
        assert "set aside" in caplog.text
        with server.client(server.token()) as c:
            r = c.get(f"/v1/captures/{cid}")
            assert r.status_code == 200, r.text
            assert [f["name"] for f in r.json()["files"]] == ["clash"]
            assert c.get("/v1/captures").status_code == 200
    finally:
        server.stop()
