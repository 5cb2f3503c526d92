"""CORS as API Gateway's HTTP API applies its `CorsConfiguration` (read from template.yaml).

What API Gateway documents, and this reproduces in front of the local gateway's HTTP routes:
- a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by the
  gateway itself, before any route or authorizer: 204 with the configured origins, methods,
  headers and max age;
- any other request that carries `Origin` gets the configured CORS headers added to whatever
  answers it, and CORS headers the function set itself are dropped: with a CorsConfiguration,
  API Gateway ignores the integration's. (AWS documents this for the integration's replies;
  whether its authorizer's 401/403 carry the headers is not documented. Here they do, so a
  page on another origin can tell a refused key from a network error.)
- without `Origin`, nothing changes.
An origin matches `*`, an exact entry, or an entry ending in `*` (`https://*`) as a prefix. An
origin that matches nothing gets no CORS headers (a preflight still gets its 204), so the browser
refuses the call. The management API (`/@connections/...`) is another API in AWS: untouched.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local.template import LOCAL_PARAMETERS, HttpCors, http_cors


def allowed_origin(cors: HttpCors, origin: str) -> str | None:
    """The `Access-Control-Allow-Origin` value for `origin`, or None when it is not allowed."""
    for entry in cors.allow_origins:
        if entry == "*":
            return "*"
        if entry == origin or (entry.endswith("*") and origin.startswith(entry[:-1])):
            return origin
    return None


def preflight_headers(cors: HttpCors, origin: str) -> dict[str, str]:
    allow = allowed_origin(cors, origin)
    if allow is None:
        return {}
    headers = {"access-control-allow-origin": allow}
    if cors.allow_methods:
        headers["access-control-allow-methods"] = ",".join(cors.allow_methods)
    if cors.allow_headers:
        headers["access-control-allow-headers"] = ",".join(cors.allow_headers)
    if cors.max_age is not None:
        headers["access-control-max-age"] = str(cors.max_age)
    if cors.allow_credentials:
        headers["access-control-allow-credentials"] = "true"
    if allow != "*":
        headers["vary"] = "Origin"
    return headers


def response_headers(cors: HttpCors, origin: str) -> dict[str, str]:
    allow = allowed_origin(cors, origin)
    if allow is None:
        return {}
    headers = {"access-control-allow-origin": allow}
    if cors.expose_headers:
        headers["access-control-expose-headers"] = ",".join(cors.expose_headers)
    if cors.allow_credentials:
        headers["access-control-allow-credentials"] = "true"
    if allow != "*":
        headers["vary"] = "Origin"
    return headers


class ApiGatewayCors:
    """ASGI middleware: the CORS part of an HTTP API, in front of the gateway's routes."""

    def __init__(self, app: ASGIApp, cors: HttpCors) -> None:
        self.app = app
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "/@connections/" in scope["path"]:
            await self.app(scope, receive, send)
            return
        request = Headers(scope=scope)
        origin = request.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in request:
            headers = preflight_headers(self.cors, origin)
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        added = response_headers(self.cors, origin)

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key in [k for k in headers if k.startswith("access-control-")]:
                    del headers[key]
                for key, value in added.items():
                    if key == "vary":
                        headers.add_vary_header(value)
                    else:
                        headers[key] = value
            await send(message)

        await self.app(scope, receive, with_cors)


def middleware() -> list[Middleware]:
    """The middleware for the template's CorsConfiguration (none when it declares none)."""
    try:
        cors = http_cors(parameters=LOCAL_PARAMETERS)
    except (FileNotFoundError, KeyError):
        return []
    return [] if cors is None else [Middleware(ApiGatewayCors, cors=cors)]
