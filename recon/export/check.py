"""check_usdz: OpenUSD's ARKit ComplianceChecker (usdchecker --arkit) plus our package layout rules.

usd-core 26.x no longer ships complianceChecker.py; `make setup` runs
tools/fetch_compliance_checker.py, which takes it from the usd-core 25.11 wheel and installs it
at ``<venv>/share/scanbridge/complianceChecker.py``. SCANBRIDGE_COMPLIANCE_CHECKER overrides that.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from core.errors import ConfigError, InputError, NotFoundError
from recon.export.inspect import layout_problems, package_entries

CHECKER_ENV = "SCANBRIDGE_COMPLIANCE_CHECKER"
LAYOUT_RULE = "ScanBridgePackageLayout"


@dataclass(frozen=True)
class CheckReport:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    failed_checks: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True only with no errors, no warnings and no failed checks."""
        return not (self.errors or self.warnings or self.failed_checks)

    def summary(self) -> str:
        lines = [f"error: {m}" for m in self.errors] + [f"warning: {m}" for m in self.warnings]
        lines += [f"failed: {m}" for m in self.failed_checks]
        return "\n".join(lines) or "passed"


def checker_path() -> Path:
    """Where the installed complianceChecker.py is expected."""
    override = os.environ.get(CHECKER_ENV)
    return Path(override) if override else Path(sys.prefix) / "share" / "scanbridge" / "complianceChecker.py"


def load_checker_module() -> ModuleType:
    """Import the installed complianceChecker.py; ConfigError telling how to install it if absent."""
    path = checker_path()
    if not path.is_file():
        raise ConfigError(
            "OpenUSD's complianceChecker.py is not installed; run `make setup` "
            "(or `python tools/fetch_compliance_checker.py`)", path)
    spec = importlib.util.spec_from_file_location("scanbridge_compliance_checker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_usdz(path: Path) -> CheckReport:
    """Run the ARKit compliance checker on ``path`` and our layout rules; return everything found."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("no such file", path)
    if path.suffix.lower() != ".usdz":
        raise InputError("not a .usdz file", path)
    module = load_checker_module()
    checker = module.ComplianceChecker(arkit=True, skipARKitRootLayerCheck=False,
                                       rootPackageOnly=False, skipVariants=False, verbose=False)
    checker.CheckCompliance(str(path))
    failed = list(checker.GetFailedChecks())
    try:
        failed += [f"{p} (fails '{LAYOUT_RULE}')" for p in layout_problems(package_entries(path))]
    except InputError as e:
        failed.append(f"{e.reason} (fails '{LAYOUT_RULE}')")
    return CheckReport(tuple(checker.GetErrors()), tuple(checker.GetWarnings()), tuple(failed))
