"""SIFT extraction and matching into a COLMAP database, with progress and cancellation.

Both steps run pycolmap in chunks (a few images, then a few hundred pairs at a time) so the
stage can report real progress and stop between chunks; a pycolmap CancellationToken also stops
a chunk that is running when the user cancels.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap

from core.capture import Camera, Frame
from core.errors import StageError
from core.progress import CancelToken, Progress
from recon.poses.config import AttemptSettings
from recon.poses.pairs import Pair, make_pairs


@dataclass(frozen=True)
class ImageEntry:
    """One frame as COLMAP sees it: ``name`` is the frame's image path inside the capture."""

    frame_id: str
    name: str
    camera_key: int  # index into the list of distinct cameras
    direction: tuple[float, float, float] | None = None  # object -> camera, where known (headings)


@contextlib.contextmanager
def colmap_cancellation(cancel: CancelToken, poll_s: float = 0.1) -> Iterator[pycolmap.CancellationToken]:
    """A pycolmap CancellationToken that is cancelled when ``cancel`` is."""
    token = pycolmap.CancellationToken()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(poll_s):
            if cancel.cancelled:
                token.cancel()
                return

    watcher = threading.Thread(target=watch, name="poses-cancel-bridge", daemon=True)
    watcher.start()
    try:
        yield token
    finally:
        done.set()
        watcher.join()


def image_entries(frames: Sequence[Frame]) -> tuple[list[ImageEntry], list[Camera]]:
    """Frames with images, in capture order, and the distinct cameras they use."""
    cameras: list[Camera] = []
    entries = []
    for fr in frames:
        if fr.image is None:
            continue
        if fr.camera not in cameras:
            cameras.append(fr.camera)
        entries.append(ImageEntry(fr.id, fr.image, cameras.index(fr.camera)))
    return entries, cameras


def colmap_camera(camera: Camera, prior_focal: bool, for_sfm: bool) -> pycolmap.Camera:
    """A pycolmap camera from manifest intrinsics.

    For SfM a plain pinhole guess becomes SIMPLE_RADIAL (one focal length and a radial term for
    bundle adjustment to refine); known distortion keeps its OPENCV or OPENCV_FISHEYE model.
    """
    if camera.model in ("OPENCV", "OPENCV_FISHEYE") and camera.distortion:
        params = [camera.fx, camera.fy, camera.cx, camera.cy, *camera.distortion]
        model = camera.model  # COLMAP matches and adjusts through the lens model itself
    elif for_sfm:
        params = [0.5 * (camera.fx + camera.fy), camera.cx, camera.cy, 0.0]
        model = "SIMPLE_RADIAL"
    else:
        params = [camera.fx, camera.fy, camera.cx, camera.cy]
        model = "PINHOLE"
    cam = pycolmap.Camera.create_from_model_name(0, model, 0.0, camera.width, camera.height)
    cam.params = np.asarray(params, dtype=np.float64)
    cam.has_prior_focal_length = prior_focal
    return cam


def extract(
    database: Path,
    image_root: Path,
    entries: Sequence[ImageEntry],
    cameras: Sequence[Camera],
    settings: AttemptSettings,
    *,
    prior_focal: bool,
    for_sfm: bool,
    num_threads: int,
    progress: Progress,
    cancel: CancelToken,
    chunk: int = 8,
) -> Path:
    """Write cameras, images, keypoints and descriptors of ``entries`` into a new ``database``."""
    if database.exists():
        database.unlink()
    uses = Counter(e.camera_key for e in entries)
    db = pycolmap.Database.open(database)
    try:
        camera_ids = {key: db.write_camera(colmap_camera(c, prior_focal, for_sfm))
                      for key, c in enumerate(cameras) if uses[key] > 1}
    finally:
        db.close()
    options = pycolmap.FeatureExtractionOptions()
    options.max_image_size = settings.max_image_size
    options.num_threads = num_threads
    options.use_gpu = False
    options.sift.max_num_features = settings.max_num_features
    options.sift.domain_size_pooling = settings.domain_size_pooling
    # A shared camera is passed in (existing_camera_id); images with a camera of their own are
    # extracted together (one call per image would use one core and pay the start-up each time)
    # with the camera pycolmap makes for each, whose intrinsics are then replaced by ours.
    batches = [(camera_ids[key], [e.name for e in entries if e.camera_key == key]) for key in camera_ids]
    batches.append((None, [e.name for e in entries if uses[e.camera_key] == 1]))
    done = 0
    with colmap_cancellation(cancel) as token:
        for camera_id, names in batches:
            for start in range(0, len(names), chunk):
                cancel.check()
                reader = pycolmap.ImageReaderOptions()
                if camera_id is not None:
                    reader.existing_camera_id = camera_id
                part = names[start:start + chunk]
                pycolmap.extract_features(
                    database, image_root, image_names=part,
                    camera_mode=pycolmap.CameraMode.SINGLE if camera_id is not None
                    else pycolmap.CameraMode.PER_IMAGE,
                    reader_options=reader, extraction_options=options, device=pycolmap.Device.cpu,
                    cancellation_token=token,
                )
                done += len(part)
                progress.update(done / len(entries), f"features: {done}/{len(entries)} images")
    own = {e.name: cameras[e.camera_key] for e in entries if uses[e.camera_key] == 1}
    if own:
        db = pycolmap.Database.open(database)
        try:
            for name, camera in own.items():
                cam = colmap_camera(camera, prior_focal, for_sfm)
                cam.camera_id = db.read_image_with_name(name).camera_id
                db.update_camera(cam)
        finally:
            db.close()
    cancel.check()
    return database


def read_descriptors(database: Path, entries: Sequence[ImageEntry]) -> list[np.ndarray]:
    """SIFT descriptors per entry, in entry order; (0, 128) for an image that has none.

    -> list of (M_i, 128) uint8
    """
    db = pycolmap.Database.open(database)
    try:
        by_name = {im.name: im.image_id for im in db.read_all_images()}
        out = []
        for e in entries:
            image_id = by_name.get(e.name)
            if image_id is None or not db.exists_descriptors(image_id):
                out.append(np.zeros((0, 128), np.uint8))
            else:
                out.append(np.asarray(db.read_descriptors(image_id).data))
        return out
    finally:
        db.close()


def _write_pairs(path: Path, entries: Sequence[ImageEntry], pairs: Sequence[Pair]) -> Path:
    path.write_text("".join(f"{entries[i].name} {entries[j].name}\n" for i, j in pairs), encoding="utf-8")
    return path


def match(
    database: Path,
    entries: Sequence[ImageEntry],
    settings: AttemptSettings,
    *,
    num_threads: int,
    seed: int,
    work_dir: Path,
    progress: Progress,
    cancel: CancelToken,
    chunk: int = 200,
) -> list[Pair]:
    """Match and geometrically verify the pairs the attempt's matcher picks; returns the pairs."""
    for e in entries:
        if any(ch.isspace() for ch in e.name):
            raise StageError("image names with spaces cannot be matched by pair list", e.name)
    descriptors = read_descriptors(database, entries)
    present = [i for i, d in enumerate(descriptors) if len(d)]
    directions = np.array([entries[i].direction or (np.nan,) * 3 for i in present],
                          dtype=float).reshape(-1, 3)  # (P, 3) object -> camera, NaN where unknown
    local = make_pairs(
        settings.matcher, [descriptors[i] for i in present], settings.sequential_overlap,
        settings.retrieval_neighbors, settings.loop_detection, seed,
        directions=directions if np.isfinite(directions).any() else None,
    )
    pairs = [(present[i], present[j]) for i, j in local]
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = num_threads
    matching.use_gpu = False
    matching.guided_matching = settings.guided_matching
    verification = pycolmap.TwoViewGeometryOptions()
    verification.min_num_inliers = settings.min_num_inliers
    verification.ransac.random_seed = seed
    pairs_file = work_dir / "pairs.txt"
    with colmap_cancellation(cancel) as token:
        for start in range(0, len(pairs), chunk):
            cancel.check()
            part = pairs[start:start + chunk]
            pairing = pycolmap.ImportedPairingOptions()
            pairing.match_list_path = _write_pairs(pairs_file, entries, part)
            pycolmap.match_image_pairs(
                database, matching_options=matching, pairing_options=pairing,
                verification_options=verification, device=pycolmap.Device.cpu, cancellation_token=token,
            )
            done = min(len(pairs), start + chunk)
            progress.update(done / max(1, len(pairs)), f"matching: {done}/{len(pairs)} pairs")
    cancel.check()
    _write_pairs(pairs_file, entries, pairs)  # keep the full list for the record
    return pairs
