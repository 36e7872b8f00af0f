"""``scanbridge app``: the desktop app (PySide6 is imported only when the command runs)."""

from __future__ import annotations

import argparse
from typing import Any


def add_app_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    # Not parents=[common]: its default would overwrite a --workspace given before "app".
    p = subparsers.add_parser("app", help="the desktop app: devices, library, jobs, 3D viewer",
                              description="Open the ScanBridge desktop app over a workspace.")
    p.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                   help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)")
    p.add_argument("--host", default="0.0.0.0", metavar="ADDR",
                   help="address the capture server listens on (default: every interface; "
                        "127.0.0.1 keeps it off the network)")
    p.add_argument("--no-mdns", dest="mdns", action="store_false",
                   help="do not advertise the server on the local network (phones then need its address)")
    p.set_defaults(func=_run)


def app_options(args: argparse.Namespace) -> dict[str, Any]:
    """run_app's keyword arguments from the command line."""
    return {"workspace": getattr(args, "workspace", None), "host": args.host, "mdns": args.mdns}


def _run(args: argparse.Namespace) -> int:
    from desktop.app import run_app

    return run_app(**app_options(args))
