"""`scanbridge video` on the sample: an H.264 MP4 that decodes to the requested frames and size,
whose frames match the poster renderer (recon.export.poster, written apart from ours) at the same
camera, published to exports/ for the share page."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import recon.sample.demo as demo
from core.cli import main
from core.workspace import Workspace
from recon.export.poster import render_poster
from recon.mesh.stage import load_result
from recon.sample import render_orbit, write_capture_folder


@pytest.fixture(scope="module")
def sample_with_model(tmp_path_factory):
    """The bundled sample's scene, small (12 views, 320x240), through the real pipeline to a model."""
    views = render_orbit(12, (320, 240), elevations_deg=(25.0,))
    source = write_capture_folder(views, tmp_path_factory.mktemp("sample") / "orbit", with_depth=True)
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    result = demo.run_demo(ws, name="sample", steps=(), source=source, detail="preview", texture_size=256)
    return ws, result.capture


def _decode(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def _poster_camera(vertices: np.ndarray, azimuth_deg: float, elevation_deg: float, fov_deg: float):
    """The poster's 3/4 camera as OpenCV camera-to-world, computed here from its documented framing:
    centre of the bounding box, 1.15 x the distance at which the bounding sphere fills the fov."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    centre = 0.5 * (lo + hi)
    radius = np.linalg.norm(vertices - centre, axis=1).max()
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    direction = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    eye = centre + direction * radius / np.sin(np.radians(fov_deg) / 2) * 1.15
    z = (centre - eye) / np.linalg.norm(centre - eye)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, np.cross(z, x), z, eye
    return c2w


def test_video_command_writes_a_decodable_clip_that_matches_the_poster(sample_with_model, tmp_path, capsys):
    ws, capture = sample_with_model
    out = tmp_path / "clip.mp4"
    code = main(["--workspace", str(ws.root), "video", capture.id, "--path", "turntable", "--seconds", "1",
                 "--fps", "6", "--size", "96x64", "--elevation", "25", "-o", str(out)])
    assert code == 0
    published = capture.exports_dir / "clip.mp4"
    assert f"video: {published}" in capsys.readouterr().out
    assert out.read_bytes() == published.read_bytes()
    assert out.read_bytes()[4:8] == b"ftyp"
    frames = _decode(out)
    assert len(frames) == 6
    assert all(f.shape == (64, 96, 3) for f in frames)
    assert np.std([f.mean() for f in frames]) > 0.1  # the model turns: the frames differ

    # The same clip machinery at the poster's camera: square, 35 degrees, azimuth 35, elevation 25.
    from generation.video.encode import write_mp4
    from generation.video.paths import Intrinsics
    from generation.video.render import FrameRenderer

    (mesh_run,) = [r for r in capture.runs_dir.glob("mesh-*")]
    mesh, _ = load_result(mesh_run)
    c2w = _poster_camera(mesh.vertices.astype(float), 35.0, 25.0, 35.0)
    size = 128
    intrinsics = Intrinsics.from_fov(size, size, 35.0)
    frame = FrameRenderer(mesh).render(c2w, intrinsics, supersample=2)
    one = tmp_path / "one.mp4"
    assert write_mp4([frame], one, size, size, 1.0) == 1
    (decoded,) = _decode(one)
    poster = render_poster(mesh, size)
    solid = cv2.erode((poster[..., 3] == 255).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert solid.mean() > 0.1  # the model fills a fair part of the picture
    ours_covered = np.abs(frame.astype(int) - [24, 24, 28]).sum(axis=-1) > 0
    assert ours_covered[solid].mean() > 0.99 and not ours_covered[poster[..., 3] == 0].mean() > 0.02
    rendered = np.abs(frame.astype(float) - poster[..., :3].astype(float))[solid]
    assert rendered.mean() < 1.0, rendered.mean()  # the same picture, up to rounding
    diff = np.abs(decoded.astype(float) - poster[..., :3].astype(float))[solid]
    assert diff.mean() < 6.0, diff.mean()  # H.264 loses a little; a wrong camera or texture loses a lot


def test_video_command_bad_size_is_one_clear_error(sample_with_model, capsys):
    ws, capture = sample_with_model
    assert main(["--workspace", str(ws.root), "video", capture.id, "--size", "95x64"]) == 2
    assert "width" in capsys.readouterr().err
