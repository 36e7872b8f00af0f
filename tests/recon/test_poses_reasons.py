"""Every "why was this frame not registered" reason, each from a case built by hand.

The unit tests write the images and a COLMAP database themselves (keypoint and inlier counts
chosen per frame), so each reason's trigger is known from outside the code. The stage test shows
the eighth reason, a frame with only a depth map, in a real (failing) SfM run.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pycolmap
import pytest

from core.capture import Camera, Frame, Manifest, utc_now
from core.errors import ReconstructionError
from core.stages import execute_stage
from core.workspace import Workspace
from recon.poses.diagnose import unregistered_reasons
from recon.poses.features import ImageEntry

MIN_KEYPOINTS, MIN_INLIERS, BLUR_RATIO = 100, 15, 0.25
SIZE = (240, 320)  # (H, W)


def _sharp(seed: int) -> np.ndarray:
    """Random blocks of 4x4 px: lots of edges, a Laplacian variance in the thousands."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (SIZE[0] // 4, SIZE[1] // 4), dtype=np.uint8)
    return cv2.resize(small, (SIZE[1], SIZE[0]), interpolation=cv2.INTER_NEAREST)


def _laplacian_var(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


class Scene:
    """Image files under ``root`` and a database with chosen keypoint and inlier counts."""

    def __init__(self, root) -> None:
        self.root = root
        self.entries: list[ImageEntry] = []
        self.db_path = root / "database.db"
        self.db = pycolmap.Database.open(self.db_path)
        self.camera_id = self.db.write_camera(pycolmap.Camera.create_from_model_name(
            0, "PINHOLE", 300.0, SIZE[1], SIZE[0]))
        self.ids: dict[str, int] = {}

    def image(self, name: str, pixels: np.ndarray | bytes, keypoints: int | None = None) -> None:
        path = self.root / "images" / name
        path.parent.mkdir(exist_ok=True)
        if isinstance(pixels, bytes):
            path.write_bytes(pixels)
        else:
            cv2.imwrite(str(path), pixels)
        rel = f"images/{name}"
        self.entries.append(ImageEntry(frame_id=name.split(".")[0], name=rel, camera_key=0))
        if keypoints is not None:
            image_id = self.db.write_image(pycolmap.Image(name=rel, camera_id=self.camera_id))
            xy = np.random.default_rng(len(self.ids)).uniform(0, 200, (keypoints, 2)).astype(np.float32)
            self.db.write_keypoints(image_id, xy)
            self.ids[rel] = image_id

    def pair(self, a: str, b: str, inliers: int) -> None:
        geometry = pycolmap.TwoViewGeometry()
        geometry.config = pycolmap.TwoViewGeometryConfiguration.CALIBRATED
        geometry.inlier_matches = np.stack([np.arange(inliers), np.arange(inliers)], axis=1).astype(np.uint32)
        self.db.write_two_view_geometry(self.ids[f"images/{a}"], self.ids[f"images/{b}"], geometry)

    def reasons(self, registered: set[str], side_models=()) -> dict[str, str]:
        self.db.close()
        return unregistered_reasons(
            self.root, self.entries, {f"images/{n}" for n in registered}, self.db_path,
            [{f"images/{n}" for n in m} for m in side_models],
            min_keypoints=MIN_KEYPOINTS, min_inliers=MIN_INLIERS, blur_ratio=BLUR_RATIO,
        )


def test_the_seven_reasons_sfm_can_give(tmp_path):
    s = Scene(tmp_path)
    for i in range(3):
        s.image(f"reg{i}.png", _sharp(i), keypoints=800)
    s.pair("reg0.png", "reg1.png", 200)
    s.pair("reg1.png", "reg2.png", 200)
    s.image("unreadable.png", b"\x89PNG\r\n\x1a\n but then nothing an image decoder can use")
    blurred = cv2.GaussianBlur(_sharp(10), (0, 0), 6)
    s.image("blurry.png", blurred, keypoints=800)
    s.image("unextracted.png", _sharp(11), keypoints=None)  # feature extraction never read it
    s.image("featureless.png", _sharp(12), keypoints=MIN_KEYPOINTS - 1)
    s.image("unmatched.png", _sharp(13), keypoints=800)
    s.pair("unmatched.png", "reg0.png", MIN_INLIERS - 1)
    s.image("island_a.png", _sharp(14), keypoints=800)
    s.image("island_b.png", _sharp(15), keypoints=800)
    s.pair("island_a.png", "island_b.png", 300)
    s.image("unposed.png", _sharp(16), keypoints=800)
    s.pair("unposed.png", "reg2.png", MIN_INLIERS)

    sharp_values = [_laplacian_var(_sharp(i)) for i in range(3)]
    assert _laplacian_var(blurred) < BLUR_RATIO * min(sharp_values)  # the fixture is what it claims

    reasons = s.reasons({"reg0.png", "reg1.png", "reg2.png"}, side_models=[{"island_a.png", "island_b.png"}])
    assert set(reasons) == {"unreadable", "blurry", "unextracted", "featureless", "unmatched",
                            "island_a", "island_b", "unposed"}
    assert reasons["unreadable"].startswith("unreadable image")
    assert reasons["blurry"].startswith("blurry")
    assert reasons["unextracted"].startswith("no features")
    assert reasons["featureless"] == f"too few features: {MIN_KEYPOINTS - 1} keypoints (< {MIN_KEYPOINTS})"
    assert reasons["unmatched"] == (f"too few matches: best image pair has {MIN_INLIERS - 1} inlier matches "
                                    f"(< {MIN_INLIERS})")
    for island in ("island_a", "island_b"):
        assert reasons[island] == "not connected to the main model: it is in a separate model of 2 frames"
    assert reasons["unposed"].startswith("not connected to the main model: matched (15 inliers at best)")
    assert "could not be estimated" in reasons["unposed"]


def test_one_blurry_frame_among_registered_sharp_ones_is_called_blurry(tmp_path):
    """The median is the capture's (all frames), so a single failed frame can be the blurry one."""
    s = Scene(tmp_path)
    for i in range(4):
        s.image(f"reg{i}.png", _sharp(i), keypoints=800)
    for i in range(3):
        s.pair(f"reg{i}.png", f"reg{i + 1}.png", 200)
    s.image("shaky.png", cv2.GaussianBlur(_sharp(5), (0, 0), 6), keypoints=800)
    s.pair("shaky.png", "reg0.png", 40)
    reasons = s.reasons({f"reg{i}.png" for i in range(4)})
    assert list(reasons) == ["shaky"]
    assert reasons["shaky"].startswith("blurry: sharpness ")


def test_a_sharp_failed_frame_among_blurry_registered_ones_is_not_called_blurry(tmp_path):
    s = Scene(tmp_path)
    for i in range(4):
        s.image(f"reg{i}.png", cv2.GaussianBlur(_sharp(i), (0, 0), 6), keypoints=800)
    s.image("crisp.png", _sharp(9), keypoints=800)
    s.pair("crisp.png", "reg0.png", MIN_INLIERS - 5)
    reasons = s.reasons({f"reg{i}.png" for i in range(4)})
    assert reasons == {"crisp": f"too few matches: best image pair has {MIN_INLIERS - 5} inlier matches "
                                f"(< {MIN_INLIERS})"}


def test_nothing_missing_needs_no_database(tmp_path):
    s = Scene(tmp_path)
    s.image("a.png", _sharp(0), keypoints=800)
    assert s.reasons({"a.png"}) == {}


def test_a_depth_only_frame_in_an_sfm_capture_is_reported_as_having_no_image(tmp_path):
    ws = Workspace(tmp_path / "ws")
    cam = Camera(SIZE[1], SIZE[0], 300.0, 300.0, SIZE[1] / 2, SIZE[0] / 2)
    with ws.staged_capture("cap") as cap:
        (cap.root / "images").mkdir()
        (cap.root / "depth").mkdir()
        frames = []
        for i in range(2):  # two unrelated noise images: SfM registers nothing
            noise = np.random.default_rng(i).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
            cv2.imwrite(str(cap.root / "images" / f"{i}.png"), noise)
            frames.append(Frame(id=f"f{i}", camera=cam, image=f"images/{i}.png"))
        cv2.imwrite(str(cap.root / "depth" / "d.png"), np.full(SIZE, 800, np.uint16))
        frames.append(Frame(id="depth-only", camera=cam, depth="depth/d.png"))
        cap.save(Manifest(id="cap", name="reasons", created=utc_now(), mode="free", frames=tuple(frames)))
    cap = ws.capture("cap")
    with pytest.raises(ReconstructionError, match="no frame could be registered"):
        execute_stage(cap, "poses", {"max_attempts": 1, "num_threads": 1})
    run = next(p for p in cap.runs_dir.iterdir() if p.name.startswith("poses-"))
    unregistered = json.loads((run / "poses.json").read_text())["unregistered"]
    assert unregistered["depth-only"] == "no image: the frame has only a depth map and no device pose"
    assert set(unregistered) == {"f0", "f1", "depth-only"}
