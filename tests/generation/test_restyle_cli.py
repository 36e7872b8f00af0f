"""``scanbridge restyle``: runs the stage as a job (in a child process) and writes a playable MP4."""

from __future__ import annotations

import argparse

import pytest

from core.cli import common_parser, exit_code
from core.errors import ConfigError
from core.jobs import JobQueue
from generation.restyle.cli import add_restyle_command
from generation.restyle.video import read_mp4


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scanbridge")
    add_restyle_command(parser.add_subparsers(dest="command", required=True), common_parser())
    return parser.parse_args(argv)


def test_restyle_command_runs_a_job_and_writes_a_playable_mp4(sample_capture, tmp_path, capsys):
    workspace, capture = sample_capture
    out = tmp_path / "restyled.mp4"
    args = _parse(["restyle", capture.id, "--workspace", str(workspace.root), "--prompt", "a bronze statue",
                   "-o", str(out), "--size", "64", "--max-frames", "3", "--steps", "2",
                   "--keyframe-every", "2", "--seed", "11"])
    assert args.func(args) == 0
    video = read_mp4(out)
    assert len(video) == 3 and video[0].shape == (48, 64, 3)
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "temporal consistency: warped error" in printed
    jobs = [j for j in JobQueue(workspace).list() if j.capture_id == capture.id]
    assert jobs[-1].state == "done"


@pytest.mark.parametrize("extra, where", [
    (["--fidelity", "2"], "fidelity"),
    (["--steps", "1", "--strength", "0.5"], "steps"),
])
def test_bad_options_are_refused_before_any_work(sample_capture, tmp_path, extra, where):
    workspace, capture = sample_capture
    args = _parse(["restyle", capture.id, "--workspace", str(workspace.root), "--prompt", "x",
                   "-o", str(tmp_path / "o.mp4"), *extra])
    with pytest.raises(ConfigError) as err:
        args.func(args)
    assert err.value.where == where and exit_code(err.value) == 2


def test_only_mp4_or_ar_asset_output_is_written(sample_capture, tmp_path):
    workspace, capture = sample_capture
    args = _parse(["restyle", capture.id, "--workspace", str(workspace.root), "--prompt", "x",
                   "-o", str(tmp_path / "o.avi")])
    with pytest.raises(ConfigError, match="mp4"):
        args.func(args)


def test_pyproject_registers_the_restyle_command_and_stage():
    import importlib
    import tomllib
    from pathlib import Path

    from core.stages import StageSpec

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    groups = project["entry-points"]

    def load(target: str):
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    assert load(groups["scanbridge.commands"]["restyle"]) is add_restyle_command
    stage = load(groups["scanbridge.stages"]["restyle"])
    assert isinstance(stage, StageSpec) and stage.name == "restyle"
