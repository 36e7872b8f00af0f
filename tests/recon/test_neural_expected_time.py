"""The expected time of a neural method on this machine, before anything starts: each method's
registry entry says it per detail, ``scanbridge process`` prints it or refuses a CPU run that
would take hours with one message (the time and the preset that fits) before any job is queued."""

from __future__ import annotations

import re

import pytest
import torch

from core.cli import main as scanbridge
from core.errors import ConfigError
from core.jobs import JobQueue
from core.workspace import Workspace
from recon.methods import CaptureFacts, expected_time, load_method
from recon.nerf.settings import CPU_SECONDS_PER_RAY, PRESETS
from recon.sample.dataset import write_capture_folder
from recon.sample.scene import render_orbit

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU figures apply without a CUDA GPU")
FACTS = CaptureFacts("orbit", frames=8, photos=8, depth_and_poses=True, metric=True, median_depth_m=0.5)


@cpu_only
@pytest.mark.parametrize("method", ["nerf", "splat", "surface"])
def test_each_neural_method_says_its_cpu_time_at_preview_and_refuses_full(method):
    line = expected_time(load_method(method), FACTS, "preview")
    assert re.match(r"about \d+(\.\d)? (s|min|h) on this machine's CPU \(", line), line
    with pytest.raises(ConfigError) as refused:
        expected_time(load_method(method), FACTS, "full")
    message = str(refused.value)
    assert re.search(r"about \d+(\.\d)? (h|days)", message) and "--detail preview (about " in message
    assert refused.value.where == f"{method}.detail"
    assert expected_time(load_method("auto"), FACTS, "preview") is None  # the classic methods give none


@cpu_only
def test_the_nerf_figure_is_its_preset_times_the_measured_cost_per_ray():
    p = PRESETS["preview"]
    minutes = p.steps * p.rays_per_batch * CPU_SECONDS_PER_RAY / 60.0  # computed here, not by the code
    line = expected_time(load_method("nerf"), FACTS, "preview")
    assert line.startswith(f"about {round(minutes)} min on this machine's CPU ({p.steps} steps of "
                           f"{p.rays_per_batch} rays, photos at {p.max_image_side} px)")


@cpu_only
def test_process_refuses_a_long_cpu_run_before_queuing_anything(tmp_path, capsys):
    src = write_capture_folder(render_orbit(6, (64, 48)), tmp_path / "src", with_depth=False,
                               image_format="png")
    ws = tmp_path / "ws"
    code = scanbridge(["process", str(src), "--workspace", str(ws), "--method", "nerf", "--detail", "medium",
                       "-o", str(tmp_path / "model.usdz")])
    err = capsys.readouterr().err
    assert code != 0
    assert "nerf.detail" in err and re.search(r"about \d+\.\d h on this machine's CPU", err) \
        and "use --detail preview (about 18 min)" in err, err
    workspace = Workspace(ws)
    assert JobQueue(workspace).list() == []  # refused before a job was queued: no poses ran
    (capture,) = workspace.captures()
    assert not capture.runs_dir.exists() or not any(capture.runs_dir.iterdir())
    assert not (tmp_path / "model.usdz").exists()
