"""``python -m capture_server serve|pair|devices|send``: the same commands as ``scanbridge``, usable
before their entry points are installed (and by the tests, which start the server as a process)."""

from __future__ import annotations

import argparse
import sys

from capture_server.cli import add_devices_command, add_pair_command, add_serve_command
from capture_server.send import add_send_command
from core.cli import common_parser
from core.errors import ScanBridgeError


def main(argv: list[str] | None = None) -> int:
    common = common_parser()
    parser = argparse.ArgumentParser(prog="python -m capture_server", parents=[common])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_serve_command, add_pair_command, add_devices_command, add_send_command):
        add(sub, common)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ScanBridgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
