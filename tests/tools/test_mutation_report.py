"""tools/mutation.py's report: mutants grouped by module and scored from mutmut's own words."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "mutation.py"


def _tool():
    spec = importlib.util.spec_from_file_location("mutation_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MUTMUT_RESULTS = """\
    core.workspace.x_slugify__mutmut_14: survived
    core.workspace.xǁWorkspaceǁcapture__mutmut_7: killed
    core.workspace.xǁWorkspaceǁcapture__mutmut_8: killed
    core.workspace.xǁWorkspaceǁcapture__mutmut_9: timeout
    capture_server.uploads.xǁPatchWriterǁfinish__mutmut_2: no tests
    capture_server.uploads.xǁPatchWriterǁfinish__mutmut_3: killed
    recon.export.stage.x_run__mutmut_1: skipped
"""


def test_results_are_grouped_by_module_and_scored(capsys):
    tool = _tool()
    results = {m["name"]: m["status"] for m in map(tool.RESULT_LINE.match, MUTMUT_RESULTS.splitlines()) if m}
    assert len(results) == 7
    assert tool.module_of("core.workspace.xǁWorkspaceǁcapture__mutmut_7") == "core.workspace"
    assert tool.module_of("core.workspace.x_slugify__mutmut_14") == "core.workspace"
    assert tool.module_of("recon.export.stage.x_run__mutmut_1") == "recon.export.stage"
    overall = tool.report(results)
    # 7 mutants, 1 skipped: 4 killed (a timeout counts as killed) of 6 = 66.7%
    assert round(overall, 1) == 66.7
    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines() if line.startswith(("core.", "capture_"))]
    rows = {cells[0]: cells for cells in table}
    assert rows["core.workspace"][1:] == ["4", "3", "1", "0", "75.0%"]
    assert rows["capture_server.uploads"][1:] == ["2", "1", "0", "1", "50.0%"]
    assert "core.workspace.x_slugify__mutmut_14: survived" in out
    assert "capture_server.uploads.xǁPatchWriterǁfinish__mutmut_2: no tests" in out
    assert tool._score(Counter()) == 100.0
