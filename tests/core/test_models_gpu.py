"""Models and devices in the stage context, and the machine-wide GPU slot across processes."""

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest
from stages_for_tests import child_env, make_workspace

from core.errors import ConfigError, DependencyError
from core.gpu_slot import gpu_slot
from core.jobs import JobQueue, Step
from core.models import ModelStore, choose_device
from core.progress import CancelToken
from core.resources import Resources
from core.settings import Settings, save_settings
from core.stages import StageSpec, execute_stage


def test_resolve_gives_the_path_and_content_hash_or_a_clear_error(tmp_path):
    weights = tmp_path / "tiny.npy"
    np.save(weights, np.arange(6, dtype=np.float32))
    folder = tmp_path / "tiny-folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 1}')
    (folder / "sub" / "w.bin").write_bytes(b"\x00\x01")
    store = ModelStore({"tiny": str(weights), "folder": str(folder), "gone": str(tmp_path / "nope")})

    resolved = store.resolve("tiny")
    assert resolved.path == weights and resolved.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    expected = hashlib.sha256()
    for name, data in (("config.json", b'{"layers": 1}'), ("sub/w.bin", b"\x00\x01")):
        expected.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\0".encode())
    assert ModelStore({"folder": str(folder)}).resolve("folder").sha256 == expected.hexdigest()
    with pytest.raises(DependencyError) as e:
        store.resolve("depth-anything")
    assert e.value.where == "model_paths.depth-anything" and "set their path in the settings" in str(e.value)
    with pytest.raises(DependencyError, match="nothing at"):
        store.resolve("gone")


@dataclass(frozen=True)
class NoConfig:
    tag: str = ""


def _sum_weights(ctx, cfg):
    return {"sum": float(np.load(ctx.models.resolve("tiny").path).sum()), "device": ctx.device}


def test_weights_are_part_of_the_run_identity(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    cap = ws.capture("cap")
    spec = StageSpec("uses_tiny", NoConfig, _sum_weights, models=("tiny",), reads=(), capture_reads=())
    weights = tmp_path / "tiny.npy"
    np.save(weights, np.ones(4, np.float32))
    settings = Settings(model_paths={"tiny": str(weights)})
    first = execute_stage(cap, spec, settings=settings)
    assert first.result == {"sum": 4.0, "device": "cpu"}
    assert execute_stage(cap, spec, settings=settings).reused
    np.save(weights, np.full(4, 2.0, np.float32))  # new weights at the same path
    second = execute_stage(cap, spec, settings=settings)
    assert not second.reused and second.run_dir != first.run_dir and second.result["sum"] == 8.0
    runs_before = sorted(cap.runs_dir.iterdir())
    with pytest.raises(DependencyError):
        execute_stage(cap, spec)  # no model_paths: a clear error, no download, no run folder
    assert sorted(cap.runs_dir.iterdir()) == runs_before


def test_the_device_follows_the_settings_for_gpu_stages_only():
    assert choose_device("auto", uses_gpu=False) == "cpu"
    assert choose_device("cpu", uses_gpu=True) == "cpu"
    with pytest.raises(ConfigError):
        choose_device("cuda please", uses_gpu=True)
    with pytest.raises(ConfigError):
        Resources(cpus=0)
    with pytest.raises(ConfigError):
        Resources(ram_gb=float("nan"))


def test_two_gpu_stages_from_two_processes_never_overlap(tmp_path):
    intervals = tmp_path / "intervals.txt"
    env = {**child_env(), "SCANBRIDGE_GPU_LOCK": str(tmp_path / "gpu.lock")}
    workers = []
    for name in ("app", "server"):  # two workspaces, as the app's and a separate server's could be
        ws = make_workspace(tmp_path / name)
        save_settings(ws.settings_path, Settings(gpu="cpu"))
        queue = JobQueue(ws)
        for i in range(2):
            config = {"intervals": str(intervals), "tag": f"{name}{i}"}
            queue.submit("cap", [Step("stages_for_tests:GPU", config)])
        workers.append((queue, ws))
    # The test holds the slot until both workers' first stages wait for it, so they must contend.
    with gpu_slot(CancelToken(), path=tmp_path / "gpu.lock"):
        procs = [subprocess.Popen([sys.executable, "-m", "core.worker", "run", "--workspace", str(ws.root)],
                                  env=env) for _, ws in workers]
        deadline = time.monotonic() + 120
        while not all(_waiting(queue) for queue, _ in workers):
            assert time.monotonic() < deadline, "the workers never waited for the GPU slot"
            time.sleep(0.05)
        assert not intervals.exists()  # nothing ran while the slot was held
    for proc in procs:
        assert proc.wait(timeout=180) == 0
    runs = sorted((float(a), float(b), int(pid)) for pid, a, b, _ in
                  (line.split() for line in intervals.read_text().splitlines()))
    assert len(runs) == 4 and len({pid for _, _, pid in runs}) == 4
    for (_, end, _), (start, _, _) in zip(runs, runs[1:], strict=False):
        assert end <= start  # one at a time
    assert all(job.state == "done" for queue, _ in workers for job in queue.list())
    assert {json.dumps(job.steps[0].result) for queue, _ in workers for job in queue.list()} == \
        {json.dumps({"device": "cpu"})}


def _waiting(queue):
    return any("waiting for the GPU" in e.message for job in queue.list() for e in queue.events(job.id))


@pytest.mark.gpu
def test_a_gpu_stage_gets_the_cuda_device_the_settings_allow(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    assert choose_device("auto", uses_gpu=True) == "cuda:0"
    assert choose_device("0", uses_gpu=True) == "cuda:0"
    assert choose_device("cpu", uses_gpu=True) == "cpu"
    with pytest.raises(DependencyError):
        choose_device(str(torch.cuda.device_count()), uses_gpu=True)

    def on_device(ctx, cfg):
        return {"device": ctx.device, "sum": float(torch.ones(8, device=ctx.device).sum().item())}

    ws = make_workspace(tmp_path / "ws")
    spec = StageSpec("on_gpu", NoConfig, on_device, reads=(), capture_reads=(), resources=Resources(gpu=True))
    out = execute_stage(ws.capture("cap"), spec, settings=Settings(gpu="auto"))
    assert out.result == {"device": "cuda:0", "sum": 8.0}
