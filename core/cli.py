"""The ``scanbridge`` command. Each package adds its sub-commands through the entry-point group
``scanbridge.commands`` (a ``register(subparsers, common)`` function), so core imports none of
them. Handlers import heavy libraries lazily, to keep ``scanbridge --help`` fast.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from core.errors import Cancelled, ScanBridgeError

COMMAND_GROUP = "scanbridge.commands"


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
    )
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
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_name(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Cancelled as e:
        print(f"cancelled: {e}", file=sys.stderr)
        return 130
    except ScanBridgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
