"""``scanbridge send PATH [--code CODE] [--server HOST:PORT]``: the reference client as a command.

Finds the PC over mDNS (unless ``--server``), pairs when given a code (tokens are kept per
server id in the client folder), creates a capture and uploads a folder or a single file
resumably. A journal per source lets a second run continue an interrupted send.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
from pathlib import Path
from typing import Any

from capture_server.client import ServerError, ServerSession, client_state_dir
from capture_server.names import MAX_DEPTH
from capture_server.replay import is_stray_folder, stray_frames, stream_live
from core.errors import ConfigError, InputError
from core.fsio import atomic_write_json

VIDEO_OR_ARCHIVE = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".zip"}


def add_send_command(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("send", help="send a folder or file to a ScanBridge PC")
    p.add_argument("path", type=Path, help="a folder of photos, a Stray Scanner folder, a video or a zip")
    p.add_argument("--code", default=None, help="pairing code from `scanbridge pair` (first time only)")
    p.add_argument("--server", default=None, metavar="HOST:PORT",
                   help="the PC's address (default: find it over mDNS)")
    p.add_argument("--fingerprint", default=None, help="expected certificate fingerprint (hex)")
    p.add_argument("--mode", choices=("guided", "free", "import", "rgbd"), default=None)
    p.add_argument("--name", default=None, help="capture name (default: the folder or file name)")
    p.add_argument("--device-name", default=None, help="name to pair as (default: this computer's)")
    p.add_argument("--no-finish", action="store_true", help="upload only; do not finish the capture")
    p.add_argument("--live", action="store_true",
                   help="replay a Stray Scanner folder as a live RGB-D stream instead of uploading files")
    p.add_argument("--speed", type=float, default=1.0,
                   help="with --live: times the recorded frame rate (0 = as fast as acknowledged)")
    p.add_argument("--mdns-interface", action="append", default=None, metavar="ADDR")
    p.add_argument("--discover-timeout", type=float, default=5.0, metavar="S")
    p.set_defaults(func=_send)


def source_files(path: Path) -> list[tuple[str, Path]]:
    """(name inside raw/, file) for a file or every visible file of a folder."""
    if path.is_file():
        return [(path.name, path)]
    if not path.is_dir():
        raise InputError("no such file or folder", path)
    out = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            if len(rel.parts) > MAX_DEPTH:
                raise InputError(f"nested more than {MAX_DEPTH} folders deep", p)
            out.append((rel.as_posix(), p))
    if not out:
        raise InputError("the folder has no files to send", path)
    return out


def guess_mode(path: Path) -> str:
    if path.is_file():
        return "import" if path.suffix.lower() in VIDEO_OR_ARCHIVE else "free"
    if (path / "odometry.csv").is_file() and (path / "depth").is_dir():
        return "rgbd"
    return "free"


def _server_url(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.server:
        url = args.server if "://" in args.server else f"https://{args.server}"
        return url, args.fingerprint
    from capture_server.discovery import find_servers

    found = find_servers(args.discover_timeout, args.mdns_interface)
    if not found:
        raise ConfigError("no ScanBridge server found over mDNS; give --server HOST:PORT", "--server")
    record = found[0]
    return record.url, args.fingerprint or record.properties.get("fingerprint")


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _send(args: argparse.Namespace) -> int:
    source = args.path.expanduser().resolve()
    if args.live and not is_stray_folder(source):
        raise InputError("--live replays a Stray Scanner folder (odometry.csv and depth/)", source)
    files = [] if args.live else source_files(source)
    url, fingerprint = _server_url(args)
    state = client_state_dir()
    servers_path = state / "servers.json"
    servers = _load(servers_path)
    with ServerSession(url, fingerprint) as session:
        info = session.info()
        server_id = info["server_id"]
        known = servers.get(server_id, {})
        if known.get("fingerprint") and known["fingerprint"] != session.fingerprint:
            raise ConfigError("this server's certificate changed since pairing; pair again", server_id)
        if args.code:
            session.pair(args.code, args.device_name or socket.gethostname() or "scanbridge send")
            servers[server_id] = {"token": session.token, "fingerprint": session.fingerprint, "url": url}
            atomic_write_json(servers_path, servers)
            servers_path.chmod(0o600)
        elif known.get("token"):
            session.token = known["token"]
        else:
            raise ConfigError("not paired with this server; run `scanbridge pair` there and pass --code",
                              "--code")
        if args.live:
            return _send_live(session, source, args)
        key = hashlib.sha256(f"{server_id}:{source}".encode()).hexdigest()[:16]
        journal_path = state / f"journal-{key}.json"
        journal = _load(journal_path)
        capture_id = journal.get("capture_id")
        if capture_id:
            try:
                if session.capture(capture_id)["status"] != "receiving":
                    capture_id = None
            except ServerError:  # gone: start a new capture
                capture_id = None
        if not capture_id:
            mode = args.mode or guess_mode(source)
            created = session.create_capture(mode, args.name or source.stem,
                                             {"app": "scanbridge send", "host": socket.gethostname()})
            capture_id = created["id"]
            journal = {"capture_id": capture_id, "uploads": {}}
            atomic_write_json(journal_path, journal)
        have = {f["name"] for f in session.capture(capture_id)["files"]}
        for i, (name, path) in enumerate(files):
            if name in have:
                continue
            upload_url = journal["uploads"].get(name)
            if upload_url is None:
                upload_url = session.create_upload(capture_id, name, path.stat().st_size)
                journal["uploads"][name] = upload_url
                atomic_write_json(journal_path, journal)
            try:
                session.upload_file(upload_url, path)
            except ServerError as e:
                if e.status not in (404, 410):
                    raise
                upload_url = session.create_upload(capture_id, name, path.stat().st_size)  # expired
                journal["uploads"][name] = upload_url
                atomic_write_json(journal_path, journal)
                session.upload_file(upload_url, path)
            print(f"[{i + 1}/{len(files)}] {name}", file=sys.stderr, flush=True)
        result = session.capture(capture_id) if args.no_finish else session.finish(capture_id)
        journal_path.unlink(missing_ok=True)
    print(json.dumps({"capture_id": capture_id, "status": result["status"], "files": len(files),
                      "job": result.get("job")}))
    return 0


def _send_live(session: ServerSession, source: Path, args: argparse.Namespace) -> int:
    created = session.create_capture("rgbd", args.name or source.stem,
                                     {"app": "scanbridge send --live", "host": socket.gethostname()})
    capture_id = created["id"]
    stored = stream_live(session, capture_id, stray_frames(source), args.speed)
    result = session.capture(capture_id) if args.no_finish else session.finish(capture_id)
    print(json.dumps({"capture_id": capture_id, "status": result["status"], "frames": stored,
                      "job": result.get("job")}))
    return 0
