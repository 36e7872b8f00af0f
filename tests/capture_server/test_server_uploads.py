"""tus uploads through the real server on loopback: tuspy, checksums, offsets, limits, names."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import httpx
import pytest
from server_test_kit import LiveServer, files_under, new_capture
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from capture_server.names import encode_tus_metadata

TUS = {"Tus-Resumable": "1.0.0"}
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def create_upload(c: httpx.Client, capture_id: str, filename: str, length: int,
                  kind: str | None = None) -> httpx.Response:
    meta = {"capture_id": capture_id, "filename": filename, **({"kind": kind} if kind else {})}
    return c.post("/v1/uploads", headers={**TUS, "Upload-Length": str(length),
                                          "Upload-Metadata": encode_tus_metadata(meta)})


def patch(c: httpx.Client, url: str, offset: int, body: bytes, checksum: str | None = None) -> httpx.Response:
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
    if checksum:
        headers["Upload-Checksum"] = checksum
    return c.patch(url, content=body, headers=headers)


def sha1_b64(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


def test_tuspy_uploads_a_file_byte_identical(live_server: LiveServer, tmp_path: Path) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "clip.mp4"
    src.write_bytes(data)
    tus = tus_client.TusClient(live_server.url + "/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(str(src), chunk_size=1024 * 1024, verify_tls_cert=False, upload_checksum=True,
                            metadata={"capture_id": cid, "filename": "clip.mp4", "kind": "video"})
    uploader.upload()
    raw = live_server.workspace.capture(cid).raw_dir / "clip.mp4"
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    with live_server.client(token) as c:
        status = c.get(f"/v1/captures/{cid}").json()
    assert status["status"] == "receiving"
    assert status["files"] == [{"name": "clip.mp4", "size": len(data), "kind": "video",
                                "sha256": hashlib.sha256(data).hexdigest()}]
    assert status["uploads"] == []


def test_options_advertises_extensions_without_a_token(live_server: LiveServer) -> None:
    with live_server.client() as c:
        r = c.options("/v1/uploads")
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert set(r.headers["Tus-Extension"].split(",")) == {"creation", "checksum", "termination", "expiration"}
    assert "sha1" in r.headers["Tus-Checksum-Algorithm"].split(",")
    assert int(r.headers["Tus-Max-Size"]) == 10 * 1024 * 1024


def test_bad_checksum_gets_460_and_keeps_nothing(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        url = create_upload(c, cid, "a.jpg", 10).headers["Location"]
        r = patch(c, url, 0, b"hello", sha1_b64(b"HELLO"))
        assert r.status_code == 460 and r.json()["where"] == "Upload-Checksum"
        assert c.head(url, headers=TUS).headers["Upload-Offset"] == "0"
        r = patch(c, url, 0, b"hello", "crc99 AAAA")
        assert r.status_code == 400
        assert patch(c, url, 0, b"hello", sha1_b64(b"hello")).headers["Upload-Offset"] == "5"
        assert patch(c, url, 5, b"world", sha1_b64(b"world")).status_code == 204
    raw = live_server.workspace.capture(cid).raw_dir
    assert (raw / "a.jpg").read_bytes() == b"helloworld"


def test_wrong_offset_gets_409(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        url = create_upload(c, cid, "a.jpg", 10).headers["Location"]
        assert patch(c, url, 0, b"abc").status_code == 204
        for offset in (0, 2, 4):
            r = patch(c, url, offset, b"xyz")
            assert r.status_code == 409 and r.json()["where"] == "Upload-Offset"
        assert c.head(url, headers=TUS).headers["Upload-Offset"] == "3"
        part = live_server.workspace.capture(cid).root / ".uploads" / (url.rsplit("/", 1)[1] + ".part")
        assert part.read_bytes() == b"abc"


def test_over_the_size_limit_gets_413(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        r = create_upload(c, cid, "big.mp4", 10 * 1024 * 1024 + 1)
        assert r.status_code == 413 and r.json()["where"] == "Upload-Length"
        url = create_upload(c, cid, "small.jpg", 4).headers["Location"]
        r = patch(c, url, 0, b"too long")  # body longer than Upload-Length
        assert r.status_code == 413
        assert c.head(url, headers=TUS).headers["Upload-Offset"] == "0"
    assert list(live_server.workspace.capture(cid).raw_dir.iterdir()) == []


@pytest.mark.parametrize("name", [
    "../evil.jpg", "../../settings.json", "/etc/passwd", "a/../../b.jpg", "..", ".", "a//b.jpg",
    ".uploads/x.part", "a\\..\\b.jpg", "ok/.hidden", "bad\x00name.jpg", "line\nbreak.jpg",
])
def test_path_traversal_in_file_names_is_refused(live_server: LiveServer, name: str) -> None:
    before = files_under(live_server.workspace.root)
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        inside = files_under(live_server.workspace.root)
        r = create_upload(c, cid, name, 3)
    assert r.status_code == 400, r.text
    assert r.json()["where"] == "filename"
    assert files_under(live_server.workspace.root) == inside  # nothing written anywhere
    assert set(before) <= set(inside)


def test_sub_folders_in_file_names_stay_inside_raw(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c, "rgbd")
        url = create_upload(c, cid, "depth/000001.png", 3, "depth").headers["Location"]
        assert patch(c, url, 0, b"png").status_code == 204
        assert create_upload(c, cid, "depth/000001.png", 3).status_code == 409  # same name twice
    assert (live_server.workspace.capture(cid).raw_dir / "depth" / "000001.png").read_bytes() == b"png"


def test_malformed_tus_requests_get_clear_4xx(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        meta = encode_tus_metadata({"capture_id": cid, "filename": "a.jpg"})
        r = c.post("/v1/uploads", headers={"Upload-Length": "3", "Upload-Metadata": meta})
        assert r.status_code == 412  # no Tus-Resumable
        r = c.post("/v1/uploads", headers={**TUS, "Upload-Length": "-3", "Upload-Metadata": meta})
        assert r.status_code == 400 and r.json()["where"] == "Upload-Length"
        r = c.post("/v1/uploads", headers={**TUS, "Upload-Length": "3", "Upload-Metadata": "filename !!!"})
        assert r.status_code == 400 and r.json()["where"] == "Upload-Metadata"
        r = c.post("/v1/uploads", headers={**TUS, "Upload-Length": "3",
                                           "Upload-Metadata": encode_tus_metadata({"filename": "a.jpg"})})
        assert r.status_code == 400 and "capture_id" in r.json()["error"]
        r = create_upload(c, "no-such-capture", "a.jpg", 3)
        assert r.status_code == 404
        r = create_upload(c, cid, "a.jpg", 3, kind="hologram")
        assert r.status_code == 400 and r.json()["where"] == "kind"
        url = create_upload(c, cid, "a.jpg", 3).headers["Location"]
        r = c.patch(url, content=b"abc", headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"})
        assert r.status_code == 415
        assert c.head(url.rsplit("/", 1)[0] + "/" + "0" * 32, headers=TUS).status_code == 404
        assert c.head(url.rsplit("/", 1)[0] + "/..%2F..%2Fx", headers=TUS).status_code == 404


def test_termination_removes_the_partial_upload(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        url = create_upload(c, cid, "a.jpg", 10).headers["Location"]
        assert patch(c, url, 0, b"abc").status_code == 204
        assert c.delete(url, headers=TUS).status_code == 204
        assert c.head(url, headers=TUS).status_code == 404
        assert create_upload(c, cid, "a.jpg", 3).status_code == 201  # the name is free again
    uploads = live_server.workspace.capture(cid).root / ".uploads"
    assert len(list(uploads.glob("*.part"))) == 1  # only the new upload's
    assert url.rsplit("/", 1)[1] + ".part" not in {p.name for p in uploads.iterdir()}


def test_expired_uploads_answer_410_and_are_removed(workspace, tmp_path: Path) -> None:
    from core.settings import Settings

    server = LiveServer(workspace, Settings(), upload_ttl_s=0.5)
    try:
        with server.client(server.token()) as c:
            cid = new_capture(c)
            r = create_upload(c, cid, "a.jpg", 10)
            assert "Upload-Expires" in r.headers
            url = r.headers["Location"]
            import time

            time.sleep(1.0)
            assert c.head(url, headers=TUS).status_code == 410
            assert c.head(url, headers=TUS).status_code == 404
        assert list((workspace.capture(cid).root / ".uploads").iterdir()) == []
    finally:
        server.stop()


def test_finish_validates_then_closes_the_capture(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        r = c.post(f"/v1/captures/{cid}/finish")
        assert r.status_code == 400 and "no files" in r.json()["error"]
        url = create_upload(c, cid, "a.jpg", 6).headers["Location"]
        patch(c, url, 0, b"abc")
        r = c.post(f"/v1/captures/{cid}/finish")
        assert r.status_code == 409 and "a.jpg" in r.json()["error"]
        patch(c, url, 3, b"def")
        r = c.post(f"/v1/captures/{cid}/finish")
        assert r.status_code in (200, 202), r.text
        body = r.json()
        assert body["status"] in ("new", "processing")
        assert body["source"]["files"][0]["sha256"] == hashlib.sha256(b"abcdef").hexdigest()
        assert create_upload(c, cid, "b.jpg", 3).status_code == 409  # no longer receiving
        assert c.post(f"/v1/captures/{cid}/finish").status_code == 409
    manifest = live_server.workspace.capture(cid).load()
    assert manifest.status == body["status"] and manifest.mode == "free"


def test_results_are_listed_and_downloaded(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        exports = live_server.workspace.capture(cid).exports_dir
        exports.mkdir()
        (exports / "model.usdz").write_bytes(b"PK usdz bytes")
        (exports / "poster.png").write_bytes(b"\x89PNG")
        listed = c.get(f"/v1/captures/{cid}/results").json()["results"]
        assert [(r["name"], r["content_type"]) for r in listed] == [
            ("model.usdz", "model/vnd.usdz+zip"), ("poster.png", "image/png")]
        r = c.get(f"/v1/captures/{cid}/results/model.usdz")
        assert r.status_code == 200 and r.content == b"PK usdz bytes"
        assert r.headers["content-type"] == "model/vnd.usdz+zip"
        assert c.get(f"/v1/captures/{cid}/results/..%2Fcapture.json").status_code == 404
        assert c.get(f"/v1/captures/{cid}/results/missing.glb").status_code == 404


def test_create_capture_validates_its_fields(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        assert c.post("/v1/captures", json={"mode": "lidar"}).json()["where"] == "mode"
        assert c.post("/v1/captures", json={"mode": "free", "device": "x"}).json()["where"] == "device"
        assert c.post("/v1/captures", content=b"{not json").status_code == 400
        before = {p.name for p in live_server.workspace.captures_dir.iterdir()}
        assert before == set()
        cid = new_capture(c, "guided")
        assert c.get("/v1/captures").json()["captures"][0]["id"] == cid


def test_tuspy_reports_a_refused_upload(live_server: LiveServer, tmp_path: Path) -> None:
    token = live_server.token()
    src = tmp_path / "x.jpg"
    src.write_bytes(b"abc")
    tus = tus_client.TusClient(live_server.url + "/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(str(src), verify_tls_cert=False,
                            metadata={"capture_id": "nope", "filename": "x.jpg"})
    with pytest.raises(TusCommunicationError):
        uploader.upload()
