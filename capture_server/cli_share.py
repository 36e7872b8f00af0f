"""``scanbridge share CAPTURE_ID``: make an AR Quick Look share link (a local call: no device token
needed) and print it with a QR code for the terminal; ``--list`` and ``--revoke`` manage links."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def add_share_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("share", help="make a share link (and QR code) for a capture's AR model")
    p.add_argument("capture_id", nargs="?", metavar="CAPTURE_ID",
                   help="capture whose exports/model.usdz to share")
    p.add_argument("--hours", type=float, default=None,
                   help="how long the link works (default: 168 = 7 days)")
    p.add_argument("--asset", default="", metavar="NAME",
                   help="link a restyled AR asset instead of the model (restyled-<name>, made by "
                        "scanbridge restyle -o OUT.usdz)")
    p.add_argument("--json", action="store_true", help="print the link as JSON")
    p.add_argument("--qr-png", type=Path, default=None, metavar="FILE", help="also write the QR code as PNG")
    p.add_argument("--list", action="store_true", help="list live links (of CAPTURE_ID, or all)")
    p.add_argument("--revoke", metavar="ID", default=None, help="revoke the link with this id")
    p.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                   help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)")
    p.set_defaults(func=_share)


def server_base_url(workspace: Any) -> str:
    """Where phones reach this workspace's server: the running server's address, else the address
    and port it would have from settings."""
    from capture_server.discovery import local_ipv4_addresses
    from capture_server.server import read_endpoint
    from core.settings import load_settings

    endpoint = read_endpoint(workspace)
    if endpoint:
        return str(endpoint["url"])
    settings = load_settings(workspace.settings_path)
    return f"{'https' if settings.https else 'http'}://{local_ipv4_addresses()[0]}:{settings.server_port}"


def _share(args: argparse.Namespace) -> int:
    from capture_server.share import DEFAULT_HOURS, ShareStore, qr_png, qr_text, share_json
    from core.errors import InputError
    from core.fsio import atomic_write_bytes
    from core.workspace import Workspace

    workspace = Workspace(getattr(args, "workspace", None))
    store = ShareStore(workspace)
    if args.revoke:
        share = store.revoke(args.revoke)
        print(json.dumps(share.to_json()) if args.json else f"revoked share link {share.id}")
        return 0
    if args.list:
        shares = store.shares(args.capture_id)
        if args.json:
            print(json.dumps([s.to_json() for s in shares]))
        for s in [] if args.json else shares:
            until = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.expires))
            print(f"{s.id}  {s.capture_id}  until {until}")
        if not shares and not args.json:
            print("no live share links")
        return 0
    if not args.capture_id:
        raise InputError("give the capture to share (or --list / --revoke)", "CAPTURE_ID")
    new = store.create(args.capture_id, DEFAULT_HOURS if args.hours is None else args.hours, args.asset)
    out = share_json(new, server_base_url(workspace))
    if args.qr_png is not None:
        atomic_write_bytes(args.qr_png, qr_png(out["url"]))
        out["qr_png_file"] = str(args.qr_png)
    if args.json:
        print(json.dumps(out))
        return 0
    print(qr_text(out["url"]), end="")
    print(f"share link  {out['url']}")
    print(f"expires     {time.strftime('%Y-%m-%d %H:%M', time.localtime(out['expires']))} (id {out['id']})")
    print("open it on an iPhone or iPad to view the model in AR Quick Look")
    return 0
