"""The ``scanbridge`` command. Each package adds its sub-commands through the entry-point group
``scanbridge.commands`` (a ``register(subparsers, common)`` function), so core imports none of
them. Handlers import heavy libraries lazily, to keep ``scanbridge --help`` fast.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

from core.errors import (
    Cancelled,
    ConfigError,
    DependencyError,
    InputError,
    JobError,
    NotFoundError,
    ScanBridgeError,
    StageError,
)

COMMAND_GROUP = "scanbridge.commands"

# Exit codes, most specific class first; listed in --help.
EXIT_OK = 0
EXIT_BAD_INPUT = 2  # also argparse's usage errors
EXIT_MISSING_DEPENDENCY = 3
EXIT_FAILED = 4
EXIT_OTHER = 5
EXIT_CANCELLED = 130
_EXIT_BY_ERROR: tuple[tuple[type[ScanBridgeError], int], ...] = (
    (Cancelled, EXIT_CANCELLED),
    (DependencyError, EXIT_MISSING_DEPENDENCY),
    (InputError, EXIT_BAD_INPUT),
    (ConfigError, EXIT_BAD_INPUT),
    (NotFoundError, EXIT_BAD_INPUT),
    (JobError, EXIT_BAD_INPUT),  # a job that does not exist or is in the wrong state for the verb
    (StageError, EXIT_FAILED),
)
EXIT_CODES_HELP = (
    "exit codes: 0 done; 2 bad input (a file, an option, a missing capture or job, a job in the wrong "
    "state); 3 something this machine lacks (a library, a GPU, model weights); 4 the work failed (a "
    "stage of a job); 5 any other error; 130 cancelled or interrupted"
)


def exit_code(error: ScanBridgeError) -> int:
    """The process exit code for ``error`` (see EXIT_CODES_HELP)."""
    for cls, code in _EXIT_BY_ERROR:
        if isinstance(error, cls):
            return code
    return EXIT_OTHER


def scanbridge_version() -> str:
    try:
        return version("scanbridge")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a sub-command's copy of the option must not overwrite one given before the command.
    common.add_argument(
        "--workspace", metavar="DIR", default=argparse.SUPPRESS,
        help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)",
    )
    return common


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``only`` just that command's (so one command loads one module)."""
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="scanbridge", parents=[common],
        description="ScanBridge: phone 3D capture to AR-ready models, on your own machine.",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("--version", action="version", version=f"scanbridge {scanbridge_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    eps = sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name)
    chosen = [ep for ep in eps if ep.name == only]
    for ep in chosen or eps:
        ep.load()(sub, common)
    return parser


def _command_name(argv: list[str]) -> str | None:
    """The first word that is not an option (or an option's value)."""
    it = iter(argv)
    for word in it:
        if word == "--workspace":
            next(it, None)
        elif not word.startswith("-"):
            return word
    return None


def workspace_arg(args: argparse.Namespace) -> str | None:
    """The --workspace given before or after the command, or None for the default."""
    return getattr(args, "workspace", None)


def main(argv: list[str] | None = None) -> int:
    from core.console import report_error

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_name(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse printed the usage error (or --help) on stderr
        if e.code not in (0, None) and "--json" in argv:
            report_error(InputError("bad usage (see the message on stderr)"), EXIT_BAD_INPUT, True)
        raise
    as_json = bool(getattr(args, "json", False))
    try:
        return int(args.func(args) or 0)
    except ScanBridgeError as e:
        code = exit_code(e)
        if isinstance(e, Cancelled) and not as_json:
            print(f"cancelled: {e}", file=sys.stderr)
        else:
            report_error(e, code, as_json)
        return code
    except KeyboardInterrupt:
        if as_json:
            report_error(Cancelled("interrupted"), EXIT_CANCELLED, True)
        else:
            print("interrupted", file=sys.stderr)
        return EXIT_CANCELLED


if __name__ == "__main__":
    sys.exit(main())
