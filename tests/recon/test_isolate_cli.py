"""``--crop none`` (keep everything) goes from the CLI into the job's plan the way the server
and the app pass options: a per-stage override the method registry applies to the mesh step."""

from __future__ import annotations

import argparse

import pytest
from test_floor import room_capture

from core.errors import ConfigError
from core.submit import method_job
from core.workspace import Workspace
from recon.methods import plan
from recon.process_cli import add_process_command, mesh_options


def parse_process(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_process_command(parser.add_subparsers(), argparse.ArgumentParser(add_help=False))
    return parser.parse_args(["process", "cap-1", "-o", "model.usdz", *argv])


def mesh_step(steps) -> dict:
    return next(s.config for s in steps if s.stage == "mesh")


def test_crop_none_reaches_the_mesh_step_of_every_plan(tmp_path):
    cap = room_capture(Workspace(tmp_path))
    options = mesh_options(parse_process("--crop", "none"))
    assert options == {"crop": "none"}
    # what the CLI, the server and the app queue: a plan step that carries the override ...
    queued = method_job(cap, "auto", "preview", {"mesh": options})
    assert queued[-1].stage == "plan" and queued[-1].config["overrides"] == {"mesh": {"crop": "none"}}
    # ... and what the registry expands it into
    for method in ("auto", "fusion"):
        assert mesh_step(plan(cap, method, "preview", overrides={"mesh": options}).steps)["crop"] == "none"
    assert mesh_step(plan(cap, "fusion", "preview").steps)["crop"] == "auto"  # the default isolates
    assert "crop" not in mesh_options(parse_process())


def test_an_unknown_crop_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_process("--crop", "table")
    assert "invalid choice" in capsys.readouterr().err
    cap = room_capture(Workspace(tmp_path))
    with pytest.raises(ConfigError) as e:
        plan(cap, "fusion", "preview", overrides={"mesh": {"crop": "table"}})
    assert "mesh.crop" in str(e.value)
