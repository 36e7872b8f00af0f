"""Regression tests for issue 8, reader side: a source (a folder, a zip, a phone's upload) may only
name files inside its own root; an import never writes into the user's dataset; hostile numbers,
paths and files are one typed error naming the user's own file; a killed import leaves nothing."""

import json
import os
import signal
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_ingest_support import (
    captures_listing,
    make_victim,
    tree_digest,
    write_depth16,
    write_jpeg,
    write_png,
)

from core.errors import IngestError, ScanBridgeError, UnsafeSourceError
from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest

REPO = Path(__file__).resolve().parents[2]
POSE = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]]
INTRINSICS = {"fl_x": 20.0, "fl_y": 20.0, "cx": 8.0, "cy": 6.0, "w": 16, "h": 12}


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


@pytest.fixture
def victim(tmp_path):
    return make_victim(tmp_path / "victim")


def _transforms(root: Path, frames: list, **top) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    frames = [{"transform_matrix": POSE, **f} for f in frames]
    (root / "transforms.json").write_text(json.dumps({**INTRINSICS, **top, "frames": frames}))
    return root / "transforms.json"


def _refused(source, ws, error=ScanBridgeError):
    with pytest.raises(error) as e:
        ingest(source, ws)
    assert captures_listing(ws) == []
    return e.value


# --- point 1: paths in a source only reach inside its root; raw/ holds copies ---------------------


def test_issue_repro_depth_outside_the_dataset_is_refused_and_left_unchanged(tmp_path, ws, victim):
    ds = tmp_path / "ds"
    write_jpeg(ds / "images" / "a.jpg", 16, 12, seed=1)
    write_png(ds / "images" / "a.png", 16, 12, seed=2)
    write_depth16(ds / "d2.png", 1234)
    tf = _transforms(ds, [
        {"file_path": "images/a.jpg", "depth_file_path": str(victim / "depth16.png")},
        {"file_path": "images/a.png", "depth_file_path": "d2.png"},
    ])  # fmt: skip
    before = tree_digest(tmp_path)
    err = _refused(tf, ws, UnsafeSourceError)
    assert err.where == f"{tf}: frames[0].depth_file_path"
    assert str(victim) in err.reason  # the path as the file wrote it, nothing resolved
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "nul"])
def test_image_path_leaving_the_dataset_is_refused(tmp_path, ws, victim, how):
    ds = tmp_path / "ds"
    write_png(ds / "images" / "ok.png", 16, 12)
    names = {
        "absolute": str(victim / "secret.png"),
        "dotdot": "../victim/secret.png",
        "symlink": "images/link.png",
        "nul": "images/ok\x00.png",
    }
    if how == "symlink":
        os.symlink(victim / "secret.png", ds / "images" / "link.png")
    tf = _transforms(ds, [{"file_path": names[how]}])
    before = tree_digest(tmp_path)
    err = _refused(tf, ws, UnsafeSourceError)
    assert err.where == f"{tf}: frames[0].file_path"
    assert tree_digest(tmp_path) == before


def test_zip_whose_transforms_points_outside_the_zip_is_refused(tmp_path, ws, victim):
    archive = tmp_path / "cap.zip"
    tf = {**INTRINSICS, "frames": [{"file_path": str(victim / "secret.png"), "transform_matrix": POSE}]}
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("transforms.json", json.dumps(tf))
        zf.write(write_png(tmp_path / "src" / "a.png", 16, 12), "images/a.png")
    before = tree_digest(tmp_path)
    err = _refused(archive, ws, UnsafeSourceError)
    assert err.where == f"{archive}: transforms.json: frames[0].file_path"
    assert ".staging" not in str(err) and ".unpacked" not in str(err)
    assert tree_digest(tmp_path) == before


def test_raw_and_frames_are_copies_never_links_to_the_users_files(tmp_path, ws):
    ds = tmp_path / "ds"
    write_png(ds / "images" / "a.png", 16, 12, seed=1)
    write_depth16(ds / "depth" / "a.png", 1500)
    _transforms(ds, [{"file_path": "images/a.png", "depth_file_path": "depth/a.png"}])
    photos = tmp_path / "photos"
    write_jpeg(photos / "p.jpg", seed=3)
    for source in (ds, photos):
        cap = ingest(source, ws)
        for p in source.rglob("*"):
            if p.is_file():
                assert p.stat().st_nlink == 1, p  # nothing in the capture shares its inode
        inodes = {p.stat().st_ino for p in source.rglob("*") if p.is_file()}
        assert not inodes & {p.stat().st_ino for p in cap.root.rglob("*") if p.is_file()}


# --- point 2: an import never writes into the user's dataset ---------------------------------------


def test_relative_source_with_frames_of_the_same_name_leaves_the_dataset_alone(tmp_path, ws, monkeypatch):
    lego = tmp_path / "lego"
    write_png(lego / "train" / "r_0.png", 16, 12, seed=1)
    write_png(lego / "test" / "r_0.png", 16, 12, seed=2)
    _transforms(lego, [{"file_path": "./train/r_0"}, {"file_path": "./test/r_0"}])
    before = tree_digest(lego)
    monkeypatch.chdir(tmp_path)
    cap = ingest(Path("lego"), ws)
    assert tree_digest(lego) == before
    frames = cap.load().frames
    assert [f.image for f in frames] == ["images/r_0.png", "images/r_0_2.png"]
    for frame, sub in zip(frames, ("train", "test"), strict=True):
        assert (cap.root / frame.image).read_bytes() == (lego / sub / "r_0.png").read_bytes()
        assert (cap.raw_dir / sub / "r_0.png").read_bytes() == (lego / sub / "r_0.png").read_bytes()


def test_same_stem_frames_with_depth_get_their_own_depth_and_leave_the_dataset_alone(tmp_path, ws):
    ds = tmp_path / "ds"
    write_jpeg(ds / "images" / "a.jpg", 16, 12, seed=1)
    write_png(ds / "images" / "a.png", 16, 12, seed=2)
    write_png(ds / "more" / "a.png", 16, 12, seed=3)
    write_depth16(ds / "d1.png", 1000)
    np.save(ds / "d2.npy", np.full((12, 16), 2000.0, np.float32))  # converted, not copied
    write_depth16(ds / "d3.png", 3000)
    tf = _transforms(ds, [
        {"file_path": "images/a.jpg", "depth_file_path": "d1.png"},
        {"file_path": "images/a.png", "depth_file_path": "d2.npy"},
        {"file_path": "more/a.png", "depth_file_path": "d3.png"},
    ])  # fmt: skip
    before = tree_digest(ds)
    cap = ingest(tf, ws)
    assert tree_digest(ds) == before
    frames = cap.load().frames
    assert len({f.depth for f in frames}) == 3 and len({f.image for f in frames}) == 3
    import cv2

    for frame, mm in zip(frames, (1000, 2000, 3000), strict=True):
        depth = cv2.imread(str(cap.root / frame.depth), cv2.IMREAD_UNCHANGED)
        assert (depth == mm).all()


# --- point 7: hostile numbers and files are one typed error naming the file ------------------------


def _tf_text(root: Path, text: str) -> tuple[Path, str]:
    write_png(root / "images" / "a.png", 16, 12)
    (root / "transforms.json").write_text(text)
    return root / "transforms.json", str(root / "transforms.json")


def _record3d(root: Path, meta_text: str) -> tuple[Path, str]:
    write_jpeg(root / "rgbd" / "0.jpg", 16, 12)
    (root / "metadata.json").write_text(meta_text)
    return root, str(root / "metadata.json")


def _idr(root: Path, write_cameras) -> tuple[Path, str]:
    write_png(root / "image" / "000000.png", 16, 12)
    write_cameras(root / "cameras.npz")
    return root, str(root / "cameras.npz")


def _npz_bytes(tmp: Path, **arrays) -> bytes:
    np.savez(tmp / "tmp.npz", **arrays)
    data = (tmp / "tmp.npz").read_bytes()
    (tmp / "tmp.npz").unlink()
    return data


def _zip_with_broken_entry(root: Path, broken: str) -> tuple[Path, str]:
    root.mkdir(parents=True)
    archive = root / "cap.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(write_png(root / "a.png", 16, 12), "a.png")
        zf.writestr("b.png", b"\x00" * 4000)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("b.png")
    if broken == "encrypted":  # set the "encrypted" flag in the local and the central header
        data[info.header_offset + 6] |= 1
        at = data.find(b"PK\x01\x02")
        while at >= 0:
            name_len = int.from_bytes(data[at + 28: at + 30], "little")
            if data[at + 46: at + 46 + name_len] == b"b.png":
                data[at + 8] |= 1
            at = data.find(b"PK\x01\x02", at + 4)
    else:  # a deflate stream whose first block has the reserved type 11
        name_len = int.from_bytes(data[info.header_offset + 26: info.header_offset + 28], "little")
        extra_len = int.from_bytes(data[info.header_offset + 28: info.header_offset + 30], "little")
        start = info.header_offset + 30 + name_len + extra_len
        data[start: start + 4] = b"\xff\xff\xff\xff"
    archive.write_bytes(bytes(data))
    return archive, f"{archive}: b.png"


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([16, 0, 0, 0, 0])
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def _depth_bomb(root: Path) -> tuple[Path, str]:
    write_png(root / "images" / "a.png", 16, 12)
    (root / "d.png").write_bytes(_png_declaring(60000, 60000))
    tf = _transforms(root, [{"file_path": "images/a.png", "depth_file_path": "d.png"}])
    return tf, str(root / "d.png")


BIG = "1" + "0" * 400
HUGE_POSE = f"[[{BIG}, 0, 0, 0]]"
HOSTILE = {
    "pose 10**400": lambda r: _tf_text(r, json.dumps({**INTRINSICS, "frames": [
        {"file_path": "images/a.png", "transform_matrix": "POSE"}]}).replace('"POSE"', HUGE_POSE)),
    "intrinsic 10**400": lambda r: _tf_text(r, json.dumps({**INTRINSICS, "frames": [
        {"file_path": "images/a.png", "transform_matrix": POSE}]}).replace("20.0", BIG, 1)),
    "NaN in Record3D metadata": lambda r: _record3d(
        r, '{"w": NaN, "h": 12, "K": [20, 0, 0, 0, 20, 0, 8, 6, 1], "poses": [[0, 0, 0, 1, 0, 0, 0]]}'),
    "Infinity in Record3D metadata": lambda r: _record3d(
        r, '{"w": Infinity, "h": 12, "K": [20, 0, 0, 0, 20, 0, 8, 6, 1], "poses": [[0, 0, 0, 1, 0, 0, 0]]}'),
    "NUL in a path": lambda r: _tf_text(r, json.dumps({**INTRINSICS, "frames": [
        {"file_path": "images/a.png\x00.jpg", "transform_matrix": POSE}]})),
    "100k-deep JSON": lambda r: _tf_text(r, "[" * 100_000 + "]" * 100_000),
    "100k-deep Record3D metadata": lambda r: _record3d(r, '{"w": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    "encrypted zip entry": lambda r: _zip_with_broken_entry(r, "encrypted"),
    "corrupt zip entry": lambda r: _zip_with_broken_entry(r, "corrupt"),
    "empty cameras.npz": lambda r: _idr(r, lambda p: p.write_bytes(b"")),
    "truncated cameras.npz": lambda r: _idr(
        r, lambda p: p.write_bytes(_npz_bytes(r.parent, world_mat_0=np.eye(4))[:150])),
    "object-array cameras.npz": lambda r: _idr(r, lambda p: p.write_bytes(
        _npz_bytes(r.parent, world_mat_0=np.array([{"a": 1}, None], dtype=object)))),
    "degenerate world_mat": lambda r: _idr(
        r, lambda p: p.write_bytes(_npz_bytes(r.parent, world_mat_0=np.zeros((4, 4))))),
    "depth PNG declaring 60000x60000": _depth_bomb,
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_import_is_one_typed_error_naming_the_file(tmp_path, ws, case):
    source, where = HOSTILE[case](tmp_path / "src")
    err = _refused(source, ws)
    assert isinstance(err, IngestError)
    assert err.where.startswith(where), (err.where, where)


# --- point 9: garbage refused, errors name the user's own file ------------------------------------


def test_stray_confidence_map_that_is_not_one_is_refused(tmp_path, ws):
    root = tmp_path / "stray"
    (root / "camera_matrix.csv").parent.mkdir(parents=True)
    (root / "camera_matrix.csv").write_text("500, 0, 320\n0, 500, 240\n0, 0, 1\n")
    (root / "odometry.csv").write_text("timestamp, frame, x, y, z, qx, qy, qz, qw\n"
                                       "0.0, 0, 0, 0, 0, 0, 0, 0, 1\n")
    write_depth16(root / "depth" / "000000.png", 1000, 8, 6)
    (root / "confidence").mkdir()
    (root / "confidence" / "000000.png").write_text("this is not a confidence map\n")
    err = _refused(root, ws, IngestError)
    assert err.where == str(root / "confidence" / "000000.png")


@pytest.mark.parametrize("matrix", [
    [["1", "0", "0", "0"], ["0", "1", "0", "0"], ["0", "0", "1", "2"], ["0", "0", "0", "1"]],
    [[True, False, False, False], [False, True, False, False], [False, False, True, True],
     [False, False, False, True]],
])  # fmt: skip
def test_transform_matrix_of_strings_or_booleans_is_refused(tmp_path, ws, matrix):
    ds = tmp_path / "ds"
    write_png(ds / "images" / "a.png", 16, 12)
    tf = _transforms(ds, [{"file_path": "images/a.png", "transform_matrix": matrix}])
    err = _refused(tf, ws, IngestError)
    assert err.where == f"{tf}: frames[0].transform_matrix"


def test_a_jpeg_named_mp4_is_not_a_video(tmp_path, ws):
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(write_jpeg(tmp_path / "x.jpg", 64, 48).read_bytes())
    err = _refused(fake, ws, IngestError)
    assert err.where == str(fake) and "not a video" in err.reason


def test_error_inside_a_zip_names_archive_and_member(tmp_path, ws):
    archive = tmp_path / "cap.zip"
    tf = {**INTRINSICS, "frames": [
        {"file_path": "images/a.png", "transform_matrix": POSE, "depth_file_path": "depth/a.png"}]}
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("scan/transforms.json", json.dumps(tf))
        zf.write(write_png(tmp_path / "a.png", 16, 12), "scan/images/a.png")
        zf.writestr("scan/depth/a.png", b"\x89PNG\r\n\x1a\n truncated")
    err = _refused(archive, ws, IngestError)
    assert err.where == f"{archive}: scan/depth/a.png"


def test_the_ingest_stage_names_the_uploaded_file_never_a_path_on_the_pc(tmp_path):
    from core.capture import CaptureFolder, Manifest, utc_now

    ws = Workspace(tmp_path / "ws")
    capture = CaptureFolder(ws.captures_dir / "cap-1")
    capture.raw_dir.mkdir(parents=True)
    with zipfile.ZipFile(capture.raw_dir / "photos.zip", "w") as zf:
        zf.write(write_jpeg(tmp_path / "a.jpg"), "a.jpg")
        zf.writestr("b.jpg", write_jpeg(tmp_path / "b.jpg", 64, 64).read_bytes()[:200])
    capture.save(Manifest(id="cap-1", name="phone", created=utc_now(), mode="free", status="processing"))
    with pytest.raises(IngestError) as e:
        execute_stage(capture, "ingest")
    assert e.value.where == "raw/photos.zip: b.jpg"
    assert str(tmp_path) not in str(e.value)


@pytest.mark.timeout(30)
def test_a_fifo_as_the_source_is_refused_not_read(tmp_path, ws):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    err = _refused(fifo, ws, UnsafeSourceError)
    assert err.where == str(fifo)


def test_a_killed_imports_staging_folder_is_cleaned_by_the_next_import(tmp_path, ws):
    # A real process makes a staging folder, writes into it and is killed with SIGKILL.
    script = (
        "import os, signal, sys\n"
        "from core.workspace import Workspace\n"
        "ws = Workspace(sys.argv[1])\n"
        "cm = ws.staged_capture('killed-import')\n"
        "cap = cm.__enter__()\n"
        "(cap.root / 'images').mkdir()\n"
        "(cap.root / 'images' / 'half.jpg').write_bytes(b'half')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script, str(ws.root)], env=env, cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert captures_listing(ws) == [".staging-killed-import"]
    photos = tmp_path / "photos"
    write_jpeg(photos / "a.jpg")
    with ws.staged_capture("still-writing"):  # a live writer's folder is left alone
        cap = ingest(photos, ws)
        assert captures_listing(ws) == sorted([".staging-still-writing", cap.id])
    assert captures_listing(ws) == sorted(["still-writing", cap.id])


def test_an_image_listed_by_many_frames_is_refused_not_copied_once_per_listing(tmp_path, ws):
    ds = tmp_path / "ds"
    write_png(ds / "images" / "a.png", 16, 12)
    tf = _transforms(ds, [{"file_path": "images/a.png"}] * 3)
    err = _refused(tf, ws, IngestError)
    assert err.where == f"{tf}: frames[1].file_path" and "frames[0].file_path" in err.reason


def test_a_folder_holding_only_a_link_to_a_folder_outside_is_refused(tmp_path, ws, victim):
    wrapper = tmp_path / "wrapper"
    wrapper.mkdir()
    os.symlink(victim, wrapper / "photos")
    err = _refused(wrapper, ws, UnsafeSourceError)
    assert err.where == str(wrapper / "photos")


def test_an_upload_that_is_a_link_out_of_raw_is_refused_by_the_ingest_stage(tmp_path, victim):
    from core.capture import CaptureFolder, Manifest, utc_now

    ws = Workspace(tmp_path / "ws")
    capture = CaptureFolder(ws.captures_dir / "cap-1")
    capture.raw_dir.mkdir(parents=True)
    os.symlink(victim / "secret.jpg", capture.raw_dir / "photo.jpg")
    capture.save(Manifest(id="cap-1", name="phone", created=utc_now(), mode="free", status="processing"))
    with pytest.raises(UnsafeSourceError) as e:
        execute_stage(capture, "ingest")
    assert e.value.where == "raw/photo.jpg" and str(tmp_path) not in str(e.value)
    assert not capture.images_dir.exists()


def test_an_idr_image_folder_that_links_out_is_refused(tmp_path, ws, victim):
    ds = tmp_path / "dtu"
    ds.mkdir()
    projection = np.array([[20.0, 0, 8, 0], [0, 20, 6, 0], [0, 0, 1, 2], [0, 0, 0, 1]])
    np.savez(ds / "cameras.npz", world_mat_0=projection)
    write_png(victim / "000000.png", 16, 12)
    os.symlink(victim, ds / "image")
    before = tree_digest(tmp_path)
    err = _refused(ds, ws, UnsafeSourceError)
    assert err.where == str(ds / "image" / "000000.png")
    assert tree_digest(tmp_path) == before


def test_a_folder_whose_only_video_links_out_is_refused(tmp_path, ws, victim):
    folder = tmp_path / "clips"
    folder.mkdir()
    (victim / "private.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    os.symlink(victim / "private.mp4", folder / "clip.mp4")
    err = _refused(folder, ws, UnsafeSourceError)
    assert err.where == str(folder / "clip.mp4")


def test_files_are_typed_by_content_not_by_their_names(tmp_path, ws):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "shot.jpg").write_bytes(write_png(tmp_path / "x.png", 16, 12).read_bytes())  # a PNG named .jpg
    frame = ingest(photos, ws).load().frames[0]
    assert frame.image == "images/shot.png"
    ds = tmp_path / "ds"
    write_png(ds / "images" / "a.png", 16, 12)
    Image.fromarray(np.full((12, 16), 1234, np.uint16)).save(ds / "d.png", format="TIFF")  # a TIFF named .png
    cap = ingest(_transforms(ds, [{"file_path": "images/a.png", "depth_file_path": "d.png"}]), ws)
    depth = cap.root / cap.load().frames[0].depth
    assert depth.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    import cv2

    assert (cv2.imread(str(depth), cv2.IMREAD_UNCHANGED) == 1234).all()


def test_a_stray_depth_map_that_is_no_png_is_refused(tmp_path, ws):
    from PIL import Image

    root = tmp_path / "stray"
    root.mkdir()
    (root / "camera_matrix.csv").write_text("500, 0, 320\n0, 500, 240\n0, 0, 1\n")
    (root / "odometry.csv").write_text("timestamp, frame, x, y, z, qx, qy, qz, qw\n"
                                       "0.0, 0, 0, 0, 0, 0, 0, 0, 1\n")
    (root / "depth").mkdir()
    Image.fromarray(np.full((6, 8), 1000, np.uint16)).save(root / "depth" / "000000.png", format="TIFF")
    err = _refused(root, ws, IngestError)
    assert err.where == str(root / "depth" / "000000.png") and "not a PNG" in err.reason
