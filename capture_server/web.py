"""The pages a phone's browser opens: the web capture page (resources/web/, at ``/app/`` and at the
pairing URL ``/pair``) and the AR Quick Look share links (capture_server.share, at ``/s/``).

They sit beside the JSON API rather than in its route table: ``PageRouter`` sends the paths it
owns to a small app of their own, and the token gate lets GET/HEAD of these pages through
(``is_public_page``). Making a share link (POST) still needs a device token.

tus-js-client's browser bundle is served from the repository's ``node_modules/`` (installed from
the npm registry with ``npm ci``), never from a copy in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import resources
from capture_server.errors import http_status
from capture_server.share import ShareStore, share_routes
from core.errors import NotFoundError, ScanBridgeError
from core.workspace import Workspace

WEB_DIR = Path(resources.__file__).resolve().parent / "web"
NODE_MODULES = Path(resources.__file__).resolve().parents[1] / "node_modules"
TUS_BUNDLE = Path("tus-js-client") / "dist" / "tus.min.js"
PAGE_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
              ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
# The page loads only from its own origin; blob: for photo previews.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache",
}
_SHARE_CREATE = re.compile(r"^/v1/captures/[^/]+/share$")
_PUBLIC_PREFIXES = ("/app/", "/s/")
_PUBLIC_PATHS = frozenset({"/app", "/pair"})


def is_public_page(method: str, path: str) -> bool:
    """Whether the token gate lets this request through: reading a page, its files or a share link."""
    return method in ("GET", "HEAD") and (path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES))


def owns_path(path: str) -> bool:
    return path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES) or bool(_SHARE_CREATE.match(path))


def web_routes(web_dir: Path = WEB_DIR, node_modules: Path = NODE_MODULES) -> list[Route]:
    """The capture page and its own files (flat: no sub-folders), and the tus-js-client bundle."""

    def page_file(name: str) -> Response:
        path = web_dir / name
        if "/" in name or name.startswith(".") or path.suffix not in PAGE_TYPES or not path.is_file():
            raise NotFoundError("no such file", name)
        return FileResponse(path, media_type=PAGE_TYPES[path.suffix], headers=PAGE_HEADERS)

    async def index(request: Request) -> Response:
        return page_file("index.html")

    async def app_root(request: Request) -> Response:
        return RedirectResponse("/app/", status_code=308)

    async def asset(request: Request) -> Response:
        return page_file(request.path_params["name"])

    async def tus_bundle(request: Request) -> Response:
        path = node_modules / TUS_BUNDLE
        if not path.is_file():
            raise NotFoundError("tus-js-client is not installed; run `npm ci` in the repository",
                                "node_modules/tus-js-client")
        return FileResponse(path, media_type=PAGE_TYPES[".js"], headers=PAGE_HEADERS)

    return [
        Route("/pair", index, methods=["GET"], name="web_pair"),
        Route("/app", app_root, methods=["GET"], name="web_root"),
        Route("/app/", index, methods=["GET"], name="web_index"),
        Route("/app/vendor/tus.min.js", tus_bundle, methods=["GET"], name="web_tus"),
        Route("/app/{name}", asset, methods=["GET"], name="web_asset"),
    ]


def pages_app(workspace: Workspace, share_store: ShareStore | None = None,
              web_dir: Path = WEB_DIR, node_modules: Path = NODE_MODULES) -> Starlette:
    """The share links and the web page as one small app, with errors as JSON."""

    async def on_error(request: Request, exc: Exception) -> Response:
        body = {"error": str(exc), "type": type(exc).__name__}
        if isinstance(exc, ScanBridgeError):
            body.update(reason=exc.reason, where=exc.where)
        return JSONResponse(body, status_code=http_status(exc), headers={"Cache-Control": "no-store"})

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        return Response(status_code=400)  # nobody is left to read it; not a server error

    return Starlette(routes=[*share_routes(workspace, share_store), *web_routes(web_dir, node_modules)],
                     exception_handlers={ScanBridgeError: on_error, ClientDisconnect: on_disconnect})


class PageRouter:
    """Pure ASGI middleware: requests for the pages go to ``pages_app``, the rest to the API."""

    def __init__(self, app: ASGIApp, workspace: Workspace) -> None:
        self.app = app
        self.pages = pages_app(workspace)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and owns_path(scope["path"]):
            await self.pages(scope, receive, send)
        else:
            await self.app(scope, receive, send)
