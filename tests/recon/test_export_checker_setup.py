"""tools/fetch_compliance_checker.py: installed checker is recognised; a re-run does not download."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from recon.export.check import checker_path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fetch_compliance_checker.py"


@pytest.fixture()
def tool():
    spec = importlib.util.spec_from_file_location("fetch_compliance_checker", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_installed_checker_is_the_25_11_file(tool):
    assert checker_path() == tool.default_dest()
    assert tool.is_installed(checker_path()), "run `make setup` (tools/fetch_compliance_checker.py)"
    assert "class ComplianceChecker" in checker_path().read_text()


def test_rerun_is_quick_and_does_not_download(tool, tmp_path, monkeypatch):
    dest = tmp_path / "share" / "complianceChecker.py"
    dest.parent.mkdir()
    dest.write_bytes(checker_path().read_bytes())

    def no_download():
        raise AssertionError("must not download when the right file is already installed")

    monkeypatch.setattr(tool, "download_checker_source", no_download)
    assert tool.install(dest) == dest


def test_wrong_file_is_replaced(tool, tmp_path, monkeypatch):
    dest = tmp_path / "complianceChecker.py"
    dest.write_text("# something else\n")
    assert not tool.is_installed(dest)
    good = checker_path().read_bytes()
    monkeypatch.setattr(tool, "download_checker_source", lambda: good)  # no network in tests
    tool.install(dest)
    assert tool.is_installed(dest)
    assert list(tmp_path.iterdir()) == [dest]


def test_tampered_download_is_refused(tool, tmp_path, monkeypatch):
    dest = tmp_path / "complianceChecker.py"
    monkeypatch.setattr(tool, "download_checker_source", lambda: b"print('not the checker')\n")
    with pytest.raises(SystemExit, match="sha256"):
        tool.install(dest)
    assert not dest.exists()
