"""Shipping a stage between machines without shared storage (core.cluster_ship), no Ray needed:
a shipped capture hashes to the same run folder as the original, a run folder comes back under
the same name through an atomic publish, and hostile names in a shipment write nothing."""

import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image
from stages_for_tests import DENSE, SFM, make_workspace

from core.capture import Camera, CaptureFolder, Frame
from core.cluster_ship import ShippedFile, pack_capture, pack_tree, publish_run, unpack
from core.errors import InputError
from core.stages import execute_stage, make_config, run_dir_for


@pytest.fixture
def capture(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    cap = ws.capture("cap")
    rng = np.random.default_rng(5)
    (cap.root / "images").mkdir()
    frames = []
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(cap.root / f"images/{i}.png")
        camera = Camera(16, 12, 20.0, 20.0, 8.0, 6.0)
        frames.append(Frame(id=f"{i:06d}", camera=camera, image=f"images/{i}.png"))
    cap.save(dataclasses.replace(cap.load(), frames=tuple(frames)))
    (cap.root / "raw").mkdir()
    (cap.root / "raw" / "upload.mov").write_bytes(b"not read by these stages")
    return cap


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_shipped_stage_makes_the_same_run_folder_as_a_local_one(capture, tmp_path):
    local_sfm = execute_stage(capture, SFM, {"ticks": 2})
    local_dense = execute_stage(capture, DENSE, {"ticks": 2}, {"sfm": local_sfm.run_dir})

    # "the node": a copy of what the dense step reads, in another folder
    shipped = pack_capture(capture.root, [local_sfm.run_dir], with_raw=False)
    names = {f.path for f in shipped}
    assert "capture.json" in names and "images/0.png" in names
    assert f"runs/{local_sfm.run_dir.name}/status.json" in names
    assert not any(n.startswith(("raw/", "exports/")) for n in names)
    assert not any(n.startswith(f"runs/{local_dense.run_dir.name}") for n in names)  # only wired runs
    node_root = tmp_path / "node" / "cap"
    unpack(shipped, node_root, "capture cap")
    node_cap = CaptureFolder(node_root)
    node_sfm = node_root / "runs" / local_sfm.run_dir.name
    expected = run_dir_for(capture, DENSE, make_config(DENSE, {"ticks": 3}), {"poses": local_sfm.run_dir})
    on_node = execute_stage(node_cap, DENSE, {"ticks": 3}, {"sfm": node_sfm})
    assert on_node.run_dir.name == expected.name  # same data, same hash: images kept their mtimes

    # back on "the head": published under the same name, the node's paths rewritten to ours
    published = publish_run(pack_tree(on_node.run_dir), capture.runs_dir, on_node.run_dir.name,
                            {str(node_sfm): str(local_sfm.run_dir)})
    assert published == expected
    config = json.loads((published / "config.json").read_text())
    assert config["inputs"] == {"poses": str(local_sfm.run_dir)}
    assert (published / "out.txt").read_text() == local_sfm.run_dir.name
    again = execute_stage(capture, DENSE, {"ticks": 3}, {"sfm": local_sfm.run_dir})
    assert again.reused and again.run_dir == published  # a run done elsewhere is reused here
    assert not [p for p in capture.runs_dir.iterdir() if p.name.startswith(".")]  # no temp left


def test_publishing_replaces_an_unfinished_run_whole(capture, tmp_path):
    runs = capture.runs_dir
    (runs / "dense-abc").mkdir(parents=True)
    (runs / "dense-abc" / "half-written.bin").write_bytes(b"x")
    source = tmp_path / "from-node"
    source.mkdir()
    (source / "status.json").write_text('{"state": "done"}')
    publish_run(pack_tree(source), runs, "dense-abc")
    assert _tree(runs / "dense-abc") == {"status.json": b'{"state": "done"}'}
    assert sorted(p.name for p in runs.iterdir()) == ["dense-abc"]


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/evil", "a/../../b", "a//b", "./a", "", "a\\..\\b"])
def test_a_hostile_name_in_a_shipment_writes_nothing(tmp_path, name):
    dest = tmp_path / "dest"
    with pytest.raises(InputError, match="refusing a shipped file"):
        unpack([ShippedFile(name, b"evil", 0, 0o644)], dest, "shipment")
    assert not (tmp_path / "outside.txt").exists()
    assert not dest.exists() or not any(dest.rglob("*"))


def test_hostile_run_folder_names_are_refused(tmp_path):
    for name in ("../runs2", "a/b", ".."):
        with pytest.raises(InputError):
            publish_run([], tmp_path / "runs", name)
    assert not (tmp_path / "runs2").exists()


def test_symlinks_are_not_shipped(capture, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the capture")
    os.symlink(secret, capture.root / "images" / "link.png")
    os.symlink(tmp_path, capture.root / "linkdir")
    names = {f.path for f in pack_capture(capture.root, [], with_raw=True)}
    assert "images/link.png" not in names and not any(n.startswith("linkdir") for n in names)
    assert "raw/upload.mov" in names  # a stage that reads raw/ gets it
