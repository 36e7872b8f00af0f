"""Install OpenUSD's ARKit compliance checker for the tests (run once by `make setup`).

usd-core 26.x no longer ships pxr/UsdUtils/complianceChecker.py, but the 25.11 wheel's copy runs
against the 26.x libraries. This downloads that wheel from PyPI with pip (set-up time only; nothing
downloads at test time), extracts the one file and installs it where recon.export.check looks:
``<venv>/share/scanbridge/complianceChecker.py``. Quick and silent when it is already there.

    .venv/bin/python tools/fetch_compliance_checker.py [--force] [--dest PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

USD_CORE_VERSION = "25.11"
MEMBER = "pxr/UsdUtils/complianceChecker.py"
# sha256 of MEMBER in every usd-core 25.11 wheel (the file is pure Python).
EXPECTED_SHA256 = "357442bb4038f61829edee5cf82bbb6c1e27faf345c4589f32253317639158d2"


def default_dest() -> Path:
    return Path(sys.prefix) / "share" / "scanbridge" / "complianceChecker.py"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_installed(dest: Path) -> bool:
    return dest.is_file() and _sha256(dest.read_bytes()) == EXPECTED_SHA256


def download_checker_source() -> bytes:
    """complianceChecker.py from the usd-core 25.11 wheel for this interpreter and platform."""
    with tempfile.TemporaryDirectory(prefix="usd-core-wheel-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"usd-core=={USD_CORE_VERSION}", "--no-deps",
             "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", tmp],
            check=True,
        )
        wheels = sorted(Path(tmp).glob("usd_core-*.whl"))
        if not wheels:
            raise SystemExit(f"pip downloaded no usd-core {USD_CORE_VERSION} wheel")
        with zipfile.ZipFile(wheels[0]) as wheel:
            return wheel.read(MEMBER)


def install(dest: Path, force: bool = False) -> Path:
    """Put the checker at ``dest`` (atomically) unless the right file is already there."""
    if not force and is_installed(dest):
        return dest
    data = download_checker_source()
    if _sha256(data) != EXPECTED_SHA256:
        raise SystemExit(
            f"{MEMBER} from usd-core {USD_CORE_VERSION} has an unexpected sha256 {_sha256(data)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=default_dest(), help="where to install the file")
    parser.add_argument("--force", action="store_true", help="download again even if installed")
    args = parser.parse_args(argv)
    print(f"compliance checker: {install(args.dest, args.force)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
