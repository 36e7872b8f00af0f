"""core.source_paths: every refusal says why and names the file of the source that named the path
(the mutants of the trust boundary that tests/core/test_source_paths.py left alive)."""

from __future__ import annotations

import errno
import os

import pytest

from core.errors import IngestError, UnsafeSourceError
from core.source_paths import check_regular_or_dir, copy_into, inside_root, open_regular, read_regular

WHERE = "transforms.json: frames[7].file_path"


@pytest.fixture
def root(tmp_path):
    (tmp_path / "outside.txt").write_text("outside")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a")
    (src / "my photos").mkdir()
    (src / "my photos" / "b c.txt").write_text("b")
    os.symlink(tmp_path / "outside.txt", src / "out.txt")
    os.symlink("loop", src / "loop")
    os.symlink("/dev/zero", src / "zero")
    os.mkfifo(src / "pipe")
    return src


ABSOLUTE = "an absolute path; only files inside the source are read"


@pytest.mark.parametrize(("name", "why"), [
    ("/etc/passwd", ABSOLUTE),
    ("\\etc\\passwd", ABSOLUTE),  # no drive: only the leading backslash tells
    ("C:\\x.txt", ABSOLUTE),
    ("../outside.txt", "which leaves the source's folder"),
    ("sub/../sub/a.txt", "which leaves the source's folder"),  # back inside, still refused as written
    ("out.txt", "which links outside the source's folder"),
    ("loop", "which cannot be resolved"),
    ("images/\ud800.jpg", "which cannot be resolved"),  # a lone surrogate (JSON's "\\ud800") has no bytes
    ("a" * 5000, f"which cannot be read ({os.strerror(errno.ENAMETOOLONG)})"),
    ("zero", "which links outside the source's folder"),  # /dev/zero
    ("pipe", "which is not a regular file"),
    ("sub", "which is not a regular file"),
])  # fmt: skip
def test_each_refusal_says_why_and_names_the_file_that_named_the_path(root, name, why):
    with pytest.raises(UnsafeSourceError) as e:
        inside_root(root, name, WHERE)
    assert e.value.where == WHERE
    if len(name) < 100:
        assert e.value.reason == f"names {name!r}, {why}"  # the name as the source wrote it
    else:
        assert e.value.reason.endswith(why)


@pytest.mark.parametrize("name", ["", None, 7, b"sub/a.txt", "sub/a.txt\x00"])
def test_an_empty_name_or_one_that_is_not_text_is_refused(root, name):
    with pytest.raises(UnsafeSourceError) as e:
        inside_root(root, name, WHERE)
    assert e.value.where == WHERE and e.value.reason == "names an empty or invalid file path"


def test_names_with_spaces_resolve_to_their_own_file(root):
    assert inside_root(root, "my photos/b c.txt", WHERE) == (root / "my photos" / "b c.txt").resolve()
    assert inside_root(root, "./my photos/./b c.txt", WHERE).read_text() == "b"


def test_reading_refusals_name_the_given_file(root):
    missing = os.strerror(errno.ENOENT)
    with pytest.raises(IngestError) as e:
        open_regular(root / "nope.bin", "depth/0001.png")
    assert e.value.where == "depth/0001.png" and e.value.reason == f"cannot read ({missing})"
    with pytest.raises(UnsafeSourceError) as e:
        open_regular(root / "pipe", "depth/0002.png")
    assert e.value.where == "depth/0002.png" and e.value.reason == "is not a regular file"
    with pytest.raises(UnsafeSourceError) as e:
        read_regular(root / "pipe", 10, "meta.json")
    assert e.value.where == "meta.json"
    (root / "big.json").write_bytes(b"x" * 11)
    with pytest.raises(IngestError) as e:
        read_regular(root / "big.json", 10, "big.json")
    assert e.value.where == "big.json"
    assert read_regular(root / "big.json", 11, "big.json") == b"x" * 11  # exactly the limit is fine


def test_source_checks_name_the_source(root):
    with pytest.raises(IngestError) as e:
        check_regular_or_dir(root / "nope", "the dropped folder")
    assert e.value.where == "the dropped folder"
    assert e.value.reason == f"cannot read ({os.strerror(errno.ENOENT)})"
    with pytest.raises(UnsafeSourceError) as e:
        check_regular_or_dir(root / "pipe", "the dropped pipe")
    assert e.value.where == "the dropped pipe"
    assert e.value.reason == "is not a regular file or folder (a device, pipe or socket is never read)"


def test_copy_into_makes_missing_folders_and_names_a_refused_source(root, tmp_path):
    payload = bytes(range(256)) * 9
    (root / "photo.jpg").write_bytes(payload)
    dst = copy_into(root / "photo.jpg", tmp_path / "capture" / "images" / "deep" / "photo.jpg")
    assert dst.read_bytes() == payload
    with pytest.raises(UnsafeSourceError) as e:
        copy_into(root / "pipe", tmp_path / "capture" / "pipe")
    assert e.value.where == str(root / "pipe")


@pytest.mark.parametrize("kernel", ["missing", "refuses"])
def test_copy_into_falls_back_to_a_plain_copy(root, tmp_path, monkeypatch, kernel):
    """Where copy_file_range is missing (other systems) or refused (EXDEV, old kernels), the
    copy still holds every byte, in order, and nothing more."""
    payload = os.urandom(3 * 1024 * 1024 + 17)
    (root / "video.mov").write_bytes(payload)
    if kernel == "missing":
        monkeypatch.delattr(os, "copy_file_range")
    else:
        def refuse(*_args: object) -> int:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        monkeypatch.setattr(os, "copy_file_range", refuse)
    dst = copy_into(root / "video.mov", tmp_path / "out" / "video.mov")
    assert dst.read_bytes() == payload
