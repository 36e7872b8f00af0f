"""core.source_paths: the trust boundary every reader uses for paths a source names."""

import os

import pytest

from core.errors import IngestError, UnsafeSourceError
from core.source_paths import check_regular_or_dir, copy_into, inside_root, read_regular


@pytest.fixture
def root(tmp_path):
    (tmp_path / "outside.txt").write_text("outside")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a")
    return src


def test_files_inside_are_returned_resolved_and_a_missing_one_is_the_callers_business(root, monkeypatch):
    assert inside_root(root, "sub/a.txt", "t.json") == (root / "sub" / "a.txt").resolve()
    assert inside_root(root, "./sub//a.txt", "t.json") == (root / "sub" / "a.txt").resolve()
    assert inside_root(root, "sub\\a.txt", "t.json") == (root / "sub" / "a.txt").resolve()
    os.symlink("sub/a.txt", root / "link.txt")  # a link that stays inside is fine
    assert inside_root(root, "link.txt", "t.json") == (root / "sub" / "a.txt").resolve()
    assert inside_root(root, "sub/nope.txt", "t.json") == (root / "sub" / "nope.txt").resolve()
    monkeypatch.chdir(root.parent)
    relative_root = root.relative_to(root.parent)
    assert inside_root(relative_root, "sub/a.txt", "t.json") == (root / "sub" / "a.txt").resolve()


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../outside.txt", "sub/../../outside.txt", "..\\outside.txt", "C:\\x.txt", "C:x.txt",
     "\\\\server\\share\\x.txt", "sub/a.txt\x00", "", "a" * 5000],
)  # fmt: skip
def test_names_that_leave_the_root_or_are_invalid_are_refused_naming_the_source_file(root, name):
    with pytest.raises(UnsafeSourceError) as e:
        inside_root(root, name, "t.json: frames[3].file_path")
    assert e.value.where == "t.json: frames[3].file_path"
    assert str(root) not in str(e.value)  # the name as written, never a resolved path


def test_links_out_loops_and_special_files_are_refused(root):
    os.symlink(root.parent / "outside.txt", root / "out.txt")
    os.symlink(root.parent, root / "up")
    os.symlink("loop", root / "loop")
    os.symlink("/dev/zero", root / "zero")
    os.mkfifo(root / "pipe")
    for name in ("out.txt", "up/outside.txt", "loop", "zero", "pipe", "sub"):
        with pytest.raises(UnsafeSourceError):
            inside_root(root, name, "t.json")


@pytest.mark.timeout(30)
def test_copy_into_copies_never_overwrites_and_never_reads_a_fifo(root, tmp_path):
    dst = copy_into(root / "sub" / "a.txt", tmp_path / "out" / "a.txt")
    assert dst.read_text() == "a" and dst.stat().st_ino != (root / "sub" / "a.txt").stat().st_ino
    assert (root / "sub" / "a.txt").stat().st_nlink == 1
    with pytest.raises(FileExistsError):
        copy_into(root / "sub" / "a.txt", dst)
    os.mkfifo(root / "pipe")
    with pytest.raises(UnsafeSourceError):
        copy_into(root / "pipe", tmp_path / "out" / "pipe")


@pytest.mark.timeout(30)
def test_read_regular_is_bounded_and_sources_must_be_files_or_folders(root):
    assert read_regular(root / "sub" / "a.txt", 1, "a.txt") == b"a"
    (root / "big.txt").write_bytes(b"x" * 11)
    with pytest.raises(IngestError, match="larger than the 10 bytes"):
        read_regular(root / "big.txt", 10, "big.txt")
    os.mkfifo(root / "pipe")
    with pytest.raises(UnsafeSourceError):
        read_regular(root / "pipe", 10, "pipe")
    with pytest.raises(UnsafeSourceError):
        check_regular_or_dir(root / "pipe", "pipe")
    check_regular_or_dir(root, "src")
    check_regular_or_dir(root / "sub" / "a.txt", "a.txt")
