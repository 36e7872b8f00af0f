"""The browser tests fail, not skip, where CI is expected to have Chromium; locally they skip
saying what to install."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from browser_kit import CI_FLAG, INSTALL_CHROMIUM, ci_expects_browsers, require
from server_test_kit import REPO


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, False), ({"CI": "true"}, True), ({"CI": "1"}, True), ({"CI": "false"}, False),
    ({CI_FLAG: "1"}, True), ({CI_FLAG: "0"}, False),
])
def test_which_environments_expect_browsers(environ, expected):
    assert ci_expects_browsers(environ) is expected


def test_missing_chromium_skips_locally_with_the_install_command(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(CI_FLAG, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require(False, "chromium", INSTALL_CHROMIUM)
    require(True, "chromium", INSTALL_CHROMIUM)  # present: nothing happens


def test_missing_chromium_fails_under_ci(monkeypatch):
    monkeypatch.setenv(CI_FLAG, "1")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        require(False, "chromium", INSTALL_CHROMIUM)


def test_the_real_browser_test_fails_under_ci_when_chromium_is_not_on_the_path(tmp_path):
    """pytest itself, run on the browser test with a PATH that has no chromium and CI=true."""
    env = {k: v for k, v in os.environ.items() if k != CI_FLAG}
    env.update(CI="true", PATH=str(tmp_path), PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs",
         "tests/capture_server/test_webpage.py::test_an_upload_cut_by_a_reload_resumes_where_it_stopped"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert ("1 failed" in out or "1 error" in out) and "skipped" not in out  # a fixture fails as an error
    assert "chromium is missing" in out and "apt-get install chromium" in out
