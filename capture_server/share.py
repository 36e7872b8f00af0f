"""Share links for AR Quick Look: an unguessable, expiring, read-only link to a capture's export.

A link is ``<server>/s/<token>``: a small page whose only content is Apple's AR Quick Look anchor
(``<a rel="ar" href="…/model.usdz"><img src="…/poster.png"></a>``), the USDZ itself
(``model/vnd.usdz+zip``), the poster (``image/png``), a QR code of the link, and, when
``scanbridge video`` has published one, the capture's clip (``video/mp4``, with range requests).
Opening a link needs no device token; making one does (or a local call: ``scanbridge share``).

Links live in ``<workspace>/server/shares.json`` (replaced atomically, under a file lock so the
CLI and a running server can both add links). Only the SHA-256 of each token is stored. An unknown
and an expired token get the same 404. The files are read from the capture folder's ``exports/``
as they are when requested; recon is never imported.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import html
import io
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from capture_server.bounded import json_body
from capture_server.errors import RequestError
from capture_server.identity import server_dir
from core.errors import ManifestError, NotFoundError
from core.fsio import atomic_write_json
from core.jobs import JobQueue
from core.model_size import ModelSize, latest_model_size
from core.workspace import Workspace

SHARES_FILE = "shares.json"
DEFAULT_HOURS = 7 * 24.0
MAX_HOURS = 365 * 24.0
USDZ_TYPE = "model/vnd.usdz+zip"
MODEL_NAME = "model.usdz"
ASSET_NAME = re.compile(r"^restyled-[a-z0-9][a-z0-9-]{0,39}$")  # exports/<asset>.usdz from restyle-asset
POSTER_NAME = "poster.png"
VIDEO_NAME = "clip.mp4"  # `scanbridge video` publishes it to exports/
VIDEO_TYPE = "video/mp4"
_TOKEN_BYTES = 24  # 192 bits, 32 URL-safe characters
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_NO_SUCH_LINK = "no such share link"  # the same words for unknown and expired tokens


@dataclass(frozen=True)
class Share:
    id: str  # first 12 hex characters of the token's hash: names a link in lists without revealing it
    token_sha256: str
    capture_id: str
    created: float
    expires: float  # unix time
    asset: str = ""  # "" the capture's model; else a restyled asset in exports/ (restyled-<name>)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Share:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class NewShare:
    share: Share
    token: str  # shown once, to whoever made the link


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def share_paths(token: str) -> dict[str, str]:
    """Server-relative paths of a link's page and files."""
    page = f"/s/{token}"
    return {"page": page, "usdz": f"{page}/{MODEL_NAME}", "poster": f"{page}/{POSTER_NAME}",
            "qr": f"{page}/qr.png", "video": f"{page}/{VIDEO_NAME}"}


class ShareStore:
    """The share links of one workspace."""

    def __init__(self, workspace: Workspace, clock: Any = time.time) -> None:
        self.workspace = workspace
        self.path = server_dir(workspace) / SHARES_FILE
        self._clock = clock

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path.with_suffix(".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _read(self) -> list[Share]:
        try:
            data = json.loads(self.path.read_text())
            return [Share.from_json(d) for d in data["shares"]]
        except FileNotFoundError:
            return []
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ManifestError(f"unreadable share links ({e})", self.path) from None

    def shares(self, capture_id: str | None = None) -> list[Share]:
        """Links that have not expired, oldest first."""
        now = self._clock()
        return [s for s in self._read() if s.expires > now and capture_id in (None, s.capture_id)]

    def create(self, capture_id: str, hours: float = DEFAULT_HOURS, asset: str = "") -> NewShare:
        """A new link to ``capture_id``'s exported model (or its restyled ``asset``), valid for ``hours``."""
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= MAX_HOURS:
            raise RequestError(f"expected a number of hours above 0 and at most {MAX_HOURS:g}, "
                               f"got {hours!r}", "hours")
        exported_model(self.workspace, capture_id, asset)  # no link to nothing
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        digest = _token_hash(token)
        now = self._clock()
        share = Share(id=digest[:12], token_sha256=digest, capture_id=capture_id, created=now,
                      expires=now + float(hours) * 3600.0, asset=asset)
        with self._locked():
            kept = [s for s in self._read() if s.expires > now]  # expired links are dropped here
            atomic_write_json(self.path, {"version": 1, "shares": [*(s.to_json() for s in kept),
                                                                    share.to_json()]})
        return NewShare(share, token)

    def revoke(self, share_id: str) -> Share:
        with self._locked():
            shares = self._read()
            found = next((s for s in shares if s.id == share_id), None)
            if found is None:
                raise NotFoundError("no such share link", share_id)
            atomic_write_json(self.path, {"version": 1, "shares": [s.to_json() for s in shares
                                                                    if s.id != share_id]})
        return found

    def resolve(self, token: str) -> Share:
        """The live link for ``token``; NotFoundError (without saying why) otherwise."""
        if not 16 <= len(token) <= 64 or not set(token) <= _TOKEN_CHARS:
            raise NotFoundError(_NO_SUCH_LINK)
        digest = _token_hash(token)
        now = self._clock()
        for share in self._read():
            if secrets.compare_digest(share.token_sha256, digest) and share.expires > now:
                return share
        raise NotFoundError(_NO_SUCH_LINK)


def exported_model(workspace: Workspace, capture_id: str, asset: str = "") -> Path:
    """``exports/model.usdz`` of the capture, or ``exports/<asset>.usdz`` for a restyled asset
    (NotFoundError naming it when there is none)."""
    if asset and (not isinstance(asset, str) or not ASSET_NAME.match(asset)):
        raise RequestError("expected a restyled asset's name, restyled-<name>", "asset")
    capture = workspace.capture(capture_id)
    name = f"{asset}.usdz" if asset else MODEL_NAME
    path = capture.exports_dir / name
    if not path.is_file():
        raise NotFoundError(f"the capture has no exported model yet (exports/{name})", capture_id)
    return path


def poster_path(workspace: Workspace, share: Share) -> Path:
    """The poster beside the linked model: exports/poster.png, or exports/<asset>-poster.png."""
    exports = workspace.capture(share.capture_id).exports_dir
    return exports / (f"{share.asset}-poster.png" if share.asset else POSTER_NAME)


def size_note(size: ModelSize | None) -> str:
    """What the page says of the model's size when it is a guess ("" when it is measured)."""
    if size is None or not size.estimated:
        return ""
    side = f" (longest side {size.longest_side_m * 100:.0f} cm)" if size.longest_side_m else ""
    return (f"Size is an estimate{side}: the scan had nothing to measure by, so the model may "
            "look bigger or smaller than the real thing.")


def share_page(token: str, title: str, video: bool = False, size: ModelSize | None = None) -> str:
    """The AR Quick Look page: the ``<img>`` is the anchor's only child, as Apple requires; with
    ``video``, the capture's clip plays below it."""
    paths = share_paths(token)
    name = html.escape(title)
    clip = (f'<video src="{paths["video"]}" controls playsinline muted loop preload="metadata" width="512">'
            f'</video>\n<p><a href="{paths["video"]}" download>Download the video</a></p>\n') if video else ""
    note = size_note(size)
    size_line = f'<p class="size-estimated">{html.escape(note)}</p>\n' if note else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{name} in AR</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; padding: 1rem; text-align: center; }}
img, video {{ max-width: 100%; height: auto; border-radius: 12px; }}
p {{ color: #444; }}
</style>
</head>
<body>
<h1>{name}</h1>
<a rel="ar" href="{paths["usdz"]}"><img src="{paths["poster"]}" alt="{name}: tap to view in AR"
 width="512" height="512"></a>
<p>Tap the picture to place the model in your room (AR Quick Look, iPhone and iPad).</p>
{size_line}<p><a href="{paths["usdz"]}" download>Download the USDZ</a></p>
{clip}</body>
</html>
"""


def qr_png(text: str) -> bytes:
    """A QR code of ``text`` as PNG bytes."""
    import qrcode

    image = qrcode.make(text, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_text(text: str) -> str:
    """A QR code of ``text`` for a terminal (block characters)."""
    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(text)
    qr.make(fit=True)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


def placeholder_poster() -> bytes:
    """A plain grey square for exports that came without a poster (the anchor needs an image)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (512, 512), (226, 228, 232))  # (H, W) = (512, 512)
    draw = ImageDraw.Draw(image)
    draw.polygon([(256, 120), (380, 190), (380, 330), (256, 400), (132, 330), (132, 190)],
                 outline=(90, 96, 110), width=8)
    draw.line([(132, 190), (256, 260), (380, 190)], fill=(90, 96, 110), width=8)
    draw.line([(256, 260), (256, 400)], fill=(90, 96, 110), width=8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def share_json(new: NewShare, base_url: str) -> dict[str, Any]:
    """What the API and ``scanbridge share --json`` answer for a new link."""
    base = base_url.rstrip("/")
    paths = share_paths(new.token)
    return {
        "id": new.share.id, "capture_id": new.share.capture_id, "asset": new.share.asset,
        "url": base + paths["page"],
        "usdz": base + paths["usdz"], "poster": base + paths["poster"], "qr_png": base + paths["qr"],
        "created": new.share.created, "expires": new.share.expires,
        "expires_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(new.share.expires)),
    }


def share_routes(workspace: Workspace, store: ShareStore | None = None) -> list[Route]:
    """The public, read-only link routes (GET and HEAD only) and the token-gated creation route."""
    store = store or ShareStore(workspace)
    jobs = JobQueue(workspace)
    no_store = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer",
                "X-Robots-Tag": "noindex"}

    async def resolve(request: Request) -> Share:
        return await anyio.to_thread.run_sync(store.resolve, request.path_params["token"])

    async def page(request: Request) -> Response:
        share = await resolve(request)
        capture = await anyio.to_thread.run_sync(workspace.capture, share.capture_id)
        title = (await anyio.to_thread.run_sync(capture.load)).name
        video = (capture.exports_dir / VIDEO_NAME).is_file()
        size = await anyio.to_thread.run_sync(latest_model_size, jobs, share.capture_id)
        return HTMLResponse(share_page(request.path_params["token"], title, video, size), headers=no_store)

    async def model(request: Request) -> Response:
        share = await resolve(request)
        path = await anyio.to_thread.run_sync(exported_model, workspace, share.capture_id, share.asset)
        return FileResponse(path, media_type=USDZ_TYPE, headers=no_store)

    async def poster(request: Request) -> Response:
        share = await resolve(request)
        path = poster_path(workspace, share)
        if path.is_file():
            return FileResponse(path, media_type="image/png", headers=no_store)
        png = await anyio.to_thread.run_sync(placeholder_poster)
        return Response(png, media_type="image/png", headers=no_store)

    async def video(request: Request) -> Response:
        share = await resolve(request)
        path = workspace.capture(share.capture_id).exports_dir / VIDEO_NAME
        if not path.is_file():
            raise NotFoundError("the capture has no video yet (scanbridge video)", share.capture_id)
        return FileResponse(path, media_type=VIDEO_TYPE, headers=no_store)  # answers Range with 206

    async def qr(request: Request) -> Response:
        await resolve(request)
        link = str(request.url_for("share_page", token=request.path_params["token"]))
        return Response(await anyio.to_thread.run_sync(qr_png, link), media_type="image/png",
                        headers=no_store)

    async def nothing(request: Request) -> Response:
        raise NotFoundError(_NO_SUCH_LINK)

    async def create(request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise RequestError("expected a JSON object", "body")
        hours, asset = body.get("hours", DEFAULT_HOURS), body.get("asset", "")
        new = await anyio.to_thread.run_sync(store.create, request.path_params["capture_id"], hours, asset)
        return JSONResponse(share_json(new, str(request.base_url)), status_code=201)

    return [
        Route("/s/{token}", page, methods=["GET"], name="share_page"),
        Route(f"/s/{{token}}/{MODEL_NAME}", model, methods=["GET"], name="share_usdz"),
        Route(f"/s/{{token}}/{POSTER_NAME}", poster, methods=["GET"], name="share_poster"),
        Route("/s/{token}/qr.png", qr, methods=["GET"], name="share_qr"),
        Route(f"/s/{{token}}/{VIDEO_NAME}", video, methods=["GET"], name="share_video"),
        Route("/s/{rest:path}", nothing, methods=["GET"], name="share_nothing"),  # the same 404 for all
        Route("/v1/captures/{capture_id}/share", create, methods=["POST"], name="share_create"),
    ]
