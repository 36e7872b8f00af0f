"""core.fsio.atomic_copy: the publish step of exports (a whole copy or the old file, never half)."""

from __future__ import annotations

import os

import pytest

from core.fsio import atomic_copy


def test_a_copy_is_byte_identical_readable_and_leaves_no_temporary(tmp_path):
    src = tmp_path / "run" / "model.usdz"
    src.parent.mkdir()
    data = os.urandom(3 * (1 << 20) + 17)  # more than one copy block
    src.write_bytes(data)
    dst = tmp_path / "exports" / "model.usdz"  # the folder does not exist yet
    assert atomic_copy(src, dst) == dst
    assert dst.read_bytes() == data
    assert dst.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in dst.parent.iterdir()] == ["model.usdz"]


def test_a_failed_copy_keeps_the_published_file(tmp_path):
    dst = tmp_path / "model.usdz"
    dst.write_bytes(b"the published model")
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing.usdz", dst)
    assert dst.read_bytes() == b"the published model"
    with pytest.raises(IsADirectoryError):
        atomic_copy(tmp_path, dst)  # a folder cannot be read as a file
    assert dst.read_bytes() == b"the published model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.usdz"]
