"""The same hostile sources as test_fuzz_readers.py, as a phone would leave them in a capture's raw/
and read by the in-place ingest stage (a seeded quarter of them, to stay fast).

The stage must end in frames or one ScanBridgeError whose ``where`` names the uploaded file as
``raw/NAME`` (``raw/ARCHIVE: MEMBER`` inside a zip) and which holds no path of this machine but
those the upload itself wrote; raw/,
the victim folder and capture.json stay byte for byte as they were when it fails.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import traceback
from pathlib import Path

import pytest
from test_fuzz_readers import CASES, SEED
from test_ingest_support import make_victim, tree_digest

from core.capture import CaptureFolder, Manifest, utc_now
from core.errors import ScanBridgeError
from core.stages import execute_stage
from core.workspace import Workspace

SAMPLE = random.Random(SEED).sample(CASES, len(CASES) // 4)


def _copy_upload(src: Path, dst: Path) -> None:
    """Copy a source into raw/ keeping links and FIFOs as they are (never reading through them)."""
    mode = os.lstat(src).st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst)
    elif stat.S_ISDIR(mode):
        dst.mkdir()
        for child in sorted(src.iterdir()):
            _copy_upload(child, dst / child.name)
    else:
        shutil.copyfile(src, dst)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", SAMPLE, ids=[c.name for c in SAMPLE])
def test_hostile_upload_read_by_the_ingest_stage(tmp_path, case):
    victim = make_victim(tmp_path / "victim")
    src = tmp_path / "src"
    src.mkdir()
    source, expected = case.build(src, victim, random.Random(f"{SEED}:{case.name}"))
    ws = Workspace(tmp_path / "ws")
    capture = CaptureFolder(ws.captures_dir / "phone-1")
    capture.raw_dir.mkdir(parents=True)
    # A phone uploads a folder's files, or one file; a transforms.json comes with its folder.
    if source.is_dir() or source.name == "transforms.json":
        folder = source if source.is_dir() else source.parent
        for child in sorted(folder.iterdir()):
            _copy_upload(child, capture.raw_dir / child.name)
    else:
        folder = source.parent
        _copy_upload(source, capture.raw_dir / source.name)
    shown = tuple(w.replace(str(folder), "raw", 1) for w in expected if w.startswith(str(folder)))
    capture.save(Manifest(id="phone-1", name="phone", created=utc_now(), mode="free", status="processing"))
    before = {"victim": tree_digest(victim), "raw": tree_digest(capture.raw_dir)}
    manifest = capture.manifest_path.read_bytes()
    try:
        outcome = execute_stage(capture, "ingest", {"target_frames": 8})
    except ScanBridgeError as e:
        # No path of this machine, unless the upload itself wrote it (a hostile name is quoted as sent).
        assert str(ws.root) not in str(e) and str(src) not in str(e), str(e)
        assert e.where is not None and e.where.startswith(shown or ("raw",)), (e.where, shown)
        assert capture.manifest_path.read_bytes() == manifest
        assert not capture.images_dir.exists() and not capture.depth_dir.exists()
    except Exception:  # noqa: BLE001 - the point of the suite: nothing else may escape
        pytest.fail(f"{case.name}: a traceback instead of a ScanBridgeError:\n{traceback.format_exc()}")
    else:
        assert outcome.result["frames"] == len(capture.load().frames) > 0
        for p in capture.root.rglob("*"):
            if p.is_file() and not p.is_relative_to(capture.raw_dir):
                assert not p.is_symlink() and p.stat().st_nlink == 1, p
    assert {"victim": tree_digest(victim), "raw": tree_digest(capture.raw_dir)} == before
