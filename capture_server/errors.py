"""Errors the server answers with: core.errors classes that also carry their HTTP status."""

from __future__ import annotations

from core.errors import InputError, NotFoundError, ScanBridgeError


class RequestError(InputError):
    """A request the server cannot accept; ``where`` names the header, field or file."""

    status = 400


class Unauthorized(ScanBridgeError):
    status = 401


class NoSuchUpload(NotFoundError):
    status = 404


class Conflict(RequestError):
    """The request does not fit the current state (wrong offset, capture already finished)."""

    status = 409


class UploadGone(RequestError):
    """The upload expired or was terminated."""

    status = 410


class PreconditionFailed(RequestError):
    """An unsupported tus version."""

    status = 412


class TooLarge(RequestError):
    status = 413


class UnsupportedMediaType(RequestError):
    status = 415


class Locked(RequestError):
    """Another request is writing to the same upload right now."""

    status = 423


class RateLimited(RequestError):
    status = 429

    def __init__(self, message: str, where: str | None = None, retry_after_s: int = 60) -> None:
        super().__init__(message, where)
        self.retry_after_s = retry_after_s


class ChecksumMismatch(RequestError):
    """tus checksum extension: the body does not match Upload-Checksum."""

    status = 460


class StorageFull(ScanBridgeError):
    """The disk ran out of space while writing; nothing was published."""

    status = 507


def http_status(error: BaseException) -> int:
    """The status code for an error raised while handling a request."""
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return status
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, InputError):
        return 400
    if isinstance(error, ScanBridgeError):
        return 409
    return 500
