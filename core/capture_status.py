"""A capture's status in capture.json follows its processing job: processing while a worker runs
it, processed or failed when it ends (a cancelled job leaves what the capture had before it). A
capture that is still receiving uploads keeps that status: finishing it is the phone's call.

Written by the worker (core.worker), whichever entry point queued the job. Best effort: a capture
that was deleted or whose manifest cannot be read never fails the job.
"""

from __future__ import annotations

import dataclasses

from core.capture import CaptureFolder
from core.errors import ScanBridgeError
from core.workspace import Workspace

_ENDED = {"done": "processed", "failed": "failed"}


def _set(capture: CaptureFolder, status: str) -> None:
    manifest = capture.load()
    if manifest.status == "receiving":
        return  # the capture server's state until the phone finishes the capture
    if manifest.status != status:
        capture.save(dataclasses.replace(manifest, status=status))


def _status_without_job(capture: CaptureFolder) -> str:
    if (capture.exports_dir / "model.usdz").is_file():
        return "processed"
    return "ingested" if capture.load().frames else "new"


def job_started(workspace: Workspace, capture_id: str) -> None:
    try:
        _set(workspace.capture(capture_id), "processing")
    except (ScanBridgeError, OSError):
        pass


def job_ended(workspace: Workspace, capture_id: str, state: str) -> None:
    """``state``: the job's end state (done, failed, cancelled)."""
    try:
        capture = workspace.capture(capture_id)
        _set(capture, _ENDED.get(state) or _status_without_job(capture))
    except (ScanBridgeError, OSError):
        pass
