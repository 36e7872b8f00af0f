"""Issue 8, server side: what a client sends is bounded and checked before it is used; one bad
capture on disk never breaks the list; a phone never learns paths it did not send."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import httpx
import pytest
from server_test_kit import LiveServer, new_capture, raw_socket

from capture_server.bounded import MAX_JSON_BODY, parse_count, parse_json
from capture_server.errors import RequestError

TUS = {"Tus-Resumable": "1.0.0"}
DEEP = b"[" * 3000 + b"]" * 3000
HUGE_INT = b'{"mode": "free", "code": ' + b"9" * 5000 + b', "hours": ' + b"9" * 5000 + b"}"


def post_raw(c: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return c.post(path, content=body, headers={"Content-Type": "application/json"})


def test_parse_json_refuses_what_json_loads_lets_through() -> None:
    for raw in (b'{"a": NaN}', b"[Infinity]", b"-Infinity", b"[1e400]", DEEP, HUGE_INT, b"\xff{}",
                b'{"a": ' + b"1" * 20 + b"}"):
        with pytest.raises(RequestError):
            parse_json(raw)
    nested_in_strings = json.dumps({"s": "[" * 500, "t": "{\\\"" * 100})
    assert parse_json(nested_in_strings)["s"] == "[" * 500  # brackets inside strings are text
    assert parse_json(b'{"a": [1, -2.5e-3, 9223372036854775807]}') == {"a": [1, -0.0025, 2**63 - 1]}


def test_parse_count_takes_ascii_digits_that_fit_64_bits() -> None:
    assert parse_count("0", "x") == 0 and parse_count("9223372036854775807", "x") == 2**63 - 1
    for bad in ("²", "٣", "9" * 5000, "9223372036854775808", "-1", "+1", " 1", ""):
        with pytest.raises(RequestError) as refused:
            parse_count(bad, "Upload-Length")
        assert refused.value.where == "Upload-Length"


def test_nan_is_refused_before_anything_is_written(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        r = post_raw(c, "/v1/captures", b'{"mode": "free", "device": {"model": NaN}}')
        assert r.status_code == 400 and r.json()["where"] == "body", r.text
        assert live_server.workspace.captures() == []
        assert c.get("/v1/captures").status_code == 200


def test_one_bad_capture_on_disk_does_not_break_the_list(live_server: LiveServer,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with live_server.client(live_server.token()) as c:
        nan_id, broken_id, good_id = new_capture(c), new_capture(c), new_capture(c)
        # An older version wrote NaN into a manifest; another manifest is damaged by hand.
        nan_capture = live_server.workspace.capture(nan_id)
        manifest = nan_capture.load()
        nan_capture.save(dataclasses.replace(manifest, source={**manifest.source,
                                                               "device": {"model": float("nan")}}))
        broken = live_server.workspace.capture(broken_id).manifest_path
        broken.write_text(broken.read_text().replace('"mode": "free"', '"mode": 12'))
        with caplog.at_level("WARNING"):
            r = c.get("/v1/captures")
        assert r.status_code == 200, r.text
        listed = {entry["id"] for entry in r.json()["captures"]}
        assert good_id in listed and broken_id not in listed
        assert broken_id in caplog.text
        status = c.get(f"/v1/captures/{nan_id}")
        assert status.status_code == 200 and status.json()["source"]["device"] == {"model": None}


@pytest.mark.parametrize("path", ["/v1/pair", "/v1/captures", "/v1/captures/{cid}/share"])
@pytest.mark.parametrize("body", [DEEP, HUGE_INT, b'{"hours": 1e400}', b'{"hours": NaN}'], ids=[
    "nested-3000", "int-5000-digits", "float-overflow", "nan"])
def test_hostile_json_bodies_are_a_clear_400(live_server: LiveServer, path: str, body: bytes) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        r = post_raw(c, path.format(cid=cid), body)
    assert r.status_code == 400, r.text
    assert r.json()["where"] == "body"


@pytest.mark.parametrize("value", [b"\xb2", b"9" * 5000, b"9223372036854775808"])
def test_upload_length_and_offset_that_are_not_counts_are_a_400(live_server: LiveServer,
                                                                value: bytes) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        meta = f"capture_id {_b64(cid)},filename {_b64('a.jpg')}"
        r = c.post("/v1/uploads", headers={**TUS, "Upload-Length": value, "Upload-Metadata": meta})
        assert r.status_code == 400 and r.json()["where"] == "Upload-Length", r.text
        created = c.post("/v1/uploads", headers={**TUS, "Upload-Length": "4", "Upload-Metadata": meta})
        assert created.status_code == 201
        r = c.patch(created.headers["Location"], content=b"abcd", headers={
            **TUS, "Upload-Offset": value, "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 400 and r.json()["where"] == "Upload-Offset", r.text


@pytest.mark.parametrize("after", ["%C2%B2", str(2**63), "9" * 5000, "-1"])
def test_events_after_that_is_not_a_count_is_a_400(live_server: LiveServer, after: str) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        r = c.get(f"/v1/captures/{cid}/events?after={after}")
    assert r.status_code == 400 and r.json()["where"] == "after", r.text


def test_a_huge_declared_pair_body_is_refused_before_it_is_read(live_server: LiveServer) -> None:
    with raw_socket(live_server) as sock:
        sock.sendall(b"POST /v1/pair HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 268435456\r\n\r\n{\"code\": ")
        answer = sock.recv(65536)  # the server answers without waiting for 256 MiB
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_an_undeclared_chunked_body_is_cut_at_the_limit(live_server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"code": "'
        for _ in range(64):
            yield b"1" * 16384

    with live_server.client() as c:
        r = c.post("/v1/pair", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["where"] == "body", r.text
    assert MAX_JSON_BODY < 64 * 16384


def test_the_capture_status_never_lists_paths_the_phone_did_not_send(live_server: LiveServer) -> None:
    with live_server.client(live_server.token()) as c:
        cid = new_capture(c)
        capture = live_server.workspace.capture(cid)
        manifest = capture.load()
        # What the nerfstudio reader records after an ingest that named files outside the upload.
        capture.save(dataclasses.replace(manifest, source={
            **manifest.source, "kind": "transforms", "app": "nerfstudio", "listed_frames": 3,
            "missing_frames": ["/abs/victim/depth16.png", "../../etc/passwd"], "path": "/home/user/x"}))
        for r in (c.get(f"/v1/captures/{cid}"), c.get("/v1/captures")):
            assert r.status_code == 200
            assert "/abs/victim" not in r.text and "passwd" not in r.text and "/home/user" not in r.text
        source = c.get(f"/v1/captures/{cid}").json()["source"]
    assert source["missing_frames"] == 2 and source["listed_frames"] == 3
    assert source["device"] == {"model": "pytest"}


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()
