"""Depth, confidence and mask maps next to photos are never taken as photos; HEIC photos are read
with their EXIF focal length (an Object Capture folder: HEIC + *_depth.TIF + *_gravity.TXT)."""

import shutil

import cv2
import numpy as np
import pytest
from PIL import Image
from test_ingest_support import SHARED, Recorder, pattern, write_jpeg

from core.errors import IngestError
from core.workspace import Workspace
from recon.ingest import detect_source, ingest

EXIF_IFD, FOCAL_35MM, ORIENTATION = 0x8769, 0xA405, 0x0112


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def test_depth_confidence_and_mask_files_beside_photos_are_not_photos(tmp_path, ws):
    src = tmp_path / "shoot"
    for i in range(3):
        write_jpeg(src / f"IMG_{i:04d}.jpg", seed=i)
    depth = np.full((24, 32), 800, np.uint16)
    _png(src / "depth" / "IMG_0000.png", depth)  # a map folder
    _png(src / "confidence" / "IMG_0000.png", np.full((24, 32), 2, np.uint8))
    _png(src / "IMG_0001_conf.png", np.full((24, 32), 2, np.uint8))  # a word in the name
    _png(src / "IMG_0002_mask.png", np.full((24, 32), 255, np.uint8))
    _png(src / "IMG_0001_depth.tif", np.full((24, 32), 0.8, np.float32))  # Object Capture's depth
    _png(src / "0005.png", depth)  # no hint in the name: 16-bit single channel is depth, not a photo
    rec = Recorder()
    m = ingest(src, ws, progress=rec.progress()).load()
    assert [f.source_name for f in m.frames] == ["IMG_0000.jpg", "IMG_0001.jpg", "IMG_0002.jpg"]
    assert any("left out 6 depth, confidence or mask map(s)" in e.message for e in rec.events)


def test_a_folder_of_maps_only_is_not_a_photo_folder(tmp_path):
    src = tmp_path / "maps"
    _png(src / "depth" / "0.png", np.full((24, 32), 800, np.uint16))
    _png(src / "confidence" / "0.png", np.full((24, 32), 2, np.uint8))
    with pytest.raises(IngestError) as e:
        detect_source(src)
    assert "no images" in str(e.value)


def test_arkit_frame_with_its_depth_png_is_one_photo(tmp_path, ws):
    src = tmp_path / "promptda"
    shutil.copytree(SHARED / "promptda-arkit-frame", src)
    m = ingest(src, ws).load()
    assert [f.source_name for f in m.frames] == ["image.jpg"]


def _heic(path, width, height, focal_35mm, seed=0, orientation=1):
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif.get_ifd(EXIF_IFD)[FOCAL_35MM] = focal_35mm
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pattern(width, height, seed)).save(path, format="HEIF", quality=90, exif=exif.tobytes())
    return path


def test_object_capture_folder_heic_with_exif_focal_and_depth_tif_beside(tmp_path, ws):
    src = tmp_path / "ObjectCapture"
    for i in range(2):
        _heic(src / f"IMG_{i:04d}.HEIC", 80, 60, focal_35mm=26, seed=i)
        _png(src / f"IMG_{i:04d}_depth.TIF", np.full((15, 20), 0.4, np.float32))
        (src / f"IMG_{i:04d}_gravity.TXT").write_text("0.01,-0.99,0.02\n")
    _heic(src / "IMG_0002.HEIC", 80, 60, focal_35mm=26, orientation=6)  # held upright: portrait
    cap = ingest(src, ws)
    m = cap.load()
    assert [f.source_name for f in m.frames] == ["IMG_0000.HEIC", "IMG_0001.HEIC", "IMG_0002.HEIC"]
    for f, size in zip(m.frames, [(80, 60), (80, 60), (60, 80)], strict=True):
        # 26 mm-equivalent on a 36 mm-wide frame, across the long side of 80 px.
        assert f.camera.fx == pytest.approx(26 / 36 * 80) and (f.camera.width, f.camera.height) == size
        with Image.open(cap.root / f.image) as img:
            assert img.format == "JPEG" and img.size == size
    with Image.open(cap.root / m.frames[2].image) as img:
        # pattern()'s top-left 4x4 cell ends up top-right once the portrait photo is upright.
        upright = np.asarray(img.convert("RGB")).astype(int)
    np.testing.assert_allclose(upright[1, -2], pattern(80, 60, 0)[1, 1], atol=40)
