"""The cluster's entry points that need no running cluster: `scanbridge worker` here and its
--ray address (only from the flag or the settings), one clear error when Ray is not installed,
the node each step ran on in the queue and in `scanbridge jobs`, and the schema upgrade."""

import socket
import sqlite3
import sys

import pytest
from stages_for_tests import child_env, make_workspace

from core.cli import EXIT_BAD_INPUT, EXIT_MISSING_DEPENDENCY, main
from core.errors import ConfigError, DependencyError
from core.executor import local_handle, node_of_handle
from core.executor_ray import INSTALL_HINT, check_address, import_ray, ray_handle
from core.jobs import JobQueue, Step
from core.settings import Settings, save_settings

FIRST, LAST = "stages_for_tests:FIRST", "stages_for_tests:LAST"


@pytest.fixture(autouse=True)
def _children_find_test_stages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError


def test_without_ray_one_error_says_how_to_install_it(no_ray):
    with pytest.raises(DependencyError, match=r"pip install scanbridge\[cluster\]"):
        import_ray()
    assert INSTALL_HINT == "pip install scanbridge[cluster]"


@pytest.mark.parametrize("address", ["", "http://head:6379", "head 6379", "a;rm -rf /", "x" * 300,
                                     "head:6379\nhead2:1", None, 6379])
def test_a_bad_cluster_address_is_refused_naming_it(address):
    with pytest.raises(ConfigError, match="cluster address"):
        check_address(address)


@pytest.mark.parametrize("address", ["auto", "10.0.0.5:6379", "head.local:6379", "ray://10.0.0.5:10001",
                                     "[fd00::5]:6379"])
def test_good_cluster_addresses(address):
    assert check_address(address) == address


def test_handles_name_their_node():
    assert node_of_handle(local_handle(42, "studio-pc")) == "studio-pc"
    assert node_of_handle(ray_handle("gpu-box/1a2b3c4d", "f00d")) == "gpu-box/1a2b3c4d"
    assert node_of_handle(ray_handle("fd00::5/1a2b", "f00d")) == "fd00::5/1a2b"
    assert node_of_handle(None) is None and node_of_handle("inline:1") is None


def test_worker_runs_jobs_here_and_jobs_shows_the_node(tmp_path, capsys):
    ws = make_workspace(tmp_path / "ws")
    job = JobQueue(ws).submit("cap", [Step(FIRST), Step(LAST)])
    assert main(["--workspace", str(ws.root), "worker"]) == 0
    host = socket.gethostname()
    assert f"{job.id} done on {host}" in capsys.readouterr().out
    ended = JobQueue(ws).get(job.id)
    assert [s.node for s in ended.steps] == [host, host]
    assert main(["--workspace", str(ws.root), "jobs", "show", str(job.id)]) == 0
    assert f"[on {host}]" in capsys.readouterr().out
    assert main(["--workspace", str(ws.root), "jobs"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert "NODE" in header and row.split()[0] == str(job.id)


def test_worker_takes_the_address_only_from_the_flag_or_the_settings(tmp_path, capsys, monkeypatch, no_ray):
    ws = make_workspace(tmp_path / "ws")
    JobQueue(ws).submit("cap", [Step(FIRST)])
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")  # never read: a LAN peer cannot redirect us
    assert main(["--workspace", str(ws.root), "worker"]) == 0  # no settings, no flag: runs here
    JobQueue(ws).submit("cap", [Step(FIRST, {"tag": "2"})])
    assert main(["--workspace", str(ws.root), "worker", "--ray", "not an address"]) == EXIT_BAD_INPUT
    assert "cluster address" in capsys.readouterr().err
    save_settings(ws.settings_path, Settings(cluster_address="10.0.0.5:6379"))
    assert main(["--workspace", str(ws.root), "worker"]) == EXIT_MISSING_DEPENDENCY
    assert "pip install scanbridge[cluster]" in capsys.readouterr().err
    assert main(["--workspace", str(ws.root), "worker", "--local"]) == 0  # --local wins over settings
    assert [j.state for j in JobQueue(ws).list()] == ["done", "done"]


def test_an_older_queue_gains_the_node_column(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    JobQueue(ws).submit("cap", [Step(FIRST)])
    db = sqlite3.connect(ws.jobs_db)
    db.execute("ALTER TABLE steps DROP COLUMN node")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    (job,) = JobQueue(ws).list()
    assert job.steps[0].node is None
    columns = {row[1] for row in sqlite3.connect(ws.jobs_db).execute("PRAGMA table_info(steps)")}
    assert "node" in columns
