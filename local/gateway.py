"""A local API Gateway: HTTP API, WebSocket API and the management API on one port (ASGI),
one class each (`HttpApi`, `WebSocketApi`, `ManagementApi`), composed by `Gateway`.

- Any HTTP request becomes an HTTP API payload-v2 event for the function the template routes it
  to (`GET /api/quote`: functions/quote, loaded on its first request), else for submit.
- A WebSocket on `/api/orders/execute`, `/` or `/ws` becomes `$connect` (query and headers), one
  MESSAGE event per frame (route chosen by the template's RouteSelectionExpression) and
  `$disconnect`, for the ws_connect handler. A non-2xx answer to `$connect` refuses the upgrade
  with that status, as API Gateway does.
- Authorizers, as the template declares them: an HTTP request to a route that is not public runs
  the HTTP API's Lambda authorizer first (no `x-api-key`: 401 `{"message":"Unauthorized"}`
  without calling it; not authorized: 403 `{"message":"Forbidden"}`), and `$connect` runs the
  WebSocket REQUEST authorizer (its policy must allow the methodArn; "Unauthorized" raised: 401,
  a Deny: 403, refusing the upgrade). The authorizer's context goes where API Gateway puts it:
  `requestContext.authorizer.lambda` (HTTP), `requestContext.authorizer` (every WS event of the
  connection). HTTP answers are cached per `x-api-key` for the template's TTL, as API Gateway
  caches them (so a revoked key still passes for that long; creating orders checks the key).
- `POST|GET|DELETE /{secret}/@connections/{id}` is the management API, so boto3's
  `apigatewaymanagementapi` client with `endpoint_url=http://127.0.0.1:PORT/{secret}`
  (`Gateway.management_endpoint(base)`) reaches the sockets: only from a loopback address and
  only with the stack's secret (made per gateway), so neither another host nor a web page the
  user visits can push frames into a client's socket. Its SigV4 headers are not checked.
- What a public endpoint must withstand, as API Gateway does: a request's head must arrive within
  `head_timeout` and its body within `body_timeout` (slow clients cannot hold connections); the
  body's size is checked and the caller authorized before the body is read (10 MB at most, API
  Gateway's limit); no redirect is ever built from the Host header.

Handlers run in worker threads, each with its own event loop (Mangum needs one), so a handler that
posts back to this gateway never blocks the loop that serves the post.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import h11
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute, request_response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from local import cors
from local.apigw import (
    LambdaContext,
    authorize_http,
    authorize_ws,
    ensure_event_loop,
    http_authorizer_event,
    http_event,
    with_body,
    ws_authorizer_event,
    ws_event,
)
from local.iam import AccessChecker, acting_as
from local.workers import Throttled

if TYPE_CHECKING:
    from local.metrics import EmfCollector
    from local.template import HttpAuth

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
log = logging.getLogger("local.gateway")

WS_PATHS = ("/api/orders/execute", "/ws", "/")
MAX_FRAME_BYTES = 32 * 1024  # API Gateway's WebSocket frame limit
MAX_POST_BYTES = 128 * 1024  # and its message limit, which post_to_connection also enforces
MAX_HTTP_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's payload limit
HEAD_TIMEOUT = 10.0  # seconds for a request line and headers to arrive
BODY_TIMEOUT = 10.0  # seconds for a request body to arrive
HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEFAULT_ROUTES = ("$connect", "$disconnect", "$default", "subscribe", "cancel")
DEFAULT_SELECTION = "$request.body.action"


def _invoke(
    handler: Handler,
    event: dict[str, Any],
    name: str,
    timeout: float,
    access: AccessChecker | None = None,
) -> dict[str, Any]:
    """Call a handler as Lambda would, in this worker thread with its own event loop, its AWS
    calls judged against the function's role (`access`)."""
    ensure_event_loop()
    with acting_as(name, access):
        reply = handler(event, LambdaContext(name, timeout))
    return reply if isinstance(reply, dict) else {"statusCode": 200}


def select_route(text: str | None, expression: str, route_keys: Iterable[str]) -> str:
    """Evaluate a `$request.body.<path>` RouteSelectionExpression as API Gateway does: the value
    picks a declared route key, and anything else (no JSON, no field, no such route) `$default`."""
    custom = {k for k in route_keys if not k.startswith("$")}
    prefix = "$request.body."
    if text is None or not expression.startswith(prefix):
        return "$default"
    try:
        value: Any = json.loads(text)
    except (ValueError, RecursionError):
        return "$default"
    for part in expression[len(prefix) :].split("."):
        if not isinstance(value, dict) or part not in value:
            return "$default"
        value = value[part]
    return value if isinstance(value, str) and value in custom else "$default"


def new_connection_id() -> str:
    # API Gateway ids look like "Yx3k9dQ2IAMCJ7g="; the URL-safe alphabet keeps them path-safe.
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


@dataclass
class _Socket:
    websocket: WebSocket
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    authorizer: dict[str, Any] | None = None  # what `$connect`'s authorizer said, for every event

    async def send(self, data: bytes) -> None:
        async with self.lock:  # one frame at a time per socket
            try:
                await self.websocket.send_text(data.decode("utf-8"))
            except UnicodeDecodeError:
                await self.websocket.send_bytes(data)
        self.last_active_at = time.time()


def _gone(connection_id: str) -> JSONResponse:
    return JSONResponse(
        {"message": f"connection {connection_id} is gone"},
        status_code=410,
        headers={"x-amzn-ErrorType": "GoneException"},
    )


def _error_frame(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _too_large() -> JSONResponse:
    return JSONResponse({"message": "Request Entity Too Large"}, status_code=413)


class _BodyRefused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _declared_length(headers: dict[str, str]) -> int:
    """The Content-Length a request declares (0 if none; a malformed one counts as too big)."""
    value = headers.get("content-length", "0")
    return int(value) if value.isdigit() else MAX_HTTP_BODY_BYTES + 1


async def _read_body(request: Request, timeout: float) -> bytes:
    """The request body, read in chunks: at most MAX_HTTP_BODY_BYTES (whatever was declared)
    and within `timeout` seconds, else _BodyRefused with API Gateway's answer."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_HTTP_BODY_BYTES:
                    raise _BodyRefused(_too_large())
                chunks.append(chunk)
    except TimeoutError:
        raise _BodyRefused(JSONResponse({"message": "Request Timeout"}, status_code=408)) from None
    return b"".join(chunks)


def policy_allows(reply: dict[str, Any], arn: str) -> bool:
    """Does an authorizer's IAM policy allow `execute-api:Invoke` on `arn`? (A Deny wins.)"""
    allowed = False
    statements = (reply.get("policyDocument") or {}).get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action", [])
        resources = st.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if not any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(arn, r) for r in resources):
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed


class Invoker:
    """Calls the functions as Lambda would: in worker threads (each with its own event loop), at
    most 64 at once, with the authorizer function loaded on first use."""

    def __init__(
        self,
        authorizer_handler: Handler | None = None,
        metrics: EmfCollector | None = None,
        access: AccessChecker | None = None,
        functions: Callable[[str], Handler] | None = None,
    ) -> None:
        self._authorizer_handler = authorizer_handler
        self.access = access  # each function's IAM role, for its AWS calls
        self.functions = functions  # a function's handler by name (worker pools); None: in-process
        self._limiter = anyio.CapacityLimiter(64)
        self.metrics = metrics  # reads the functions' EMF lines, as CloudWatch would

    async def call(self, handler: Handler, event: dict[str, Any], name: str) -> dict[str, Any]:
        if self.metrics is not None:
            self.metrics.install()
        return await anyio.to_thread.run_sync(
            _invoke, handler, event, name, 29.0, self.access, limiter=self._limiter
        )

    def authorizer(self, function: str) -> Handler:
        if self._authorizer_handler is None:
            from local.handlers import fresh_handler

            self._authorizer_handler = (self.functions or fresh_handler)(function)
        return self._authorizer_handler


class HttpApi:
    """The HTTP API: every request becomes a payload-v2 event for the function its route names in
    the template (submit for any other), after the template's authorizer (with its cache) has
    let it in."""

    def __init__(
        self,
        invoker: Invoker,
        submit_handler: Handler,
        http_auth: HttpAuth | None,
        body_timeout: float = BODY_TIMEOUT,
        routes: dict[tuple[str, str], str] | None = None,
    ):
        self.invoker = invoker
        self.submit_handler = submit_handler
        self.http_auth = http_auth
        self.body_timeout = body_timeout
        self._auth_cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}
        # (METHOD, path) -> function folder, for the routes not served by submit.
        self.routes = {r: f for r, f in (routes or {}).items() if f != "submit"}
        self._handlers: dict[str, Handler] = {}
        self._loading = threading.Lock()

    def handler_for(self, method: str, path: str) -> tuple[Handler, str]:
        """The handler (a container of its function, made on first use) serving a request."""
        from local.template import route_matches

        method = "GET" if method == "HEAD" else method
        for (m, p), folder in self.routes.items():
            if m == method and route_matches(p, path):
                with self._loading:
                    if folder not in self._handlers:
                        from local.handlers import fresh_handler

                        self._handlers[folder] = (self.invoker.functions or fresh_handler)(folder)
                return self._handlers[folder], folder
        return self.submit_handler, "submit"

    async def _authorize_http(self, event: dict[str, Any]) -> Response | None:
        """None when the request may go on (its event now carries the authorizer's context);
        else API Gateway's own reply."""
        auth = self.http_auth
        method, path = event["requestContext"]["http"]["method"], event["rawPath"]
        if auth is None or method == "OPTIONS" or _is_public(auth, method, path):
            return None  # CORS preflights are answered before any authorizer
        if any(not event["headers"].get(h) for h in auth.identity_headers):
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        identity = tuple(event["headers"][h] for h in auth.identity_headers)
        cached = self._auth_cache.get(identity)
        if cached is not None and cached[0] > time.monotonic():
            reply = cached[1]
        else:
            try:
                reply = await self.invoker.call(
                    self.invoker.authorizer(auth.function),
                    http_authorizer_event(event),
                    "authorizer",
                )
            except Throttled:  # the authorizer's concurrency or the account's
                return JSONResponse({"message": "Too Many Requests"}, status_code=429)
            except Exception:
                log.exception("authorizer raised")
                return JSONResponse({"message": "Internal Server Error"}, status_code=500)
            if auth.ttl_seconds > 0:
                if len(self._auth_cache) > 10_000:  # bounded: fuzzers send many made-up keys
                    self._auth_cache.clear()
                self._auth_cache[identity] = (time.monotonic() + auth.ttl_seconds, reply)
        if reply.get("isAuthorized") is not True:
            return JSONResponse({"message": "Forbidden"}, status_code=403)
        authorize_http(event, reply.get("context"))
        return None

    async def _invoke_route(
        self, request: Request, event: dict[str, Any]
    ) -> dict[str, Any] | Response:
        """The route's function's reply, or API Gateway's own answer when it could not give one."""
        try:
            handler, name = self.handler_for(request.method, request.url.path)
            return await self.invoker.call(handler, event, name)
        except Throttled:  # the function's or the account's concurrency: API Gateway's 429
            return JSONResponse({"message": "Too Many Requests"}, status_code=429)
        except Exception:
            log.exception("handler raised")
            return JSONResponse({"message": "Internal Server Error"}, status_code=500)

    async def handle(self, request: Request) -> Response:
        headers: dict[str, str] = {}
        for key, value in request.headers.items():  # repeated headers join with "," (payload v2)
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        if _declared_length(headers) > MAX_HTTP_BODY_BYTES:
            return _too_large()
        event = http_event(
            request.method,
            request.url.path,
            headers=headers,
            query=request.url.query,
            source_ip=request.client.host if request.client else "127.0.0.1",
            domain=request.url.hostname or "127.0.0.1",
        )
        # Who is asking is settled before the body is read: nobody unauthorized makes us hold it.
        denied = await self._authorize_http(event)
        if denied is not None:
            return denied
        try:
            with_body(event, await _read_body(request, self.body_timeout))
        except _BodyRefused as refused:
            return refused.response
        reply = await self._invoke_route(request, event)
        if isinstance(reply, Response):
            return reply
        body = reply.get("body") or ""
        raw = base64.b64decode(body) if reply.get("isBase64Encoded") else body.encode()
        response = Response(raw, status_code=int(reply.get("statusCode", 200)))
        for key, value in (reply.get("headers") or {}).items():
            response.headers[key] = str(value)
        for key, values in (reply.get("multiValueHeaders") or {}).items():
            for value in values:
                response.headers.append(key, str(value))
        for cookie in reply.get("cookies") or []:
            response.headers.append("set-cookie", cookie)
        return response


class WebSocketApi:
    """The WebSocket API: `$connect` (after the template's authorizer), one MESSAGE event per
    frame on the route the selection expression picks, `$disconnect`; it holds the open sockets
    the management API posts to."""

    def __init__(
        self,
        invoker: Invoker,
        ws_handler: Handler,
        *,
        route_keys: Iterable[str],
        selection_expression: str,
        stage: str,
        ws_authorizer: str | None,
    ) -> None:
        self.invoker = invoker
        self.ws_handler = ws_handler
        self.route_keys = tuple(route_keys)
        self.selection_expression = selection_expression
        self.stage = stage
        self.ws_authorizer = ws_authorizer
        self.sockets: dict[str, _Socket] = {}

    def _ws_event(self, event_type: str, route: str, cid: str, ws: WebSocket, **kw: Any) -> Any:
        return ws_event(
            event_type,
            route,
            cid,
            domain=ws.url.hostname or "127.0.0.1",
            stage=self.stage,
            source_ip=ws.client.host if ws.client else "127.0.0.1",
            **kw,
        )

    async def _authorize_ws(self, connect: dict[str, Any]) -> dict[str, Any] | None:
        """None when `$connect` may go on (the event now carries the authorizer's answer); else
        the refusal API Gateway sends instead of the upgrade."""
        if self.ws_authorizer is None:
            return None
        auth_event = ws_authorizer_event(connect)
        try:
            reply = await self.invoker.call(
                self.invoker.authorizer(self.ws_authorizer), auth_event, "authorizer"
            )
        except Throttled:
            return {"statusCode": 429, "body": json.dumps({"message": "Too Many Requests"})}
        except Exception as exc:
            if str(exc) == "Unauthorized":  # a REQUEST authorizer's way to say 401
                return {"statusCode": 401, "body": json.dumps({"message": "Unauthorized"})}
            log.exception("authorizer raised")
            return {"statusCode": 500, "body": json.dumps({"message": "Internal server error"})}
        if not policy_allows(reply, auth_event["methodArn"]):
            return {"statusCode": 403, "body": json.dumps({"message": "Forbidden"})}
        authorize_ws(connect, str(reply.get("principalId", "")), reply.get("context"))
        return None

    async def _connect(self, connect: dict[str, Any]) -> dict[str, Any]:
        """The `$connect` function's reply (API Gateway's own when it could not give one)."""
        try:
            reply: dict[str, Any] = await self.invoker.call(self.ws_handler, connect, "ws_connect")
            return reply
        except Throttled:
            return {"statusCode": 429, "body": json.dumps({"message": "Too Many Requests"})}
        except Exception:
            log.exception("$connect handler raised")
            return {"statusCode": 500, "body": json.dumps({"message": "Internal server error"})}

    async def handle(self, ws: WebSocket) -> None:
        cid = new_connection_id()
        headers = dict(ws.headers.items())
        connect = self._ws_event(
            "CONNECT", "$connect", cid, ws, query=dict(ws.query_params), headers=headers
        )
        reply = await self._authorize_ws(connect) or await self._connect(connect)
        status = int(reply.get("statusCode", 200))
        if not 200 <= status < 300:
            # API Gateway refuses the upgrade with the authorizer's or the handler's status.
            denial = Response(
                reply.get("body") or "",
                status_code=status,
                headers={"content-type": "application/json"},
            )
            if "websocket.http.response" in ws.scope.get("extensions", {}):
                await ws.send_denial_response(denial)
            else:
                await ws.close(code=1008)
            return
        await ws.accept()
        sock = _Socket(
            ws,
            connect["requestContext"]["identity"]["sourceIp"],
            headers.get("user-agent", ""),
            authorizer=connect["requestContext"].get("authorizer"),
        )
        self.sockets[cid] = sock
        close_code = 1005
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    close_code = int(message.get("code") or 1005)
                    break
                text = message.get("text")
                data = text.encode() if text is not None else message.get("bytes") or b""
                sock.last_active_at = time.time()
                await self._message(cid, ws, sock, text, data)
        except WebSocketDisconnect as exc:
            close_code = exc.code
        finally:
            self.sockets.pop(cid, None)
            event = self._ws_event("DISCONNECT", "$disconnect", cid, ws)
            event["requestContext"]["disconnectStatusCode"] = close_code
            if sock.authorizer is not None:
                event["requestContext"]["authorizer"] = dict(sock.authorizer)
            try:
                await self.invoker.call(self.ws_handler, event, "ws_connect")
            except Exception:
                log.exception("$disconnect handler raised")

    async def _message(
        self, cid: str, ws: WebSocket, sock: _Socket, text: str | None, data: bytes
    ) -> None:
        if len(data) > MAX_FRAME_BYTES:
            await sock.send(
                _error_frame(
                    "frame_too_large", f"frames are at most {MAX_FRAME_BYTES} bytes"
                ).encode()
            )
            return
        route = select_route(text, self.selection_expression, self.route_keys)
        if text is not None:
            event = self._ws_event("MESSAGE", route, cid, ws, body=text)
        else:
            event = self._ws_event("MESSAGE", route, cid, ws, body=base64.b64encode(data).decode())
            event["isBase64Encoded"] = True
        event["requestContext"]["messageId"] = uuid.uuid4().hex[:12]
        if sock.authorizer is not None:
            event["requestContext"]["authorizer"] = dict(sock.authorizer)
        # Frames of one socket are handled in arrival order (API Gateway gives no order
        # guarantee across concurrent invocations; one at a time keeps local runs predictable).
        try:
            await self.invoker.call(self.ws_handler, event, "ws_connect")
        except Exception as exc:
            throttled = isinstance(exc, Throttled)
            if not throttled:
                log.exception("%s handler raised", route)
            if cid in self.sockets:
                await sock.send(
                    json.dumps(
                        {
                            "message": "Too Many Requests"
                            if throttled
                            else "Internal server error",
                            "connectionId": cid,
                            "requestId": event["requestContext"]["requestId"],
                        }
                    ).encode()
                )


class ManagementApi:
    """`POST|GET|DELETE /@connections/{id}`: what `apigatewaymanagementapi` calls, on the
    WebSocket API's open sockets."""

    def __init__(self, sockets: dict[str, _Socket], secret: str) -> None:
        self.sockets = sockets
        self.secret = secret

    def _allowed(self, request: Request) -> bool:
        """Loopback callers with the stack's secret only (the functions; tests)."""
        host = request.client.host if request.client else ""
        given = request.path_params.get("secret", "")
        return _is_loopback(host) and secrets.compare_digest(given.encode(), self.secret.encode())

    async def handle(self, request: Request) -> Response:
        if not self._allowed(request):
            return JSONResponse({"message": "Forbidden"}, status_code=403)
        cid = request.path_params["connection_id"]
        sock = self.sockets.get(cid)
        if sock is None:
            return _gone(cid)
        if request.method == "POST":
            data = await request.body()
            if len(data) > MAX_POST_BYTES:
                return JSONResponse(
                    {"message": "payload too large"},
                    status_code=413,
                    headers={"x-amzn-ErrorType": "PayloadTooLargeException"},
                )
            try:
                await sock.send(data)
            except Exception:  # closed under us: the client sees what API Gateway would say
                self.sockets.pop(cid, None)
                return _gone(cid)
            return Response(status_code=200)
        if request.method == "DELETE":
            self.sockets.pop(cid, None)
            try:
                await sock.websocket.close(code=1000)
            except Exception:
                log.debug("socket %s was already closing", cid)
            return Response(status_code=204)
        return JSONResponse(
            {
                "connectedAt": sock.connected_at,
                "lastActiveAt": sock.last_active_at,
                "identity": {"sourceIp": sock.source_ip, "userAgent": sock.user_agent},
            }
        )


class Gateway:
    """The three APIs on one port (as the original engine served HTTP and WS on one), as one
    ASGI app (`.app`)."""

    def __init__(
        self,
        submit_handler: Handler | None = None,
        ws_handler: Handler | None = None,
        *,
        route_keys: Iterable[str] | None = None,
        selection_expression: str | None = None,
        stage: str = "local",
        authorizer_handler: Handler | None = None,
        auth: bool = True,
        metrics: EmfCollector | None = None,
        management_secret: str | None = None,
        body_timeout: float = BODY_TIMEOUT,
        access: AccessChecker | None = None,
        functions: Callable[[str], Handler] | None = None,
    ) -> None:
        """`functions`: a function's handler by name (the stack's worker pools); None: each
        function's module loaded in this process."""
        if submit_handler is None or ws_handler is None:
            from local.handlers import fresh_handler

            load = functions or fresh_handler
            submit_handler = submit_handler or load("submit")
            ws_handler = ws_handler or load("ws_connect")
        if route_keys is None or selection_expression is None:
            route_keys, selection_expression = _template_routes()
        # Which routes need which authorizer: from the template, like the routes themselves.
        http_auth, ws_authorizer = _template_auth() if auth else (None, None)
        invoker = Invoker(authorizer_handler, metrics, access, functions)
        self.http_api = HttpApi(
            invoker, submit_handler, http_auth, body_timeout, _template_http_routes()
        )
        self.ws_api = WebSocketApi(
            invoker,
            ws_handler,
            route_keys=route_keys,
            selection_expression=selection_expression,
            stage=stage,
            ws_authorizer=ws_authorizer,
        )
        self.management_secret = management_secret or secrets.token_urlsafe(24)
        self.management_api = ManagementApi(self.ws_api.sockets, self.management_secret)
        routes: list[Any] = [
            Route(
                "/{secret}/@connections/{connection_id:path}",
                self.management_api.handle,
                methods=["GET", "POST", "DELETE"],
            )
        ]
        if metrics is not None:  # the local stack's stand-in for CloudWatch metrics
            routes.append(Route("/_local/metrics", _metrics_page(metrics), methods=["GET"]))
        routes += [WebSocketRoute(p, self.ws_api.handle) for p in WS_PATHS]
        routes += [Route("/{path:path}", self.http_api.handle, methods=HTTP_METHODS)]
        # CORS as API Gateway applies the template's CorsConfiguration (preflights, headers).
        self.app = Starlette(routes=routes, middleware=cors.middleware())
        # Starlette would answer `/health/` with a redirect built from the Host header.
        self.app.router.redirect_slashes = False
        # Starlette's `path` pattern (`.*`) stops at a newline, so `/api/orders/%0A` would match
        # no route; API Gateway forwards any path, so any unmatched HTTP request goes to submit.
        self._unmatched = self.app.router.default
        self._http_app = request_response(self.http_api.handle)
        self.app.router.default = self._fallback

    @property
    def sockets(self) -> dict[str, _Socket]:
        return self.ws_api.sockets

    def management_endpoint(self, base_url: str) -> str:
        """What WS_MANAGEMENT_ENDPOINT must be for this gateway served at `base_url`."""
        return f"{base_url}/{self.management_secret}"

    async def _fallback(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._http_app if scope["type"] == "http" else self._unmatched
        await app(scope, receive, send)


def _metrics_page(metrics: EmfCollector) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        return JSONResponse({"metrics": metrics.snapshot()})

    return page


def _template_routes() -> tuple[tuple[str, ...], str]:
    """Route keys and selection expression from template.yaml (the one source of truth)."""
    try:
        from local.template import ws_route_selection_expression, ws_routes

        return ws_routes(), ws_route_selection_expression()
    except (ImportError, FileNotFoundError, KeyError) as exc:
        log.warning("template routes unavailable (%s); using the defaults", exc)
        return DEFAULT_ROUTES, DEFAULT_SELECTION


def _template_http_routes() -> dict[tuple[str, str], str]:
    """(METHOD, path) -> function folder, from template.yaml."""
    from local.template import http_route_functions

    return http_route_functions()


def _template_auth() -> tuple[HttpAuth | None, str | None]:
    """The HTTP API's authorizer settings and the `$connect` authorizer, from template.yaml."""
    from local.template import http_auth, ws_connect_authorizer

    return http_auth(), ws_connect_authorizer()


def _is_public(auth: HttpAuth, method: str, path: str) -> bool:
    from local.template import route_matches

    method = "GET" if method == "HEAD" else method
    return any(m == method and route_matches(p, path) for m, p in auth.public_routes)


# -- serving --------------------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


class _HeadTimedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's head: from the connection's
    start (or the first byte of a kept-alive connection's next request) the request line and
    headers must be complete within `head_timeout`, else the connection is closed. Without it a
    client sending half a request holds a connection forever (slowloris)."""

    head_timeout = HEAD_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watching()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not waiting:
            self._stop_watching()
        elif self._head_timer is None and self.timeout_keep_alive_task is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def _stop_watching(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing a connection whose request head did not arrive in time")
            self.transport.close()


def _server_config(app: Any, head_timeout: float, **kw: Any) -> uvicorn.Config:
    protocol = type("HeadTimedH11", (_HeadTimedH11,), {"head_timeout": head_timeout})
    return uvicorn.Config(
        app, lifespan="off", log_level="warning", ws_ping_interval=None, http=protocol, **kw
    )


def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, head_timeout: float = HEAD_TIMEOUT
) -> Served:
    """Run `app` under uvicorn in a daemon thread; returns once it accepts connections."""
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and without it every response waits ~40 ms (Nagle vs delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_server_config(app, head_timeout))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    return Served(f"http://{host}:{bound_port}", server, thread)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "3000"))
    uvicorn.Server(_server_config(Gateway().app, HEAD_TIMEOUT, host="127.0.0.1", port=port)).run()


if __name__ == "__main__":
    main()
