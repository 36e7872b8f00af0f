"""``scanbridge demo``: the sample through ingest and the job queue's poses stage, end to end."""

from __future__ import annotations

import json

import pytest

import recon.sample.demo as demo
from core.cli import build_parser, main
from core.errors import IngestError
from core.jobs import JobQueue
from core.workspace import Workspace
from recon.sample import render_orbit, write_capture_folder


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    """A quick stand-in for the bundled sample: 12 small views on one ring (SfM in seconds)."""
    views = render_orbit(12, (320, 240), elevations_deg=(25.0,))
    return write_capture_folder(views, tmp_path_factory.mktemp("sample") / "orbit", with_depth=True)


def _check_output(out: str, ws: Workspace, frames: int) -> None:
    (capture,) = ws.captures()
    manifest = capture.load()
    assert manifest.mode == "guided" and len(manifest.frames) == frames
    assert f"capture {capture.id}: {capture.root}" in out
    (run_dir,) = capture.runs_dir.glob("poses-*")
    assert f"poses: {run_dir}" in out
    for name in ("transforms.json", "sparse.ply", "poses.json"):
        assert f"  {run_dir / name}" in out
    assert f"registered {frames}/{frames} frames (sfm" in out
    assert "against the true poses" in out and "mm RMS" in out
    poses = json.loads((run_dir / "poses.json").read_text())
    assert poses["registered"] == frames
    # It ran as jobs of the workspace's queue: the SfM check, then the AR model.
    jobs = JobQueue(ws).list()
    assert len(jobs) == 2 and all(j.state == "done" and j.capture_id == capture.id for j in jobs)
    usdz = capture.exports_dir / "model.usdz"
    assert f"AR model (open on an iPhone or iPad for AR Quick Look): {usdz}" in out
    assert (capture.exports_dir / "poster.png").is_file()


def test_demo_command_runs_ingest_and_sfm(tmp_path, small_sample, monkeypatch, capsys):
    monkeypatch.setattr(demo, "bundled_sample_dir", lambda: small_sample)
    ws_root = tmp_path / "ws"
    assert main(["--workspace", str(ws_root), "demo", "--name", "quick", "--detail", "preview",
                 "--texture-size", "256"]) == 0
    out = capsys.readouterr().out
    ws = Workspace(ws_root)
    _check_output(out, ws, 12)
    assert ws.captures()[0].load().name == "quick"


def test_demo_steps_are_a_list_to_extend():
    assert [s.stage for s in demo.DEMO_STEPS][0] == "poses"
    assert demo.DEMO_STEPS[0].config == {"use_device_poses": False}  # SfM, not the rendered poses


def test_demo_without_steps_only_ingests(tmp_path, small_sample):
    ws = Workspace(tmp_path / "ws")
    result = demo.run_demo(ws, steps=(), source=small_sample, model=False)
    assert result.outcomes == ()
    assert demo.describe(result) == [f"capture {result.capture.id}: {result.capture.root}"]


def test_demo_on_a_missing_source_is_one_error_and_leaves_nothing(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(IngestError, match="no such file"):
        demo.run_demo(ws, source=tmp_path / "nowhere")
    assert ws.captures() == []


def test_demo_is_a_registered_command():
    args = build_parser("demo").parse_args(["--workspace", "/x", "demo"])
    assert args.command == "demo" and args.name == "sample" and args.workspace == "/x"


def test_demo_on_the_bundled_sample(tmp_path, capsys):
    ws_root = tmp_path / "ws"
    assert main(["--workspace", str(ws_root), "demo"]) == 0
    _check_output(capsys.readouterr().out, Workspace(ws_root), 24)
