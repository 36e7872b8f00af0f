import math

import numpy as np
import pytest
from PIL import Image
from test_ingest_support import (
    SHARED,
    Recorder,
    captures_listing,
    write_jpeg,
    write_png,
)

from core.errors import IngestError, InputError
from core.workspace import Workspace
from recon.ingest import detect_source, ingest


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _exif(orientation: int | None = None, focal_35mm: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if focal_35mm is not None:
        exif.get_ifd(0x8769)[0xA405] = focal_35mm
    return exif


def test_image_folder_keeps_names_order_and_originals(tmp_path, ws):
    src = tmp_path / "photos"
    write_jpeg(src / "img2.jpg", seed=2)
    write_jpeg(src / "img10.jpg", seed=10)
    write_png(src / "sub" / "img3.png", seed=3)
    (src / "notes.txt").write_text("not an image")
    (src / ".hidden.jpg").write_bytes(b"skip me")

    cap = ingest(src, ws, name="My Mug")
    m = cap.load()

    assert m.name == "My Mug" and m.mode == "import" and m.status == "ingested" and m.scale == "unscaled"
    assert m.source["kind"] == "images"
    # Natural order: img2 before img10; sub-folders included.
    assert [f.source_name for f in m.frames] == ["img2.jpg", "img10.jpg", "img3.png"]
    assert [f.image for f in m.frames] == ["images/img2.jpg", "images/img10.jpg", "images/img3.png"]
    assert (cap.raw_dir / "sub" / "img3.png").read_bytes() == (src / "sub" / "img3.png").read_bytes()
    # Upright JPEG/PNG are kept byte for byte.
    assert (cap.images_dir / "img10.jpg").read_bytes() == (src / "img10.jpg").read_bytes()
    assert not any(p.name.startswith(".") for p in ws.captures_dir.iterdir())
    # Default intrinsics: 50 degrees horizontal field of view, centred.
    cam = m.frames[0].camera
    assert (cam.width, cam.height) == (32, 24)
    assert math.degrees(2 * math.atan(cam.width / 2 / cam.fx)) == pytest.approx(50.0)
    assert (cam.cx, cam.cy) == (16.0, 12.0)


def test_exif_orientation_is_applied_and_35mm_focal_used(tmp_path, ws):
    src = tmp_path / "photos"
    # Orientation 6: the stored pixels must be turned 90 degrees clockwise to be upright.
    write_jpeg(src / "portrait.jpg", width=40, height=20, exif=_exif(orientation=6, focal_35mm=26))
    stored = np.asarray(Image.open(src / "portrait.jpg").convert("L"), dtype=float)

    m = ingest(src, ws).load()

    frame = m.frames[0]
    assert frame.image == "images/portrait.jpg" and frame.source_name == "portrait.jpg"
    upright = np.asarray(Image.open(ws.captures_dir / m.id / frame.image).convert("L"), dtype=float)
    assert upright.shape == (40, 20)  # rows, cols: now portrait
    expected = np.rot90(stored, k=-1)  # clockwise
    assert np.abs(upright - expected).mean() < 8  # re-encoded JPEG, same picture
    assert np.abs(upright - np.rot90(stored, k=1)).mean() > 20  # and not the other way round
    cam = frame.camera
    assert (cam.width, cam.height) == (20, 40)
    assert cam.fx == pytest.approx(26 / 36 * 40)
    # The original, still sideways, is kept in raw/.
    assert (ws.captures_dir / m.id / "raw" / "portrait.jpg").read_bytes() == (
        src / "portrait.jpg"
    ).read_bytes()


def test_real_iphone_photos_use_exif_35mm_focal(ws):
    lund = SHARED / "opensfm-iphone4s" / "lund" / "images"
    if not lund.is_dir():
        pytest.skip("shared data not present")
    m = ingest(lund, ws, name="lund").load()
    assert len(m.frames) == 29
    # SOURCE.md: FocalLengthIn35mmFilm 35 on 1024x768 photos.
    assert m.frames[0].camera.fx == pytest.approx(35 / 36 * 1024)
    assert m.frames[0].source_name == "01.jpg"


def test_duplicate_names_in_subfolders_stay_distinct(tmp_path, ws):
    src = tmp_path / "photos"
    write_jpeg(src / "a" / "IMG_1.jpg", seed=1)
    write_jpeg(src / "b" / "IMG_1.jpg", seed=2)
    m = ingest(src, ws).load()
    assert [f.image for f in m.frames] == ["images/IMG_1.jpg", "images/IMG_1_2.jpg"]
    assert [f.source_name for f in m.frames] == ["IMG_1.jpg", "IMG_1.jpg"]


def test_single_image_file(tmp_path, ws):
    m = ingest(write_jpeg(tmp_path / "one.jpg"), ws).load()
    assert m.name == "one" and len(m.frames) == 1


@pytest.mark.parametrize("suffix,written", [(".tif", ".png"), (".webp", ".jpg"), (".avif", ".jpg")])
def test_other_formats_are_converted(tmp_path, ws, suffix, written):
    src = tmp_path / "photos"
    src.mkdir()
    Image.new("RGB", (10, 8), (200, 10, 10)).save(src / f"scan{suffix}", quality=95)
    m = ingest(src, ws).load()
    assert m.frames[0].image == f"images/scan{written}" and m.frames[0].source_name == f"scan{suffix}"
    with Image.open(ws.captures_dir / m.id / "images" / f"scan{written}") as img:
        assert img.size == (10, 8)
        assert np.abs(np.subtract(img.convert("RGB").getpixel((3, 3)), (200, 10, 10))).max() < 12


def test_corrupt_image_fails_naming_it_and_leaves_workspace_unchanged(tmp_path, ws):
    src = tmp_path / "photos"
    write_jpeg(src / "good.jpg")
    bad = write_jpeg(src / "zbad.jpg", width=64, height=64)
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    before = captures_listing(ws)
    with pytest.raises(IngestError) as e:
        ingest(src, ws)
    assert e.value.where == str(bad)
    assert captures_listing(ws) == before


def test_unreadable_heic_is_one_clear_error(tmp_path, ws):
    src = tmp_path / "photos"
    src.mkdir()
    (src / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    with pytest.raises(IngestError) as e:
        ingest(src, ws)
    assert e.value.where == str(src / "IMG_0001.HEIC")
    assert captures_listing(ws) == []


@pytest.mark.parametrize("make", ["empty", "only_text", "missing", "unknown_file"])
def test_unusable_sources_are_one_error_naming_them(tmp_path, ws, make):
    src = tmp_path / "src"
    if make == "empty":
        src.mkdir()
    elif make == "only_text":
        src.mkdir()
        (src / "readme.txt").write_text("hi")
    elif make == "unknown_file":
        src = tmp_path / "model.blend"
        src.write_bytes(b"BLENDER")
    with pytest.raises(IngestError) as e:
        ingest(src, ws)
    assert e.value.where == str(src)
    assert captures_listing(ws) == []


def test_bad_mode_and_frame_count_are_refused_before_anything_is_written(tmp_path, ws):
    src = tmp_path / "photos"
    write_jpeg(src / "a.jpg")
    with pytest.raises(InputError) as e:
        ingest(src, ws, mode="turbo")
    assert e.value.where == "mode"
    with pytest.raises(InputError) as e:
        ingest(src, ws, target_frames=0)
    assert e.value.where == "target_frames"
    assert captures_listing(ws) == []


def test_mode_override_and_progress_reaches_the_end(tmp_path, ws):
    src = tmp_path / "photos"
    write_jpeg(src / "a.jpg")
    rec = Recorder()
    m = ingest(src, ws, mode="free", progress=rec.progress()).load()
    assert m.mode == "free"
    fractions = [e.fraction for e in rec.events if e.kind == "progress"]
    assert fractions and fractions[-1] == 1.0
    assert fractions == sorted(fractions)


def test_detect_source_kinds(tmp_path):
    write_jpeg(tmp_path / "imgs" / "a.jpg")
    assert detect_source(tmp_path / "imgs")[0] == "images"
    # A folder holding a single folder is looked into (images are found in sub-folders anyway).
    (tmp_path / "wrap" / "inner").mkdir(parents=True)
    (tmp_path / "wrap" / "inner" / "clip.mp4").write_bytes(b"")
    assert detect_source(tmp_path / "wrap") == ("video", tmp_path / "wrap" / "inner" / "clip.mp4")
    (tmp_path / "clip.MOV").write_bytes(b"")
    assert detect_source(tmp_path / "clip.MOV")[0] == "video"
    (tmp_path / "a.zip").write_bytes(b"")
    assert detect_source(tmp_path / "a.zip")[0] == "zip"
