"""``scanbridge serve``, ``scanbridge pair`` and ``scanbridge devices``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def _workspace(args: argparse.Namespace) -> Any:
    from core.workspace import Workspace

    return Workspace(getattr(args, "workspace", None))


def workspace_option(parser: argparse.ArgumentParser) -> None:
    """``--workspace`` after the command too, without overwriting one given before it."""
    parser.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="workspace folder (default: $SCANBRIDGE_WORKSPACE or ~/ScanBridge)")


def add_serve_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("serve", help="run the capture server (and job worker)")
    p.add_argument("--port", type=int, default=None,
                   help="TCP port (default: server_port in settings; 0 = any)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    p.add_argument("--name", default=None, help="name phones see (default: this computer's name)")
    p.add_argument("--http", action="store_true",
                   help="plain HTTP although settings say HTTPS (needs allow_plain_http)")
    p.add_argument("--no-mdns", action="store_true", help="do not advertise over mDNS")
    p.add_argument("--mdns-interface", action="append", default=None, metavar="ADDR",
                   help="advertise and browse only on this interface address (repeatable)")
    p.add_argument("--no-worker", action="store_true", help="do not run queued jobs in this process")
    p.add_argument("--trust-proxy", metavar="ADDRS", default=None,
                   help="trust X-Forwarded-For from these comma-separated proxy addresses (default: none)")
    workspace_option(p)
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from capture_server.server import CaptureServer

    server = CaptureServer(
        _workspace(args), host=args.host, port=args.port, name=args.name, plain_http=args.http,
        mdns=not args.no_mdns, mdns_interfaces=args.mdns_interface, run_worker=not args.no_worker,
        forwarded_allow_ips=args.trust_proxy,
    )
    server.phones.add_listener(lambda e: print(f"phone {e.kind}: {e.phone.name} "
                                               f"{', '.join(e.phone.addresses)}", flush=True))

    def ready(url: str) -> None:
        print(f"ScanBridge server listening on {url}", flush=True)
        print(f"fingerprint {server.identity.fingerprint}", flush=True)
        print(f"workspace {server.workspace.root}; pair a phone with: scanbridge pair", flush=True)

    server.run(ready)
    return 0


def add_pair_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("pair", help="make a one-time pairing code (valid 5 minutes)")
    p.add_argument("--json", action="store_true", help='print {"code", "url", "fingerprint"} as JSON')
    workspace_option(p)
    p.set_defaults(func=_pair)


def _pair(args: argparse.Namespace) -> int:
    from capture_server.auth import DeviceStore
    from capture_server.identity import load_or_create_identity, server_dir
    from capture_server.server import pairing_url, read_endpoint
    from core.settings import load_settings

    workspace = _workspace(args)
    identity = load_or_create_identity(workspace)
    code, expires = DeviceStore(server_dir(workspace)).new_code()
    endpoint = read_endpoint(workspace)
    url = pairing_url(endpoint, load_settings(workspace.settings_path), identity.fingerprint, code)
    if args.json:
        print(json.dumps({"code": code, "url": url, "fingerprint": identity.fingerprint}))
        return 0
    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(url)
    qr.make(fit=True)
    qr.print_ascii(out=sys.stdout, invert=True)
    print(f"pairing code {code} (valid until {time.strftime('%H:%M:%S', time.localtime(expires))})")
    print(f"url          {url}")
    print(f"fingerprint  {identity.fingerprint}")
    if endpoint is None:
        print("note: no server is running on this workspace; start one with: scanbridge serve")
    return 0


def add_devices_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("devices", help="list paired devices, or revoke one")
    p.add_argument("--revoke", metavar="ID", default=None, help="revoke the device with this id")
    p.add_argument("--json", action="store_true", help="print JSON")
    workspace_option(p)
    p.set_defaults(func=_devices)


def _devices(args: argparse.Namespace) -> int:
    from capture_server.auth import DeviceStore
    from capture_server.identity import server_dir

    store = DeviceStore(server_dir(_workspace(args)))
    if args.revoke:
        device = store.revoke(args.revoke)
        print(json.dumps(device.to_json()) if args.json else f"revoked {device.id} ({device.name})")
        return 0
    devices = store.devices()
    if args.json:
        print(json.dumps([d.to_json() for d in devices]))
        return 0
    if not devices:
        print("no paired devices")
    for d in devices:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.paired))
        print(f"{d.id}  {d.name:30s}  paired {when}{'  REVOKED' if d.revoked else ''}")
    return 0
