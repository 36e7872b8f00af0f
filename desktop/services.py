"""The one facade the widgets talk to: workspace, job queue, job worker, capture server, devices,
settings and results. Qt-free; the widgets never touch SQLite, HTTP or the pipeline directly.

Calls here may block (disk, SQLite, ingest): panels run them through desktop.tasks off the GUI
thread, except the cheap ones named as such.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.capture import CaptureFolder
from core.errors import ConfigError, InputError, JobError, NotFoundError, ScanBridgeError
from core.fsio import atomic_write_json
from core.jobs import Job, JobEvent, JobQueue, Step
from core.model_size import ModelSize, latest_model_size, latest_plan
from core.progress import Progress
from core.runner import Runner
from core.settings import Settings, load_settings, save_settings
from core.submit import default_method_job, method_job, method_names
from core.workspace import Workspace
from desktop import capture_info
from desktop.capture_info import CaptureSummary, ResultFile

if TYPE_CHECKING:
    from recon.methods import CaptureFacts, Method

METHODS = tuple(method_names())  # registered methods (recon.methods), auto first
DETAILS = ("preview", "reduced", "medium", "full")
DEVICE_NAMES = "device_names.json"  # desktop-side display names (the server has no rename yet)


@dataclass(frozen=True)
class PairingInfo:
    code: str
    url: str
    fingerprint: str
    expires: float  # unix time


@dataclass(frozen=True)
class DeviceRow:
    id: str
    name: str  # the display name (renamed here) or the name the phone sent
    phone_name: str
    paired: float
    revoked: float | None


@dataclass(frozen=True)
class MethodChoice:
    name: str
    description: str
    why_not: str | None  # why it does not apply to the capture; None when it does
    # (detail, what it is expected to take on this machine, or why it would be refused there)
    expected: tuple[tuple[str, str], ...] = ()

    def expected_at(self, detail: str) -> str | None:
        return dict(self.expected).get(detail)


def _expected_lines(method: Method, facts: CaptureFacts) -> tuple[tuple[str, str], ...]:
    from recon.methods import expected_time

    lines = []
    for detail in DETAILS:
        try:
            line = expected_time(method, facts, detail)
        except ConfigError as e:
            line = f"refused here: {e.reason}"
        if line is not None:
            lines.append((detail, line))
    return tuple(lines)


def method_choices(capture: CaptureFolder) -> list[MethodChoice]:
    """Every registered method for the Method menu, with the reason for those that do not apply
    and, for those that say it, the expected time on this machine at each detail."""
    from recon.methods import capture_facts, why_not
    from recon.methods import methods as registered

    facts = capture_facts(capture)
    choices = []
    for m in registered():
        why = why_not(m, facts)
        choices.append(MethodChoice(m.name, m.description, why, () if why else _expected_lines(m, facts)))
    return choices


class _ServerHandle:
    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread


class Services:
    """Everything the app does, over one workspace."""

    def __init__(self, workspace: Workspace, *, runner: Runner | None = None) -> None:
        self.workspace = workspace
        self.queue = JobQueue(workspace)
        self.runner = runner
        self._worker_stop: threading.Event | None = None
        self._worker_thread: threading.Thread | None = None
        self._server: _ServerHandle | None = None
        self.server_url: str | None = None
        self._devices: Any = None

    # -- settings ------------------------------------------------------------------------------

    def settings(self) -> Settings:
        return load_settings(self.workspace.settings_path)

    def save_settings(self, settings: Settings) -> None:
        if not 0 <= settings.server_port <= 65535:
            raise ConfigError(f"expected a port from 0 to 65535, got {settings.server_port}", "server_port")
        if settings.gpu not in ("auto", "cpu") and not settings.gpu.isdigit():
            raise ConfigError(f"expected auto, cpu or a GPU index, got {settings.gpu!r}", "gpu")
        for key, value in settings.model_paths.items():
            if not value.strip():
                raise ConfigError("expected a path or a hub id", f"model_paths.{key}")
        save_settings(self.workspace.settings_path, settings)

    # -- library -------------------------------------------------------------------------------

    def captures(self) -> list[CaptureSummary]:
        """Every capture, newest first (a capture whose manifest cannot be read is left out)."""
        out = []
        for capture in self.workspace.captures():
            try:
                out.append(capture_info.summarize(capture))
            except ScanBridgeError:
                continue
        return sorted(out, key=lambda s: s.created, reverse=True)

    def capture(self, capture_id: str) -> CaptureFolder:
        return self.workspace.capture(capture_id)

    def import_source(self, source: Path | str, progress: Progress | None = None,
                      name: str | None = None) -> str:
        """Ingest a folder, video, zip or export into a new capture; returns its id."""
        from recon.ingest.api import ingest

        return ingest(Path(source), self.workspace, name=name, progress=progress).id

    def rename_capture(self, capture_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            raise InputError("expected a non-empty name", "name")
        capture = self.workspace.capture(capture_id)
        capture.save(dataclasses.replace(capture.load(), name=name))

    def delete_capture(self, capture_id: str) -> None:
        """Remove a capture that no job is running on (renamed away first, so it vanishes at once)."""
        capture = self.workspace.capture(capture_id)
        busy = [j.id for j in self.queue.list(capture_id=capture_id) if j.state in ("running", "queued")]
        if busy:
            raise JobError(f"jobs {busy} are queued or running on it; cancel them first", capture_id)
        trash = capture.root.with_name(f".deleting-{capture_id}")
        capture.root.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    # -- processing and jobs -------------------------------------------------------------------

    def process(self, capture_id: str, method: str | None = None, detail: str | None = None,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Job:
        """Queue the capture's processing job: the same one the CLI and the server queue (the
        method expands in the worker; the job publishes to exports/). No method or detail: the
        settings' defaults. ``overrides``: options per stage, e.g. ``{"mesh": {"real_size_m": 0.2}}``."""
        capture = self.workspace.capture(capture_id)
        steps = default_method_job(capture, self.settings(), method, detail, overrides)
        return self.queue.submit(capture_id, steps)

    def create(self, prompt: str = "", photo: Path | None = None, options: Mapping[str, Any] | None = None,
               detail: str = "medium") -> tuple[str, Job]:
        """A new capture with a model made from ``prompt`` or ``photo`` (the ``create`` method job)."""
        from core.generated import create_overrides, new_generated_capture

        capture = new_generated_capture(self.workspace, prompt or (photo.stem if photo else ""), photo)
        steps = method_job(capture, "create", detail, create_overrides(prompt, options))
        return capture.id, self.queue.submit(capture.id, steps)

    def make_video(self, capture_id: str, options: Mapping[str, Any] | None = None) -> Job:
        """Queue a clip of the capture's model (exports/clip.mp4, which the share page offers)."""
        from core.generated import video_job

        return self.queue.submit(self.workspace.capture(capture_id).id, video_job(options))

    def model_size(self, capture_id: str) -> ModelSize | None:
        """What the capture's latest model says of its size (None before a job exported one)."""
        return latest_model_size(self.queue, capture_id)

    def last_plan(self, capture_id: str) -> tuple[str, str] | None:
        """The method and detail the capture was last processed with."""
        return latest_plan(self.queue, capture_id)

    def process_defaults(self) -> tuple[str, str]:
        """The settings' default method and detail (what Process uses when none is chosen). Cheap."""
        try:
            settings = self.settings()
        except ScanBridgeError:
            settings = Settings()
        return settings.default_method, settings.default_detail

    def method_choices(self, capture_id: str) -> list[MethodChoice]:
        return method_choices(self.workspace.capture(capture_id))

    def submit(self, capture_id: str, steps: list[Step]) -> Job:
        return self.queue.submit(capture_id, steps)

    def jobs(self, limit: int = 200) -> list[Job]:
        return self.queue.list(limit=limit)

    def job(self, job_id: int) -> Job:
        return self.queue.get(job_id)

    def job_events(self, job_id: int, after_id: int = 0) -> list[JobEvent]:
        return self.queue.events(job_id, after_id)

    def cancel_job(self, job_id: int) -> Job:
        return self.queue.cancel(job_id)

    def retry_job(self, job_id: int) -> Job:
        return self.queue.retry(job_id)

    def resume_job(self, job_id: int) -> Job:
        return self.queue.resume(job_id)

    def delete_job(self, job_id: int) -> None:
        self.queue.delete(job_id)

    def start_worker(self) -> None:
        """Run queued jobs in a background thread (their stages in child processes)."""
        if self._worker_thread is not None:
            return
        from core.worker import Worker

        stop = threading.Event()
        worker = Worker(JobQueue(self.workspace), self.runner, poll_s=0.3, heartbeat_s=0.5)

        def run() -> None:
            worker.run_forever(stop)

        self._worker_stop = stop
        self._worker_thread = threading.Thread(target=run, name="desktop-job-worker", daemon=True)
        self._worker_thread.start()

    def stop_worker(self, timeout_s: float = 20.0) -> None:
        """Stop the worker; a job it was running goes back to the queue (resumed next start)."""
        if self._worker_thread is None or self._worker_stop is None:
            return
        self._worker_stop.set()
        self._worker_thread.join(timeout_s)
        self._worker_thread = self._worker_stop = None

    @property
    def worker_running(self) -> bool:
        return self._worker_thread is not None and self._worker_thread.is_alive()

    # -- capture server ------------------------------------------------------------------------

    def start_server(self, on_ready: Callable[[str], None], on_error: Callable[[str], None], *,
                     host: str = "0.0.0.0", port: int | None = None, mdns: bool = True,
                     mdns_interfaces: list[str] | None = None,
                     on_phone: Callable[[Any], None] | None = None) -> None:
        """Start the capture server on its own thread; ``on_ready(url)`` or ``on_error(message)``
        is called from that thread."""
        if self._server is not None:
            return
        from capture_server.server import CaptureServer

        try:
            server = CaptureServer(self.workspace, host=host, port=port, mdns=mdns,
                                   mdns_interfaces=mdns_interfaces, run_worker=False)
        except ScanBridgeError as e:
            on_error(str(e))
            return
        if on_phone is not None:
            server.phones.add_listener(on_phone)

        def ready(url: str) -> None:
            self.server_url = url
            on_ready(url)

        def run() -> None:
            try:
                server.run(ready)
            except ScanBridgeError as e:
                on_error(str(e))
            except Exception as e:  # the server thread must never die silently
                on_error(f"the capture server stopped: {type(e).__name__}: {e}")
            finally:
                self.server_url = None

        thread = threading.Thread(target=run, name="desktop-capture-server", daemon=True)
        self._server = _ServerHandle(server, thread)
        thread.start()

    def stop_server(self, timeout_s: float = 15.0) -> None:
        if self._server is None:
            return
        self._server.server.stop()
        self._server.thread.join(timeout_s)
        self._server = None
        self.server_url = None

    def live_streams(self) -> frozenset[str]:
        """Ids of the captures a phone is streaming live frames to right now. Cheap."""
        if self._server is None:
            return frozenset()
        return frozenset(self._server.server.state.live_streams)

    def phones(self) -> list[Any]:
        """Phones seen on the LAN over mDNS (empty while the server is off). Cheap."""
        return self._server.server.phones.phones() if self._server is not None else []

    # -- devices and pairing -------------------------------------------------------------------

    def _device_store(self) -> Any:
        if self._devices is None:
            from capture_server.auth import DeviceStore
            from capture_server.identity import server_dir

            self._devices = DeviceStore(server_dir(self.workspace))
        return self._devices

    def _names_path(self) -> Path:
        return self.workspace.root / "desktop" / DEVICE_NAMES

    def _display_names(self) -> dict[str, str]:
        try:
            data = json.loads(self._names_path().read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def devices(self) -> list[DeviceRow]:
        names = self._display_names()
        return [DeviceRow(d.id, names.get(d.id, d.name), d.name, d.paired, d.revoked)
                for d in self._device_store().devices()]

    def rename_device(self, device_id: str, name: str) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise InputError("expected a name of 1 to 100 characters", "name")
        if device_id not in {d.id for d in self._device_store().devices()}:
            raise NotFoundError("no paired device with this id", device_id)
        names = self._display_names()
        names[device_id] = name
        path = self._names_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, names)

    def revoke_device(self, device_id: str) -> None:
        self._device_store().revoke(device_id)

    def new_pairing(self) -> PairingInfo:
        """A one-time code (valid 5 minutes) and the URL the phone opens or scans."""
        from capture_server.identity import load_or_create_identity
        from capture_server.server import pairing_url, read_endpoint

        identity = load_or_create_identity(self.workspace)
        code, expires = self._device_store().new_code()
        endpoint = {"url": self.server_url} if self.server_url else read_endpoint(self.workspace)
        url = pairing_url(endpoint, self.settings(), identity.fingerprint, code)
        return PairingInfo(code, url, identity.fingerprint, expires)

    # -- results -------------------------------------------------------------------------------

    def result_files(self, capture_id: str) -> list[ResultFile]:
        return capture_info.result_files(self.workspace.capture(capture_id))

    def share_link(self, capture_id: str) -> str:
        """A new read-only, expiring link that opens the capture's exports/model.usdz in AR Quick
        Look (the server's share page); NotFoundError when nothing is exported yet."""
        from capture_server.share import ShareStore, share_json

        if not self.server_url:
            raise ConfigError("the capture server is not running; start it in Settings", "server")
        return share_json(ShareStore(self.workspace).create(capture_id), self.server_url)["url"]

    def export(self, capture_id: str, source: Path, fmt: str, detail: str, dest: Path | None = None, *,
               texture_format: str = "png", up: str = "y") -> Path:
        """Write a result as .usdz/.glb/.obj/.ply at a detail preset (default: into exports/), its
        texture as png or jpeg, PLY/OBJ with ``up`` (y or z) as the up axis."""
        from desktop.export_bridge import export_result

        capture = self.workspace.capture(capture_id)
        dest = dest or capture.exports_dir / f"model.{fmt}"
        return export_result(Path(source), Path(dest), detail, name=capture.load().name,
                             texture_format=texture_format, up=up)

    # -- shutdown ------------------------------------------------------------------------------

    def close(self) -> None:
        self.stop_server()
        self.stop_worker()
        self.queue.close()


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes (for scripts and shutdown)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
