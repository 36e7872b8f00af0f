"""Reading what a client sends without trusting its size or shape.

Every JSON body, live-frame header and number in a header or query goes through here: bodies are
bounded per route before anything is buffered (``BodyLimit``), JSON has a bounded nesting depth,
bounded integers and finite floats only (no NaN or Infinity), counts are ASCII digits that fit a
signed 64-bit integer. Each refusal is one RequestError (or TooLarge) naming the field at fault.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capture_server.errors import RequestError, TooLarge

MAX_JSON_BODY = 64 * 1024  # bytes of a JSON request body
MAX_JSON_DEPTH = 32  # nested arrays and objects
MAX_INT_DIGITS = 19  # |n| < 2**63
MAX_FLOAT_CHARS = 40
MAX_COUNT = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def parse_count(text: str | None, where: str, default: int | None = None, maximum: int = MAX_COUNT) -> int:
    """A non-negative integer written in ASCII digits, at most ``maximum`` (``²`` or 5000 digits: 400)."""
    if text is None:
        if default is None:
            raise RequestError("is required", where)
        return default
    if not _ASCII_DIGITS.fullmatch(text):
        raise RequestError(f"expected a non-negative integer of at most 19 digits, got {text[:40]!r}", where)
    value = int(text)
    if value > maximum:
        raise RequestError(f"must be at most {maximum}, got {value}", where)
    return value


def _nesting_depth(text: str, where: str) -> None:
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise RequestError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels", where)
        elif token in ("]", "}"):
            depth -= 1


def parse_json(raw: bytes | str, where: str = "body") -> Any:
    """Decode UTF-8 JSON with bounded depth and numbers; NaN and Infinity are refused."""

    def bounded_int(text: str) -> int:
        if len(text.lstrip("-")) > MAX_INT_DIGITS:
            raise RequestError(f"integer {text[:20]}... has more than {MAX_INT_DIGITS} digits", where)
        return int(text)

    def finite_float(text: str) -> float:
        value = float(text) if len(text) <= MAX_FLOAT_CHARS else math.inf
        if not math.isfinite(value):
            raise RequestError(f"number {text[:20]!r} is not a finite double", where)
        return value

    def no_constant(name: str) -> Any:
        raise RequestError(f"{name} is not a JSON number", where)

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise RequestError("JSON must be UTF-8 text", where) from None
    _nesting_depth(text, where)
    try:
        return json.loads(text, parse_int=bounded_int, parse_float=finite_float, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise RequestError(f"not valid JSON ({e})", where) from None


async def json_body(request: Request, limit: int = MAX_JSON_BODY) -> Any:
    """The request's JSON body (``{}`` when empty); BodyLimit has bounded it before it was read."""
    raw = await request.body()
    if len(raw) > limit:
        raise TooLarge(f"the body is over {limit} bytes", "body")
    return parse_json(raw or b"{}")


def body_limit_for(method: str, path: str) -> int | None:
    """The most bytes a request body may have on this route (None: the route bounds it itself)."""
    if method == "PATCH" and path.startswith("/v1/uploads/"):
        return None  # tus: bounded by the upload's Upload-Length, written to disk as it arrives
    return MAX_JSON_BODY


class BodyLimit:
    """Pure ASGI middleware: a declared Content-Length over the route's limit is answered 413
    before any byte of the body is read; an undeclared (chunked) body is cut at the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = parse_count(declared.decode("latin-1"), "Content-Length")
            except RequestError as e:
                await _refuse(e, 400, scope, receive, send)
                return
            if size > limit:
                await _refuse(TooLarge(f"the body may have at most {limit} bytes", "Content-Length"),
                              413, scope, receive, send)
                return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(f"the body may have at most {limit} bytes", "body")
            return message

        await self.app(scope, bounded_receive, send)


async def _refuse(error: RequestError, status: int, scope: Scope, receive: Receive, send: Send) -> None:
    body = {"error": str(error), "type": type(error).__name__, "reason": error.reason, "where": error.where}
    # Connection: close, so the unread body is never read at all.
    await JSONResponse(body, status_code=status, headers={"Connection": "close"})(scope, receive, send)
