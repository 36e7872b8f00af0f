import json
import stat
import zipfile

import pytest
from test_ingest_support import captures_listing, pattern, write_jpeg

from core.errors import IngestError, UnsafeArchiveError
from core.workspace import Workspace
from recon.ingest import ArchiveLimits, ingest
from recon.ingest.archive import check_archive


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _zip_of_images(path, tmp_path, names=("shoot/a.jpg", "shoot/b.jpg")):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, name in enumerate(names):
            src = write_jpeg(tmp_path / "src" / f"{i}.jpg", seed=i)
            zf.write(src, name)
    return path


def test_zip_of_images_becomes_a_capture_with_the_archive_in_raw(tmp_path, ws):
    archive = _zip_of_images(
        tmp_path / "photos.zip", tmp_path, ("shoot/b2.jpg", "shoot/b10.jpg", "__MACOSX/._x.jpg")
    )
    cap = ingest(archive, ws)
    m = cap.load()
    assert m.name == "photos" and m.source["kind"] == "zip" and m.source["contents"] == "images"
    assert [f.source_name for f in m.frames] == ["b2.jpg", "b10.jpg"]
    assert all((cap.root / f.image).is_file() for f in m.frames)
    assert sorted(p.name for p in cap.raw_dir.iterdir()) == ["photos.zip"]
    assert not (cap.root / ".unpacked").exists()


def _zip_with(path, info: zipfile.ZipInfo, data: bytes = b"x"):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok/a.jpg", pattern(8, 8).tobytes())
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "entry",
    ["../evil.jpg", "ok/../../evil.jpg", "/etc/evil.jpg", "C:/evil.jpg", "..\\evil.jpg"],
)
def test_zip_with_escaping_paths_is_refused_before_extraction(tmp_path, ws, entry):
    archive = _zip_with(tmp_path / "bad.zip", zipfile.ZipInfo(entry))
    with pytest.raises(UnsafeArchiveError) as e:
        ingest(archive, ws)
    assert str(archive) in e.value.where and entry in e.value.where
    assert captures_listing(ws) == []
    assert not (tmp_path / "evil.jpg").exists() and not (ws.root / "evil.jpg").exists()


def test_zip_with_symlink_is_refused(tmp_path, ws):
    info = zipfile.ZipInfo("ok/link.jpg")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip_with(tmp_path / "link.zip", info, b"/etc/passwd")
    with pytest.raises(UnsafeArchiveError) as e:
        ingest(archive, ws)
    assert e.value.where == f"{archive}: ok/link.jpg"
    assert captures_listing(ws) == []


def test_zip_bomb_by_ratio_is_refused(tmp_path, ws):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.jpg", pattern(8, 8).tobytes())
        zf.writestr("zeros.jpg", b"\0" * (16 << 20))  # 16 MiB of zeros packs to ~16 KiB
    with pytest.raises(UnsafeArchiveError) as e:
        ingest(archive, ws)
    assert e.value.where == f"{archive}: zeros.jpg" and "ratio" in e.value.reason
    assert captures_listing(ws) == []


def test_total_size_limit_is_configurable(tmp_path, ws):
    archive = _zip_of_images(tmp_path / "photos.zip", tmp_path)
    sizes = [i.file_size for i in zipfile.ZipFile(archive).infolist()]
    with pytest.raises(UnsafeArchiveError) as e:
        ingest(archive, ws, archive_limits=ArchiveLimits(max_total_bytes=sizes[0] + 1))
    assert e.value.where == f"{archive}: shoot/b.jpg"
    assert captures_listing(ws) == []
    assert len(check_archive(archive, ArchiveLimits(max_total_bytes=sum(sizes)))) == 2


def test_corrupt_zip_and_zip_without_images(tmp_path, ws):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(IngestError) as e:
        ingest(junk, ws)
    assert e.value.where == str(junk)
    texts = tmp_path / "texts.zip"
    with zipfile.ZipFile(texts, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(IngestError) as e:
        ingest(texts, ws)
    assert e.value.where == str(texts)
    assert captures_listing(ws) == []


def test_corrupt_image_inside_zip_names_it_and_cleans_up(tmp_path, ws):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(write_jpeg(tmp_path / "a.jpg"), "a.jpg")
        zf.writestr("b.jpg", write_jpeg(tmp_path / "b.jpg", 64, 64).read_bytes()[:200])
    with pytest.raises(IngestError) as e:
        ingest(archive, ws)
    assert e.value.where.endswith("b.jpg")
    assert captures_listing(ws) == []


def test_zip_of_a_wrapped_nerfstudio_dataset_is_read_as_one(tmp_path, ws):
    archive = tmp_path / "scan.zip"
    pose = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]]
    tf = {"fl_x": 20.0, "w": 32, "h": 24, "frames": [{"file_path": "images/a.jpg", "transform_matrix": pose}]}
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("scan/transforms.json", json.dumps(tf))
        zf.write(write_jpeg(tmp_path / "a.jpg"), "scan/images/a.jpg")
    m = ingest(archive, ws).load()
    assert m.source["kind"] == "zip" and m.source["contents"] == "transforms"
    assert m.frames[0].pose is not None and m.frames[0].camera.fx == 20.0
