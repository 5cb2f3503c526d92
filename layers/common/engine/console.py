"""The console and the API docs as static pages of the HTTP API (public routes of `submit`).

- `GET /` is the console's page and `GET /console/<file>` its scripts and styles (`static/console/`,
  plain ES modules, no build step), plus `GET /console/config.json`: where the WebSocket API is
  (in AWS another host than the HTTP API; locally the same one).
- `GET /docs` is Swagger UI over `/openapi.json`, with its files from `GET /docs/<file>`
  (`static/swagger-ui/`, copied from npm's `swagger-ui-dist` by `make vendor`): no CDN, so the
  docs work offline and load nothing from a third party.

Both folders are in the common layer (its ContentUri is layers/common/, so `sam build` copies
them with the engine package). Only listed file types are served, only from inside those folders;
text is gzipped when the client accepts it (API Gateway does not compress), and every file has an
ETag, so a reload costs a 304. Nothing here reads a key or the database.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from engine.config import Settings
from engine.orders import CANCELLABLE, Status, statuses

STATIC = Path(__file__).resolve().parent / "static"
CONSOLE = STATIC / "console"
SWAGGER_UI = STATIC / "swagger-ui"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
COMPRESSIBLE = (".html", ".js", ".css", ".svg", ".json", ".txt")
# The console's files change with each deploy and have no hashed names: always revalidate (the
# ETag makes that a 304). Swagger UI's are pinned in vendor/package-lock.json: cache a day.
CONSOLE_CACHE = "no-cache"
VENDOR_CACHE = "public, max-age=86400"
# The page runs only its own scripts and talks only to its own origin and the origins the
# deployment configures (its WebSocket API, CONSOLE_API_ORIGIN): never to one from the URL, so a
# link cannot make it send the key elsewhere (console_csp names exactly those origins).
_CSP = (
    "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src {connect}; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_NOT_FOUND = {"error": {"code": "not_found", "message": "Not Found"}}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> Asset:
    """The file as served; keyed on its mtime too, so an edited file is served anew (locally)."""
    body = path.read_bytes()
    gzipped = gzip.compress(body, 6) if path.suffix in COMPRESSIBLE and len(body) > 1024 else None
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, gzipped, TYPES[path.suffix], etag)


def find(root: Path, name: str) -> Path | None:
    """The file `name` under `root`, or None: no way out of `root`, no hidden or unlisted file."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()) or path.suffix not in TYPES or not path.is_file():
        return None
    return path


def serve(request: Request, root: Path, name: str, cache: str) -> Response:
    path = find(root, name)
    if path is None:
        return Response(json.dumps(_NOT_FOUND), 404, media_type="application/json")
    asset = _load(path, path.stat().st_mtime_ns)
    headers = {
        "cache-control": cache,
        "etag": asset.etag,
        "x-content-type-options": "nosniff",
        "vary": "accept-encoding",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.content_type, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def origin(url: str) -> str | None:
    """scheme://host[:port] of an absolute http(s)/ws(s) URL, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def connect_origins(cfg: Settings) -> list[str]:
    """Where the console may connect besides its own origin: the configured API and WebSocket
    API origins."""
    found = [origin(u) for u in (cfg.console_api_origin, cfg.ws_url) if u]
    return sorted({o for o in found if o})


def console_csp(cfg: Settings, scripts: tuple[str, ...] = ()) -> str:
    """The Content-Security-Policy of the console and the docs: `scripts` are the hashes of
    a page's own inline scripts (Swagger UI's start-up script on /docs)."""
    connect = " ".join(["'self'", *connect_origins(cfg)])
    script_src = " ".join(["'self'", *(f"'{h}'" for h in scripts)])
    return _CSP.format(scripts=script_src, connect=connect)


def security_headers(cfg: Settings, scripts: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        "content-security-policy": console_csp(cfg, scripts),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }


def inline_script_hashes(html: bytes) -> tuple[str, ...]:
    """CSP hashes (sha256-...) of the page's inline <script> elements."""
    found = re.findall(rb"<script>(.*?)</script>", html, flags=re.DOTALL)
    return tuple("sha256-" + base64.b64encode(hashlib.sha256(s).digest()).decode() for s in found)


def client_config(cfg: Settings) -> dict[str, Any]:
    """What the page cannot know by itself: the WebSocket API's URL (wss://<ws api>/<stage> in
    AWS), and the statuses (one definition: `Status`) for the history's filter, to know when
    an order's stream is over, and when it may still be cancelled."""
    return {
        "apiUrl": origin(cfg.console_api_origin) if cfg.console_api_origin else None,
        "wsUrl": cfg.ws_url,
        "statuses": [s.value for s in Status],
        "terminal": [s.value for s in Status if s.terminal],
        "cancellable": statuses(CANCELLABLE),
    }


def docs_page(cfg: Settings) -> HTMLResponse:
    if not (SWAGGER_UI / "swagger-ui-bundle.js").is_file():
        return HTMLResponse(
            "<!doctype html><title>API docs</title><p>Swagger UI's files are not installed "
            "(run <code>make vendor</code>). The OpenAPI document is at "
            '<a href="/openapi.json">/openapi.json</a>.</p>',
            status_code=503,
            headers=security_headers(cfg),
        )
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Solana order execution engine - API docs",
        swagger_js_url="/docs/swagger-ui-bundle.js",
        swagger_css_url="/docs/swagger-ui.css",
        swagger_favicon_url="/docs/favicon-32x32.png",
        # No badge from validator.swagger.io: the docs call no third party.
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers["cache-control"] = CONSOLE_CACHE
    page.headers.update(security_headers(cfg, inline_script_hashes(bytes(page.body))))
    return page


def mount(app: FastAPI, cfg: Settings) -> None:
    """Add the console's and the docs' routes to `app` (kept out of the OpenAPI document).
    Create `app` with `docs_url=None`: FastAPI's own /docs loads Swagger UI from a CDN."""

    @app.get("/", include_in_schema=False)
    def console_page(request: Request) -> Response:
        page = serve(request, CONSOLE, "index.html", CONSOLE_CACHE)
        page.headers.update(security_headers(cfg))
        return page

    @app.get("/console/config.json", include_in_schema=False)
    def console_config() -> Response:
        body = json.dumps(client_config(cfg))
        return Response(body, media_type="application/json", headers={"cache-control": "no-store"})

    @app.get("/console/{name:path}", include_in_schema=False)
    def console_asset(request: Request, name: str) -> Response:
        return serve(request, CONSOLE, name, CONSOLE_CACHE)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return docs_page(cfg)

    @app.get("/docs/{name:path}", include_in_schema=False)
    def docs_asset(request: Request, name: str) -> Response:
        return serve(request, SWAGGER_UI, name, VENDOR_CACHE)
