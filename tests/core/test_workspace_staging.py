"""A capture's staging folder after a crash: hidden from the library, cleaned on the next start.

The crash is real: a child process writes a complete-looking capture into its staging folder and
dies inside ``staged_capture`` (os._exit skips every cleanup), the way a killed server would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.capture import Manifest, utc_now
from core.errors import InputError, NotFoundError
from core.workspace import Workspace

_CRASH = textwrap.dedent("""
    import os, sys
    from core.capture import Manifest, utc_now
    from core.workspace import Workspace
    ws = Workspace(sys.argv[1])
    with ws.staged_capture(sys.argv[2]) as cap:
        cap.save(Manifest(id=sys.argv[2], name="half", created=utc_now(), mode="free"))
        (cap.root / "images").mkdir()
        (cap.root / "images" / "0001.jpg").write_bytes(b"not all of it")
        os._exit(3)
""")


def _crash_while_staging(root, capture_id: str) -> None:
    done = subprocess.run([sys.executable, "-c", _CRASH, str(root), capture_id], timeout=120)
    assert done.returncode == 3


def _published(ws: Workspace, capture_id: str) -> None:
    with ws.staged_capture(capture_id) as cap:
        cap.save(Manifest(id=capture_id, name="whole", created=utc_now(), mode="free"))


def test_a_crash_leaves_a_hidden_folder_that_is_not_a_capture(tmp_path):
    root = tmp_path / "ws"
    ws = Workspace(root)
    _published(ws, "kept")
    _crash_while_staging(root, "lost")
    left = [p for p in ws.captures_dir.iterdir() if p.name != "kept"]
    assert len(left) == 1
    staging = left[0]
    # What the child wrote is there, complete-looking, under a name that starts with a dot ...
    assert json.loads((staging / "capture.json").read_text())["id"] == "lost"
    assert staging.name.startswith(".")
    # ... so the library, lookups and id checks do not see it as a capture.
    assert [c.id for c in Workspace(root).captures()] == ["kept"]
    assert not ws.has_capture("lost")
    assert not ws.has_capture(staging.name)


def test_clean_stale_staging_removes_exactly_the_crash_leftovers(tmp_path):
    root = tmp_path / "ws"
    ws = Workspace(root)
    _published(ws, "kept")
    _crash_while_staging(root, "lost")
    _crash_while_staging(root, "lost-too")
    (ws.captures_dir / "notes.txt").write_text("the user's own file")
    leftovers = sorted(p for p in ws.captures_dir.iterdir() if p.name not in ("kept", "notes.txt"))
    assert len(leftovers) == 2

    removed = ws.clean_stale_staging()

    assert sorted(removed) == leftovers
    assert sorted(p.name for p in ws.captures_dir.iterdir()) == ["kept", "notes.txt"]
    assert ws.capture("kept").load().name == "whole"
    assert ws.clean_stale_staging() == []
    # The id the crash never published can be captured again.
    _published(ws, "lost")
    assert [c.id for c in ws.captures()] == ["kept", "lost"]


def test_a_failed_body_removes_its_staging_at_once(tmp_path):
    ws = Workspace(tmp_path / "ws")
    try:
        with ws.staged_capture("broken") as cap:
            cap.save(Manifest(id="broken", name="x", created=utc_now(), mode="free"))
            raise KeyboardInterrupt  # BaseException too, not only Exception
    except KeyboardInterrupt:
        pass
    assert list(ws.captures_dir.iterdir()) == []


def test_a_stale_staging_link_is_removed_without_touching_what_it_points_to(tmp_path):
    ws = Workspace(tmp_path / "ws")
    elsewhere = tmp_path / "users-own-folder"
    elsewhere.mkdir()
    (elsewhere / "keep.jpg").write_bytes(b"precious")
    link = ws.captures_dir / ".staging-planted"
    link.symlink_to(elsewhere, target_is_directory=True)
    (ws.captures_dir / ".staging-file").write_text("a stray file, not a folder")

    removed = ws.clean_stale_staging()

    assert sorted(p.name for p in removed) == [".staging-file", ".staging-planted"]
    assert list(ws.captures_dir.iterdir()) == []
    assert (elsewhere / "keep.jpg").read_bytes() == b"precious"


def test_capture_lookup_names_the_id_and_says_what_is_wrong(tmp_path):
    ws = Workspace(tmp_path / "ws")
    _published(ws, "real")
    (ws.captures_dir / "no-manifest").mkdir()
    for bad in ("../etc", ".staging-real", "", "a/b", "x" * 129):
        with pytest.raises(InputError) as e:
            ws.capture(bad)
        assert (e.value.reason, e.value.where) == ("not a valid capture id", bad)
        assert not ws.has_capture(bad)
    for absent in ("nope", "no-manifest"):
        with pytest.raises(NotFoundError) as e:
            ws.capture(absent)
        assert (e.value.reason, e.value.where) == ("no such capture in the workspace", absent)
        assert not ws.has_capture(absent)
    assert ws.has_capture("real") and ws.capture("real").root == ws.captures_dir / "real"


def test_the_default_workspace_comes_from_the_environment_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANBRIDGE_WORKSPACE", str(tmp_path / "from-env"))
    assert Workspace().root == tmp_path / "from-env"
    assert (tmp_path / "from-env" / "captures").is_dir()
    monkeypatch.delenv("SCANBRIDGE_WORKSPACE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Workspace().root == tmp_path / "home" / "ScanBridge"


def test_capture_ids_are_a_slug_a_utc_stamp_and_random_hex(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # 9 h from UTC, no daylight saving
    time.tzset()
    ws = Workspace(tmp_path / "ws")
    before = datetime.now(UTC).replace(microsecond=0)
    first = ws.new_capture_id("My Fox! (2nd try)")
    stamp = datetime.strptime(first[len("my-fox-2nd-try-"):][:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    assert before - timedelta(minutes=5) <= stamp <= datetime.now(UTC)  # UTC, not the local clock
    monkeypatch.undo()
    time.tzset()
    assert ws.new_capture_id("Xray X").startswith("xray-x-")
    assert re.fullmatch(r"my-fox-2nd-try-\d{8}-\d{6}-[0-9a-f]{6}", first), first
    assert ws.new_capture_id("!!!").startswith("capture-")
    assert re.fullmatch(r"a{40}-\d{8}-\d{6}-[0-9a-f]{6}", ws.new_capture_id("A" * 60))
    assert first != ws.new_capture_id("My Fox! (2nd try)")
