"""What the browser tests need, and what happens when it is missing.

Locally a missing Chromium or tus-js-client bundle skips those tests with the command that
installs it. Where CI is expected to have them (``CI`` is true, as most CI services set it, or
``SCANBRIDGE_CI=1``, which .ci/run sets), a missing one fails the test instead: a CI run that
silently skipped the only tests of the phone page would look green while testing nothing.
"""

from __future__ import annotations

import os
import shutil

import pytest

CI_FLAG = "SCANBRIDGE_CI"
INSTALL_CHROMIUM = ("install Debian's chromium: `sudo make system-deps` "
                    "(or `sudo apt-get install chromium`)")
INSTALL_TUS = "install the page's JavaScript: `npm ci` (`make setup` and `make test` run it)"


def ci_expects_browsers(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return (environ.get("CI", "").strip().lower() in ("1", "true", "yes")
            or environ.get(CI_FLAG, "").strip() == "1")


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require(found: bool, what: str, install: str) -> None:
    """Return when ``found``; otherwise fail under CI and skip elsewhere, saying what to install."""
    if found:
        return
    message = f"{what} is missing; {install}"
    if ci_expects_browsers():
        pytest.fail(f"{message}. CI must run the browser tests ({CI_FLAG}=1 or CI=true is set)",
                    pytrace=False)
    pytest.skip(message)


# Marks for browser tests; the fixtures they name live in tests/capture_server/conftest.py.
needs_chromium = pytest.mark.usefixtures("chromium_present")
needs_tus = pytest.mark.usefixtures("tus_bundle")
