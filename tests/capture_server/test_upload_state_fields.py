"""An upload's saved state is read back field by field: each field written wrong (by a crash, a
disk error or a hand) is refused naming that field, and a damaged upload is set aside whole."""

from __future__ import annotations

import logging
import math

import pytest

from capture_server.upload_state import QUARANTINE_DIR, UploadInfo, quarantine
from core.errors import ManifestError

UPLOAD_ID = "0123456789abcdef0123456789abcdef"
SHA = "ab" * 32


def saved(**changes: object) -> dict:
    """A state as the server writes it (every field), with ``changes``; None removes a field."""
    state = {"id": UPLOAD_ID, "capture_id": "20261202-mug", "filename": "images/0001.jpg",
             "kind": "image", "length": 10, "offset": 4, "metadata": {"filename": "0001.jpg"},
             "created": 1764680000.0, "expires": 1764690000.5, "state": "receiving", "sha256": None}
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None or k == "sha256"}


def test_a_state_as_written_reads_back_unchanged():
    info = UploadInfo.from_json(saved(state="complete", offset=10, sha256=SHA))
    assert (info.id, info.capture_id, info.kind) == (UPLOAD_ID, "20261202-mug", "image")
    assert info.filename == "images/0001.jpg"
    assert (info.length, info.offset, info.state, info.sha256) == (10, 10, "complete", SHA)
    assert info.metadata == {"filename": "0001.jpg"} and info.expires == 1764690000.5
    assert UploadInfo.from_json(info.to_json()) == info


def test_fields_a_first_version_did_not_write_take_their_defaults():
    state = saved()
    for key in ("offset", "metadata", "created", "expires", "state", "sha256"):
        del state[key]
    info = UploadInfo.from_json(state)
    assert (info.offset, info.metadata, info.created, info.expires, info.state, info.sha256) == (
        0, {}, 0.0, 0.0, "receiving", None)


def test_edges_that_are_still_valid():
    assert UploadInfo.from_json(saved(length=0, offset=0)).length == 0
    empty = saved(length=0)
    del empty["offset"]
    assert UploadInfo.from_json(empty).offset == 0  # an empty file with no offset written yet
    assert UploadInfo.from_json(saved(length=2**63 - 1, offset=2**63 - 1)).offset == 2**63 - 1
    assert UploadInfo.from_json(saved(created=0, expires=7)).expires == 7  # ints are times too
    assert UploadInfo.from_json(saved(metadata={})).metadata == {}


@pytest.mark.parametrize(("field", "value"), [
    ("id", "0123456789ABCDEF0123456789ABCDEF"), ("id", UPLOAD_ID[:-1]), ("id", UPLOAD_ID + "0"),
    ("id", 12345), ("id", "../../etc/passwd"),
    ("capture_id", 7), ("capture_id", ["x"]),
    ("filename", "../escape.jpg"), ("filename", "/etc/passwd"), ("filename", ".hidden/a.jpg"),
    ("filename", 3),
    ("kind", None), ("kind", 1),
    ("length", -1), ("length", 2**63), ("length", True), ("length", 10.0), ("length", "10"),
    ("offset", 11), ("offset", -1), ("offset", True), ("offset", 4.0),
    ("metadata", ["a"]), ("metadata", {"a": 1}), ("metadata", {1: "a"}),
    ("created", math.nan), ("created", math.inf), ("created", True), ("created", "2026"),
    ("expires", -math.inf), ("expires", False), ("expires", None),
    ("state", "done"), ("state", None),
    ("sha256", SHA.upper()), ("sha256", SHA[:-1]), ("sha256", 5),
])  # fmt: skip
def test_each_field_written_wrong_is_refused_naming_the_field(field, value):
    state = saved()
    state[field] = value
    with pytest.raises(ManifestError) as e:
        UploadInfo.from_json(state)
    assert e.value.where == field
    assert e.value.reason == f"bad value {str(value)[:60]!r}"


def test_a_missing_required_field_is_refused_naming_it():
    for field in ("id", "capture_id", "filename", "kind", "length"):
        state = saved()
        del state[field]
        with pytest.raises(ManifestError) as e:
            UploadInfo.from_json(state)
        assert e.value.where == field


def test_a_long_bad_value_is_cut_in_the_message():
    with pytest.raises(ManifestError) as e:
        UploadInfo.from_json(saved(kind=None, capture_id="c" * 500, filename="x/" * 300))
    assert e.value.where == "filename" and e.value.reason == f"bad value {('x/' * 30)!r}"


@pytest.mark.parametrize("state", [[], "x", None, 3])
def test_a_state_that_is_not_an_object_is_refused(state):
    with pytest.raises(ManifestError) as e:
        UploadInfo.from_json(state)
    assert e.value.where == "upload state" and e.value.reason == "expected a JSON object"


def test_quarantine_moves_the_state_and_the_partial_file_aside(tmp_path, caplog):
    uploads = tmp_path / "20261202-mug" / ".uploads"
    uploads.mkdir(parents=True)
    (uploads / f"{UPLOAD_ID}.json").write_text("{not json")
    (uploads / f"{UPLOAD_ID}.part").write_bytes(b"1234")
    other = "f" * 32
    (uploads / f"{other}.json").write_text("{}")
    (uploads / f"{other}.part").symlink_to(tmp_path / "gone")  # a dangling link moves too
    with caplog.at_level(logging.WARNING, logger="capture_server.upload_state"):
        target = quarantine(uploads, UPLOAD_ID, "state is not JSON")
        assert quarantine(uploads, other, "link") == target  # the folder exists already
    assert target == uploads / QUARANTINE_DIR
    assert (target / f"{UPLOAD_ID}.json").read_text() == "{not json"
    assert (target / f"{UPLOAD_ID}.part").read_bytes() == b"1234"
    assert (target / f"{other}.part").is_symlink()
    assert sorted(p.name for p in uploads.iterdir()) == [QUARANTINE_DIR]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages == [f"upload {UPLOAD_ID} in 20261202-mug was set aside in {target}: state is not JSON",
                        f"upload {other} in 20261202-mug was set aside in {target}: link"]


def test_quarantine_of_an_upload_with_no_partial_file_yet(tmp_path):
    uploads = tmp_path / ".uploads"
    uploads.mkdir()
    (uploads / f"{UPLOAD_ID}.json").write_text("{}")
    target = quarantine(uploads, UPLOAD_ID, "bad length")
    assert sorted(p.name for p in target.iterdir()) == [f"{UPLOAD_ID}.json"]
