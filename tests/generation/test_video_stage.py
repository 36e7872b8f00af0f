"""The video stages on a capture with a hand-made mesh run: options refused at the door, the
capture path, cancel (nothing half-written), publishing to exports/, and the renderer's z-buffer."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from core.capture import Camera, CaptureFolder, Frame, Manifest, utc_now
from core.errors import Cancelled, ConfigError, NotFoundError
from core.fsio import atomic_write_json
from core.progress import CancelToken
from core.stages import execute_stage
from generation.video.paths import Intrinsics, look_at
from generation.video.render import FrameRenderer
from generation.video.stage import PUBLISH_STAGE, STAGE, VideoStageConfig
from recon.export import TexturedMesh
from recon.export.samples import uv_sphere
from recon.mesh.io import write_textured_npz

CAMERA = Camera(width=64, height=48, fx=60.0, fy=60.0, cx=32.0, cy=24.0)


def _capture_with_model(root, placement=None) -> CaptureFolder:
    capture = CaptureFolder(root)
    capture.root.mkdir(parents=True)
    # the sphere: radius 0.1 m standing on y = 0; the cameras circle it at 0.5 m, looking at it
    poses = [look_at(np.array([0.5 * math.sin(a), 0.25, 0.5 * math.cos(a)]), np.array([0.0, 0.1, 0.0]))
             for a in np.linspace(0, 1.5, 10)]
    frames = tuple(Frame(id=str(i), camera=CAMERA, image=f"images/{i}.png", pose=tuple(map(tuple, p)))
                   for i, p in enumerate(poses))
    capture.save(Manifest(id=root.name, name="Ball", created=utc_now(), mode="rgbd", frames=frames))
    run = capture.runs_dir / "mesh-0123456789ab"
    run.mkdir(parents=True)
    write_textured_npz(run / "textured.npz", uv_sphere(rows=12, cols=24))
    matrix = placement if placement is not None else np.eye(4)
    atomic_write_json(run / "placement.json", {"scale": "metric", "matrix": matrix.tolist()})
    atomic_write_json(run / "status.json", {"state": "done", "ended": 1.0, "result": {}})
    return capture


@pytest.mark.parametrize("bad", [
    {"path": "orbit"}, {"seconds": float("nan")}, {"seconds": 10**400}, {"seconds": -1}, {"fps": 0},
    {"fps": float("inf")}, {"width": 101}, {"height": 10**6}, {"width": True}, {"elevation_deg": 95.0},
    {"mesh_run": "../../etc"}, {"mesh_run": "mesh-0123456789ab/../x"}, {"keyframes": ((1, 2, 3),)},
    {"supersample": 9}, {"seconds": 0.01, "fps": 10},
])
def test_bad_options_are_one_clear_error_naming_the_field(bad):
    with pytest.raises(ConfigError) as caught:
        VideoStageConfig(**bad)
    assert str(caught.value).startswith(f"video.{next(iter(bad))}") or next(iter(bad)) in str(caught.value)


def test_capture_path_clip_is_published_and_decodes(tmp_path):
    capture = _capture_with_model(tmp_path / "ball")
    video = execute_stage(capture, STAGE, {"path": "capture", "seconds": 1.0, "fps": 5.0, "width": 64,
                                           "height": 48})
    assert video.result["frames"] == 5 and video.result["mesh_run"] == "mesh-0123456789ab"
    published = execute_stage(capture, PUBLISH_STAGE, {}, inputs={"video": video.run_dir})
    clip = capture.exports_dir / "clip.mp4"
    assert published.result == {"files": {"mp4": "clip.mp4"}}
    assert clip.read_bytes() == (video.run_dir / "clip.mp4").read_bytes()
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    # The path keeps to the capture's circle (smoothing 10 sparse frames pulls it in a little),
    # so the ball fills the middle of every frame and leaves the corners to the background.
    poses = np.load(video.run_dir / "poses.npy")
    assert np.allclose(np.hypot(poses[:, 0, 3], poses[:, 2, 3]), 0.5, atol=0.04)
    assert np.allclose(poses[:, 1, 3], 0.25)
    for frame in frames:
        assert np.abs(frame[24, 32].astype(int) - [28, 24, 24]).sum() > 30  # BGR: not the background
        assert np.abs(frame[1, 1].astype(int) - [28, 24, 24]).sum() < 12


def test_no_model_is_one_clear_error(tmp_path):
    capture = _capture_with_model(tmp_path / "ball")
    (capture.runs_dir / "mesh-0123456789ab" / "status.json").unlink()
    with pytest.raises(NotFoundError, match="no textured model"):
        execute_stage(capture, STAGE, {"width": 64, "height": 48, "seconds": 0.2, "fps": 5.0})


def test_cancel_leaves_no_clip(tmp_path):
    capture = _capture_with_model(tmp_path / "ball")
    token = CancelToken()
    frames_seen = []

    def sink(event):
        if event.kind == "progress" and "frame" in (event.message or ""):
            frames_seen.append(event.message)
            if len(frames_seen) == 2:
                token.cancel()

    with pytest.raises(Cancelled):
        execute_stage(capture, STAGE, {"width": 64, "height": 48, "seconds": 2.0, "fps": 10.0}, sink=sink,
                      cancel=token)
    (run,) = capture.runs_dir.glob("video-*")
    assert json.loads((run / "status.json").read_text())["state"] == "cancelled"
    assert not any(p.suffix == ".mp4" for p in run.iterdir())  # no clip, not even a partial one
    assert not (capture.exports_dir / "clip.mp4").exists()


def test_nearest_surface_hides_the_one_behind_in_either_order():
    def quad(z, half, colour):
        v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], float)
        tex = np.zeros((2, 2, 3), np.uint8)
        tex[:] = colour
        return v, np.array([[0, 1, 2], [0, 2, 3]]), tex

    vf, f, _ = quad(0.5, 0.2, 0)
    vb, _, _ = quad(0.0, 0.6, 0)
    tex = np.zeros((2, 4, 3), np.uint8)
    tex[:, :2] = (0, 200, 0)  # left half: the front quad's colour
    tex[:, 2:] = (200, 0, 0)
    uv_front = np.full((4, 2), [0.25, 0.5])
    uv_back = np.full((4, 2), [0.75, 0.5])
    faces = np.concatenate([f, f + 4])
    pose = look_at(np.array([0.0, 0.0, 3.0]), np.zeros(3))
    intrinsics = Intrinsics.from_fov(32, 32, 30.0)
    for order in (faces, faces[::-1].copy()):
        mesh = TexturedMesh(np.concatenate([vf, vb]), order, np.concatenate([uv_front, uv_back]), tex)
        image = FrameRenderer(mesh, background=(0, 0, 255)).render(pose, intrinsics)
        r, g, b = image[16, 16]
        assert g > 100 and r < 30 and b < 30  # the near green quad in the middle
        r, g, b = image[16, 7]
        assert r > 100 and g < 30  # the far red one around it
        assert tuple(image[0, 0]) == (0, 0, 255)  # background in the corner


@pytest.mark.parametrize("path", ["turntable", "fly"])
def test_turntable_and_default_fly_through_keep_the_model_in_view(tmp_path, path):
    capture = _capture_with_model(tmp_path / "ball")
    video = execute_stage(capture, STAGE, {"path": path, "seconds": 1.0, "fps": 6.0, "width": 64,
                                           "height": 48})
    cap = cv2.VideoCapture(str(video.run_dir / "clip.mp4"))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    assert len(frames) == 6
    for frame in frames:
        model = np.abs(frame.astype(int) - [28, 24, 24]).sum(axis=-1) > 30
        assert 0.02 < model.mean() < 0.9  # seen, and not filling the whole frame
        assert model[24, 32]  # the camera looks at the model's middle


def test_video_command_without_a_model_is_one_clear_error(tmp_path, capsys):
    from core.cli import main
    from core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    capture = _capture_with_model(ws.captures_dir / "ball-1")
    (capture.runs_dir / "mesh-0123456789ab" / "status.json").unlink()
    code = main(["--workspace", str(ws.root), "video", "ball-1", "--size", "64x48", "--seconds", "0.2"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "ball-1" in err and "no textured model" in err
    assert not (capture.exports_dir / "clip.mp4").exists()
