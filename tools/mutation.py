"""Mutation testing with mutmut over a scoped set of modules; prints the score per module and
every surviving mutant.

mutmut reads its settings from pyproject.toml in the folder it runs in, so this script lays out
build/mutation/ (links to the packages and tests, and a pyproject.toml that is the repo's plus a
[tool.mutmut] section for the chosen scope) and runs ``mutmut run`` there. Each mutant runs only
the tests that reached the mutated function while mutmut measured the suite once.

    python tools/mutation.py                                  # the default scope (make mutation)
    python tools/mutation.py --only core/fsio.py --tests tests/core   # one module
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "mutation"
LINKED = ("core", "capture_server", "recon", "generation", "resources", "tests")
# Gates and write paths live here: the job queue, the workspace, uploads, auth, the stages.
DEFAULT_ONLY = ("core/*", "capture_server/*", "recon/*/stage.py", "recon/export/*", "recon/poses/*")
# The tests that exercise them, less those that need a browser, a display or minutes of SfM.
DEFAULT_TESTS = ("tests/core", "tests/capture_server", "tests/recon/test_export_check.py",
                 "tests/recon/test_export_bad_input.py", "tests/recon/test_export_formats.py",
                 "tests/recon/test_export_usdz.py", "tests/recon/test_export_stage_gate.py",
                 "tests/recon/test_poses_units.py", "tests/recon/test_poses_reasons.py",
                 "tests/recon/test_poses_device.py", "tests/recon/test_ingest_stage.py",
                 "tests/recon/test_fusion_stage.py", "tests/recon/test_mesh_stage.py")
DESELECT = ("tests/capture_server/test_webpage.py", "tests/capture_server/test_browser_requirement.py")
KILLED = ("killed", "timeout", "segfault")
RESULT_LINE = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>.+?)\s*$")


def _toml_list(items: list[str] | tuple[str, ...]) -> str:
    return json.dumps(list(items))


def lay_out(only: list[str], tests: list[str], fresh: bool) -> None:
    """build/mutation/ with the packages linked and a pyproject.toml carrying [tool.mutmut]."""
    if fresh and WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = WORK / name
        if not link.is_symlink():
            link.symlink_to(REPO / name, target_is_directory=True)
    ignore = [f"--ignore={p}" for p in DESELECT]
    config = REPO.joinpath("pyproject.toml").read_text(encoding="utf-8")
    config += (
        "\n[tool.mutmut]\n"
        f"source_paths = {_toml_list([n for n in LINKED if n != 'tests'])}\n"
        f"only_mutate = {_toml_list(only)}\n"
        f"pytest_add_cli_args = {_toml_list(['-p', 'no:cacheprovider', '-q', *ignore])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
    )
    (WORK / "pyproject.toml").write_text(config, encoding="utf-8")


def run_mutmut(max_children: int) -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)  # mutmut puts its mutated copy first; nothing else may shadow it
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    return subprocess.call(cmd, cwd=WORK, env=env)


def read_results() -> dict[str, str]:
    """{mutant name: status} for every mutant mutmut made."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=WORK,
                         capture_output=True, text=True, check=True).stdout
    return {m["name"]: m["status"] for m in map(RESULT_LINE.match, out.splitlines()) if m}


def module_of(mutant: str) -> str:
    """'core.workspace.x_clean_stale_staging__mutmut_3' -> 'core.workspace'."""
    parts = mutant.split("__mutmut_")[0].split(".")
    while parts and (parts[-1].startswith(("x_", "xǁ")) or "ǁ" in parts[-1]):
        parts.pop()
    return ".".join(parts)


def report(results: dict[str, str]) -> float:
    """Print the score per module and the surviving mutants; return the overall score in %."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in results.items():
        by_module[module_of(name)][status] += 1
    print(f"\n{'module':40s} {'mutants':>8s} {'killed':>7s} {'survived':>9s} {'no tests':>9s} {'score':>7s}")
    total: Counter[str] = Counter()
    for module in sorted(by_module):
        counts = by_module[module]
        total.update(counts)
        print(_row(module, counts))
    print(_row("all", total))
    survivors = sorted(n for n, s in results.items() if s not in KILLED)
    if survivors:
        print(f"\n{len(survivors)} mutants not killed (see each with: cd {WORK.relative_to(REPO)} && "
              "mutmut show NAME):")
        for name in survivors:
            print(f"  {name}: {results[name]}")
    return _score(total)


def _score(counts: Counter[str]) -> float:
    made = sum(counts.values()) - counts["skipped"]
    return 100.0 * sum(counts[s] for s in KILLED) / made if made else 100.0


def _row(module: str, counts: Counter[str]) -> str:
    killed = sum(counts[s] for s in KILLED)
    return (f"{module:40s} {sum(counts.values()):8d} {killed:7d} {counts['survived']:9d} "
            f"{counts['no tests']:9d} {_score(counts):6.1f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=list(DEFAULT_ONLY), metavar="GLOB",
                        help="files to mutate (globs relative to the repo root)")
    parser.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS), metavar="PATH",
                        help="the tests mutmut may run")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--resume", action="store_true",
                        help="keep earlier results (mutmut re-tests what changed)")
    parser.add_argument("--min-score", type=float, default=0.0, help="exit 1 when the overall score is lower")
    args = parser.parse_args(argv)
    lay_out(args.only, args.tests, fresh=not args.resume)
    code = run_mutmut(args.max_children)
    results = read_results()
    if not results:
        print("mutmut made no mutants (or did not run); see its output above", file=sys.stderr)
        return code or 1
    score = report(results)
    if score < args.min_score:
        print(f"\nmutation score {score:.1f}% is below {args.min_score:.0f}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
