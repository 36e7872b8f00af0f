"""A real local Ray cluster for tests and bench/cluster.py: a head and more nodes on 127.0.0.1.

Each node is a ``ray start --block`` process in its own session, with small memory and one CPU,
its own temp folder and free ports, so it never meets another Ray on this machine; teardown
kills exactly those process groups. Without Ray the tests skip, saying what to install, except
under CI (``SCANBRIDGE_CI=1`` or ``CI=true``), where a missing Ray fails them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OBJECT_STORE_BYTES = 80 * 1024**2
# On a machine so busy that Ray's raylet misses its fixed 15 s agent deadline (ray-project/ray#65983),
# SCANBRIDGE_TEST_RAY_RT=1 starts the nodes with real-time priority (root only), then puts every
# process of them back to normal scheduling: only the start-up jumps the queue, never the work.
RT_START_ENV = "SCANBRIDGE_TEST_RAY_RT"


def ray_installed() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def require_ray() -> None:
    if ray_installed():
        return
    message = "Ray is not installed: pip install -c constraints.txt -e '.[cluster]'"
    if _under_ci():
        pytest.fail(message + " (CI must run the cluster tests)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_env() -> dict[str, str]:
    """The nodes' workers import this checkout and the test stages, and stay single-threaded."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(HERE), env.get("PYTHONPATH", "")) if p)
    env.update(RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env.pop("RAY_ADDRESS", None)
    return env


class ClusterDidNotStart(RuntimeError):
    """The local cluster did not come up in time (on a busy machine: Ray's fixed 15 s agent deadline)."""


RAY_AGENT_DEADLINE = "Timed out waiting for file"  # ray-project/ray#65983: a fixed 15 s in the raylet


def start_or_skip(nodes: int = 2) -> LocalCluster:
    """A started cluster; where this machine is too busy for Ray's fixed start-up deadline, skip
    saying so (fail under CI, where the machine is not shared)."""
    require_ray()
    try:
        return LocalCluster(nodes=nodes).__enter__()
    except ClusterDidNotStart as e:
        if RAY_AGENT_DEADLINE in str(e) and not _under_ci():
            pytest.skip(f"this machine is too busy to start Ray (its raylet gives its agents a fixed "
                        f"15 s, ray-project/ray#65983): {e}")
        raise


def _under_ci() -> bool:
    return os.environ.get("SCANBRIDGE_CI") == "1" or os.environ.get("CI") == "true"


class LocalCluster:
    """``with LocalCluster(nodes=2) as c: c.address``; ``c.kill_node(1)`` stops the second node."""

    def __init__(self, nodes: int = 2, cpus: int = 1, start_timeout_s: float = 300.0) -> None:
        self.nodes, self.cpus, self.start_timeout_s = nodes, cpus, start_timeout_s
        self.procs: list[subprocess.Popen] = []
        self.temp = Path(tempfile.mkdtemp(prefix="sbray", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    def _start(self, head: bool) -> None:
        ray = [sys.executable, str(HERE / "ray_node.py")]
        args = [*ray, "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}",
                "--num-gpus=0", f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats",
                "--include-log-monitor=false",
                f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"]
        if head:
            args += ["--head", f"--port={self.port}", "--include-dashboard=false",
                     f"--ray-client-server-port={free_port()}", f"--temp-dir={self.temp}"]
        else:
            args += [f"--address={self.address}"]
        if os.environ.get(RT_START_ENV) == "1" and shutil.which("chrt"):
            args = ["chrt", "-f", "5", *args]  # reset to normal scheduling once the node is up
        log = open(self._log(len(self.procs)), "wb")
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=node_env(),
                                           start_new_session=True))

    def __enter__(self) -> LocalCluster:
        try:
            self._start(head=True)
            self._wait_for(1)
            for _ in range(self.nodes - 1):
                self._start(head=False)
            self._wait_for(self.nodes)
        except RuntimeError as e:
            why = self._raylet_failure()
            self.stop()
            raise ClusterDidNotStart(f"{e}{': ' + why if why else ''}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def _raylet_failure(self) -> str:
        """The raylet's own fatal line, if it wrote one (Ray does not pass it to `ray start`)."""
        for log in sorted(self.temp.glob("session_*/logs/raylet*.out")):
            for line in log.read_text(errors="replace").splitlines():
                if "Check failed" in line:
                    return line.split("Check failed:", 1)[1].strip()[:300]
        return ""

    def _wait_for(self, count: int) -> None:
        """Until the first ``count`` nodes say their Ray runtime started (read from their logs)."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Ray node exited with {proc.returncode}")
            if all(b"Ray runtime started" in self._log(i).read_bytes() for i in range(count)):
                self._normal_scheduling()
                return
            time.sleep(0.5)
        raise RuntimeError(f"the local Ray cluster did not reach {count} node(s) in {self.start_timeout_s} s")

    def _normal_scheduling(self) -> None:
        """Every process of our nodes back to normal scheduling (after a real-time start)."""
        if os.environ.get(RT_START_ENV) != "1":
            return
        groups = {proc.pid for proc in self.procs}
        for _ in range(2):  # again, for anything started while the first pass ran
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        if os.getpgid(int(entry.name)) in groups:
                            for task in (entry / "task").iterdir():
                                os.sched_setscheduler(int(task.name), os.SCHED_OTHER, os.sched_param(0))

    def _log(self, index: int) -> Path:
        return self.temp.parent / f"{self.temp.name}-{index}.log"

    def kill_node(self, index: int) -> None:
        self._kill(self.procs[index])

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=15)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop(self) -> None:
        for proc in reversed(self.procs):
            self._kill(proc)
        shutil.rmtree(self.temp, ignore_errors=True)
        for i in range(len(self.procs)):
            self._log(i).unlink(missing_ok=True)

    def __exit__(self, *exc: object) -> None:
        self.stop()
