"""Declared ports and run identity: a run's hash covers the runs wired into it and the capture
data it reads (frames, intrinsics, masks), not the steps it does not read."""

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from stages_for_tests import DENSE, SFM, TickConfig, child_env, make_workspace

from core.capture import Camera, Frame
from core.errors import ConfigError
from core.jobs import JobQueue, Step
from core.ports import POSED_IMAGES, Port
from core.runner import Runner
from core.stages import StageSpec, execute_stage, run_dir_for
from core.worker import Worker

FIRST = "stages_for_tests:FIRST"


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


@pytest.fixture
def capture(tmp_path):
    """A capture with two photos and a mask on the first."""
    ws = make_workspace(tmp_path / "ws")
    cap = ws.capture("cap")
    rng = np.random.default_rng(3)
    frames = []
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(cap.root / f"img{i}.png")
        camera = Camera(32, 24, 30.0, 30.0, 16.0, 12.0)
        frames.append(Frame(id=f"{i:06d}", camera=camera, image=f"img{i}.png"))
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(cap.root / "mask0.png")
    frames[0] = dataclasses.replace(frames[0], mask="mask0.png")
    cap.save(dataclasses.replace(cap.load(), frames=tuple(frames)))
    return cap


def test_a_step_that_is_not_read_does_not_change_the_run(capture, tmp_path):
    """A job like the server's (an extra step first) and a job like the CLI's share their runs."""
    queue = JobQueue(make_workspace_of(capture))
    worker = Worker(queue, Runner(), heartbeat_s=60.0, progress_interval_s=0.0)
    server = worker.run_job(queue.submit("cap", [Step(FIRST), Step("stages_for_tests:SFM"),
                                                 Step("stages_for_tests:DENSE")]).id)
    cli = worker.run_job(queue.submit("cap", [Step("stages_for_tests:SFM"),
                                              Step("stages_for_tests:DENSE")]).id)
    assert server.job.state == cli.job.state == "done"
    assert [o.run_dir for o in cli.outcomes] == [o.run_dir for o in server.outcomes[1:]]
    assert [o.reused for o in cli.outcomes] == [True, True]
    # dense got only the run wired to its port, under the port's name
    assert server.outcomes[2].result["inputs"] == {"poses": server.outcomes[1].run_dir.name}


def make_workspace_of(capture):
    from core.workspace import Workspace

    return Workspace(capture.root.parent.parent)


def test_changed_intrinsics_or_mask_make_a_new_run_and_status_does_not(capture):
    first = execute_stage(capture, SFM)
    manifest = capture.load()
    capture.save(dataclasses.replace(manifest, status="processed", name="renamed"))
    assert execute_stage(capture, SFM).reused  # not what the stage reads

    data = json.loads(capture.manifest_path.read_text())
    data["frames"][1]["camera"]["fx"] = 31.0
    capture.manifest_path.write_text(json.dumps(data))
    changed = execute_stage(capture, SFM)
    assert not changed.reused and changed.run_dir != first.run_dir

    Image.fromarray(np.zeros((24, 32), np.uint8)).save(capture.root / "mask0.png")  # same size, new pixels
    masked = execute_stage(capture, SFM)
    assert not masked.reused and masked.run_dir not in (first.run_dir, changed.run_dir)
    # and the dense run wired to it changes with it
    assert execute_stage(capture, DENSE, inputs={"sfm": changed.run_dir}).run_dir != \
        execute_stage(capture, DENSE, inputs={"sfm": masked.run_dir}).run_dir


def test_a_stage_reading_no_capture_part_ignores_capture_edits(capture):
    spec = StageSpec("pure", TickConfig, lambda ctx, cfg: {}, reads=(), capture_reads=())
    before = run_dir_for(capture, spec, TickConfig(), {})
    data = json.loads(capture.manifest_path.read_text())
    data["frames"][0]["camera"]["cx"] = 15.0
    capture.manifest_path.write_text(json.dumps(data))
    assert run_dir_for(capture, spec, TickConfig(), {}) == before


def test_wiring_picks_a_specific_earlier_step_or_says_what_is_missing(capture):
    a = execute_stage(capture, SFM, {"tag": "a"}).run_dir
    b = execute_stage(capture, dataclasses.replace(SFM, name="sfm2"), {"tag": "b"}).run_dir
    runs = {"sfm": a, "sfm2": b}
    latest = execute_stage(capture, DENSE, inputs=runs)
    assert latest.result["inputs"] == {"poses": b.name}  # the latest run of the kind
    chosen = execute_stage(capture, DENSE, inputs=runs, wiring={"poses": "sfm"})
    assert chosen.result["inputs"] == {"poses": a.name} and chosen.run_dir != latest.run_dir
    with pytest.raises(ConfigError, match="posed images"):
        execute_stage(capture, DENSE)
    with pytest.raises(ConfigError) as e:
        execute_stage(capture, DENSE, inputs=runs, wiring={"poses": "nope"})
    assert e.value.where == "dense.inputs.poses"
    with pytest.raises(ConfigError) as e:
        execute_stage(capture, DENSE, inputs=runs, wiring={"colour": "sfm"})
    assert e.value.where == "dense.inputs.colour"
    with pytest.raises(ConfigError):
        StageSpec("twice", TickConfig, lambda c, k: {},
                  reads=(Port("p", POSED_IMAGES), Port("p", POSED_IMAGES)))
    with pytest.raises(ConfigError):
        StageSpec("odd", TickConfig, lambda c, k: {}, capture_reads=("everything",))


def test_a_job_step_wires_an_input_by_stage_name(capture):
    queue = JobQueue(make_workspace_of(capture))
    steps = [Step("stages_for_tests:SFM", {"tag": "a"}), Step(FIRST),
             Step("stages_for_tests:DENSE", {}, inputs={"poses": "sfm"})]
    worker = Worker(queue, Runner(), heartbeat_s=60.0, progress_interval_s=0.0)
    run = worker.run_job(queue.submit("cap", steps).id)
    assert run.job.state == "done", run.job.error
    assert run.job.steps[2].inputs == {"poses": "sfm"}
    assert run.outcomes[2].result["inputs"] == {"poses": run.outcomes[0].run_dir.name}
