"""SfM pairs from the phone's orientation: photos of a guided web-page capture are matched with
their neighbours around the object (recon.poses.headings, pairs.heading_pairs)."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from core.capture import Camera, Frame, Manifest
from core.stages import execute_stage
from core.workspace import Workspace
from recon.ingest import ingest
from recon.poses.headings import frame_directions
from recon.poses.pairs import heading_pairs, make_pairs
from recon.sample import render_orbit
from recon.sample.scene import ORBIT_TARGET


def ring(azimuths_deg: list[float]) -> np.ndarray:
    a = np.radians(azimuths_deg)
    return np.stack([np.sin(a), np.cos(a), np.zeros_like(a)], axis=1)  # (N, 3) level directions


def test_each_photo_pairs_with_its_neighbours_around_the_object() -> None:
    order = [7, 2, 11, 0, 5, 9, 3, 10, 1, 6, 8, 4]  # capture order has nothing to do with the ring
    directions = ring([30.0 * k for k in order])
    pairs = set(heading_pairs(directions, neighbors=2))
    position = {k: i for i, k in enumerate(order)}
    expected = {tuple(sorted((position[k], position[(k + 1) % 12]))) for k in range(12)}
    assert pairs == expected  # exactly the 12 ring neighbours, the wrap-around included


def test_unknown_directions_get_no_heading_pairs_and_retrieval_keeps_its_own() -> None:
    directions = ring([0.0, 30.0, 60.0, 90.0])
    directions[1] = np.nan  # a photo picked from the library, sent without orientation
    assert heading_pairs(directions, neighbors=1) == [(0, 2), (2, 3)]
    assert heading_pairs(np.full((3, 3), np.nan), neighbors=2) == []
    rng = np.random.default_rng(0)
    descriptors = [rng.integers(0, 255, (60, 128)).astype(np.uint8) for _ in range(8)]
    order = [0, 4, 1, 5, 2, 6, 3, 7]
    directions = ring([45.0 * k for k in order])
    with_heading = set(make_pairs("retrieval", descriptors, 2, 2, False, directions=directions))
    plain = set(make_pairs("retrieval", descriptors, 2, 2, False))
    assert plain < with_heading
    # Azimuths 0 and 315 degrees: neighbours around the object, far apart in capture order.
    assert (0, 7) in with_heading and (0, 7) not in plain
    assert make_pairs("exhaustive", descriptors, 2, 1, False, directions=ring([0.0] * 8)) == \
        make_pairs("exhaustive", descriptors, 2, 1, False)


def test_frame_directions_read_the_manifest_as_untrusted() -> None:
    cam = Camera(64, 48, 50.0, 50.0, 32.0, 24.0)
    frames = tuple(Frame(id=f"{i:06d}", camera=cam, image=f"images/{i}.jpg", source_name=name)
                   for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]))
    files = [
        {"name": "a.jpg", "orientation": {"alpha": 90, "beta": 60, "gamma": 0, "heading": None, "t": 1}},
        {"name": "b.jpg", "orientation": {"alpha": float("nan"), "beta": 60, "gamma": 0}},
        {"name": "c.jpg", "orientation": {"alpha": True, "beta": 60, "gamma": 0}},
        {"name": "d.jpg"},
        {"name": "x/e.jpg", "orientation": {"alpha": 0, "beta": 60, "gamma": 0}},
        {"name": "y/e.jpg", "orientation": {"alpha": 90, "beta": 60, "gamma": 0}},  # which e.jpg is it?
        {"name": "f.jpg", "orientation": {"alpha": 1e300, "beta": 0, "gamma": 0}},
        "not an entry", {"name": 5, "orientation": {}},
    ]
    manifest = Manifest(id="c", name="c", created="2026-01-01T00:00:00Z", mode="guided", frames=frames,
                        source={"kind": "upload", "files": files})
    directions = frame_directions(manifest)
    assert set(directions) == {"000000"}
    # alpha 90, beta 60: the camera looks west and 30 degrees down, so the phone is east and above.
    assert np.allclose(directions["000000"], (math.cos(math.radians(30)), 0.0, 0.5), atol=1e-12)
    broken = dataclasses.replace(manifest, source={"files": {"a.jpg": 1}})
    assert frame_directions(broken) == {}


def orientation_for(direction_enu: np.ndarray) -> dict[str, float]:
    """W3C angles (gamma 0) whose back camera looks from ``direction_enu`` back at the object.

    With gamma 0 the camera looks along (-sin a sin b, cos a sin b, -cos b), its opposite is the
    direction to the phone, so cos b = up and (sin a, -cos a) is the horizontal part over sin b."""
    east, north, up = direction_enu
    beta = math.degrees(math.acos(up))
    alpha = math.degrees(math.atan2(east, -north)) % 360.0
    return {"alpha": round(alpha, 3), "beta": round(beta, 3), "gamma": 0.0, "heading": None, "t": 1.0}


@pytest.fixture(scope="module")
def guided_orbit(tmp_path_factory: pytest.TempPathFactory):
    """12 views of the sample scene on two interleaved rings, named in a shuffled order, with the
    orientation each would have sent; the true directions from the object to each camera."""
    root = tmp_path_factory.mktemp("guided")
    folder = root / "photos"
    folder.mkdir()
    views = render_orbit(12, (320, 240))
    shuffled = np.random.default_rng(3).permutation(12)
    files, truth = [], {}
    for i, view in enumerate(views):
        name = f"guided-{shuffled[i]:03d}.jpg"
        cv2.imwrite(str(folder / name), view.rgb[:, :, ::-1])
        offset = view.c2w[:3, 3] - ORBIT_TARGET
        x, y, z = offset / np.linalg.norm(offset)
        enu = np.array([x, -z, y])  # the scene's +y is up; east x, north -z keeps it right-handed
        truth[name] = enu
        files.append({"name": name, "orientation": orientation_for(enu)})
    capture = ingest(folder, Workspace(root / "ws"), name="guided")
    manifest = capture.load()
    capture.save(dataclasses.replace(manifest, mode="guided", source={**manifest.source, "files": files}))
    return capture, truth


def test_the_poses_stage_matches_neighbours_by_heading(guided_orbit) -> None:
    capture, truth = guided_orbit
    events = []
    config = {"matcher": "retrieval", "retrieval_neighbors": 2, "max_attempts": 1,
              "min_registered_fraction": 0.5}
    outcome = execute_stage(capture, "poses", config, sink=events.append)
    [pairs_file] = list(outcome.run_dir.glob("attempts/*/pairs.txt"))
    by_source = {fr.image: fr.source_name for fr in capture.load().frames}
    matched = set()
    for line in pairs_file.read_text().splitlines():
        a, b = line.split()
        matched.add(frozenset((by_source[a], by_source[b])))
    names = sorted(truth)
    d = np.stack([truth[n] for n in names])  # (12, 3)
    angles = np.degrees(np.arccos(np.clip(d @ d.T, -1, 1)))
    np.fill_diagonal(angles, np.inf)
    for i, name in enumerate(names):  # each view's two nearest by true direction were matched
        for j in np.argsort(angles[i])[:2]:
            assert frozenset((name, names[j])) in matched, (name, names[j])
    assert any("orientation" in str(getattr(e, "message", "")) for e in events)
    assert outcome.result["registered"] >= 10
