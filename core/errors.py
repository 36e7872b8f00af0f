"""The one error tree. Every error a user can cause or see derives from ScanBridgeError.

An error that concerns one file or one manifest field names it in ``where``, and its message
starts with that name, so a CLI, the server and the GUI can all show the same one line.
"""

from __future__ import annotations

from pathlib import Path


class ScanBridgeError(Exception):
    """Base of every ScanBridge error."""

    def __init__(self, message: str, where: str | Path | None = None) -> None:
        self.where = str(where) if where is not None else None
        self.reason = message
        super().__init__(f"{self.where}: {message}" if self.where else message)


class InputError(ScanBridgeError):
    """Bad input from the user or a device: a file, folder, archive or field we cannot use."""


class ManifestError(InputError):
    """capture.json is missing, malformed, or a field is invalid; ``where`` names the field."""


class SchemaVersionError(ManifestError):
    """capture.json was written by a newer ScanBridge than this one."""


class IngestError(InputError):
    """A source (folder, archive, video, export) cannot be turned into a capture."""


class UnsafeArchiveError(IngestError):
    """An archive tries to escape its folder or expands beyond the allowed size."""


class UnsafeSourceError(IngestError):
    """A source names a file outside its own folder, or something that is not a regular file."""


class NotFoundError(ScanBridgeError):
    """A capture, job, stage or file that was asked for does not exist."""


class StageError(ScanBridgeError):
    """A pipeline stage failed on valid input (for example, too few frames registered)."""


class ReconstructionError(StageError):
    """Reconstruction produced nothing usable."""


class Cancelled(ScanBridgeError):
    """Work was cancelled by the user; not a failure."""


class JobError(ScanBridgeError):
    """The job queue cannot do what was asked (unknown job, wrong state)."""


class ConfigError(ScanBridgeError):
    """A stage config or a setting has an unknown key or a bad value; ``where`` names it."""


class DependencyError(ScanBridgeError):
    """Something this machine lacks: a library, a GPU, model weights, a system tool."""
