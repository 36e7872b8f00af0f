"""The scanbridge command's conventions: --version, exit codes by kind of failure, log-friendly progress."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from core import console
from core.cli import exit_code, main
from core.errors import (
    Cancelled,
    ConfigError,
    DependencyError,
    IngestError,
    JobError,
    NotFoundError,
    ReconstructionError,
    ScanBridgeError,
    UnsafeSourceError,
)
from core.progress import ProgressEvent


def test_version_prints_the_installed_version_and_exits_0() -> None:
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", "core.cli", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"scanbridge {version('scanbridge')}"


@pytest.mark.parametrize(("error", "code"), [
    (IngestError("x"), 2), (UnsafeSourceError("x"), 2), (ConfigError("x"), 2), (NotFoundError("x"), 2),
    (DependencyError("x"), 3), (ReconstructionError("x"), 4), (JobError("x"), 2), (Cancelled("x"), 130),
    (ScanBridgeError("x"), 5),
])
def test_each_kind_of_failure_has_its_own_exit_code(error: ScanBridgeError, code: int) -> None:
    assert exit_code(error) == code


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for part in ("2 bad input", "3 something this machine lacks", "4 the work failed", "130 cancelled"):
        assert part in text


def test_a_missing_source_exits_with_the_bad_input_code(tmp_path: Path) -> None:
    assert main(["--workspace", str(tmp_path / "ws"), "import", str(tmp_path / "nothing-here")]) == 2


def _events(stage: str, steps: int) -> list[ProgressEvent]:
    return [ProgressEvent("progress", stage, fraction=i / steps, eta_s=steps - i, message=f"step {i}")
            for i in range(steps + 1)]


def test_progress_to_a_log_is_plain_lines_at_each_tenth(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", log)
    with console.progress_bar() as show:
        for event in _events("poses", 200):
            show(event)
        show(ProgressEvent("log", "poses", message="frame 7 is blurry", level="warning"))
        show(ProgressEvent("log", "poses", message="chatter", level="info"))
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 12  # 0%, 10%, ..., 100% and the warning; info lines stay out
    assert lines[0].startswith("[poses]") and "0%" in lines[0] and "100%" in lines[10]
    assert lines[-1] == "warning: [poses] frame 7 is blurry"


def test_quiet_progress_keeps_only_warnings_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with console.progress_bar(quiet=True) as show:
        for event in _events("mesh", 20):
            show(event)
        show(ProgressEvent("log", "mesh", message="texture is plain grey", level="warning"))
    assert log.getvalue().splitlines() == ["warning: [mesh] texture is plain grey"]
