"""Build the exact API Gateway events the cloud delivers: HTTP API payload v2 and WebSocket."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT = "000000000000"
API_ID = "local"
STAGE = "$default"


def _now() -> tuple[str, int]:
    now = datetime.now(UTC)
    return now.strftime("%d/%b/%Y:%H:%M:%S +0000"), int(now.timestamp() * 1000)


def http_event(
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    query: str = "",
    body: bytes = b"",
    source_ip: str = "127.0.0.1",
    domain: str = "127.0.0.1",
    api_key_id: uuid.UUID | str | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event, as API Gateway sends it to a Lambda. With
    `api_key_id`, as it arrives after the Lambda authorizer let that key in."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    when, epoch = _now()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "cookies": [],
        "headers": lowered,
        "queryStringParameters": params or None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": STAGE,
            "time": when,
            "timeEpoch": epoch,
        },
    }
    with_body(event, body)
    if api_key_id is not None:
        authorize_http(event, {"apiKeyId": str(api_key_id)})
    return event


def with_body(event: dict[str, Any], body: bytes) -> dict[str, Any]:
    """Put a request's body into its HTTP API event (text, or base64 when it is not UTF-8)."""
    text_body: str | None = None
    encoded = False
    if body:
        event["headers"].setdefault("content-length", str(len(body)))
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, encoded = base64.b64encode(body).decode(), True
    event["body"] = text_body
    event["isBase64Encoded"] = encoded
    return event


def authorize_http(event: dict[str, Any], context: Mapping[str, Any] | None) -> None:
    """Put a simple-response authorizer's context where HTTP API puts it for the integration."""
    event["requestContext"]["authorizer"] = {"lambda": dict(context or {})}


def http_authorizer_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The payload-2.0 REQUEST authorizer event for an HTTP API request event."""
    ctx = event["requestContext"]
    method, path = ctx["http"]["method"], ctx["http"]["path"]
    arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{ctx['apiId']}/{ctx['stage']}/{method}{path}"
    out = {k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")}
    out.update(
        type="REQUEST",
        routeArn=arn,
        identitySource=[v for k, v in event["headers"].items() if k == "x-api-key"],
    )
    return out


def ws_authorizer_event(connect: Mapping[str, Any]) -> dict[str, Any]:
    """The REQUEST authorizer event for a WebSocket `$connect` event."""
    ctx = connect["requestContext"]
    query = connect.get("queryStringParameters") or {}
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{ctx['apiId']}/{ctx['stage']}"
        "/$connect",
        "headers": dict(connect.get("headers") or {}),
        "multiValueHeaders": dict(connect.get("multiValueHeaders") or {}),
        "queryStringParameters": dict(query),
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "stageVariables": {},
        "requestContext": dict(ctx),
    }


def authorize_ws(
    event: dict[str, Any], principal_id: str, context: Mapping[str, Any] | None
) -> None:
    """Put a REQUEST authorizer's answer where the WebSocket API puts it: the context's keys
    beside `principalId` in `requestContext.authorizer`."""
    event["requestContext"]["authorizer"] = {
        "principalId": principal_id,
        "integrationLatency": 0,
        **dict(context or {}),
    }


def ws_event(
    event_type: str,
    route_key: str,
    connection_id: str,
    *,
    body: str | None = None,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    domain: str = "127.0.0.1",
    stage: str = "local",
    source_ip: str = "127.0.0.1",
    api_key_id: uuid.UUID | str | None = None,
) -> dict[str, Any]:
    """A WebSocket API event: CONNECT, MESSAGE or DISCONNECT, as API Gateway sends it. With
    `api_key_id`, as it arrives after the `$connect` authorizer let that key in."""
    when, epoch = _now()
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": uuid.uuid4().hex,
            "requestTime": when,
            "messageDirection": "IN",
            "stage": stage,
            "connectedAt": epoch,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
            "requestId": uuid.uuid4().hex,
            "domainName": domain,
            "connectionId": connection_id,
            "apiId": API_ID,
        },
        "isBase64Encoded": False,
    }
    if event_type == "CONNECT":
        event["headers"] = dict(headers or {})
        event["multiValueHeaders"] = {k: [v] for k, v in (headers or {}).items()}
        event["queryStringParameters"] = dict(query) if query else None
    if body is not None:
        event["body"] = body
    if api_key_id is not None:
        authorize_ws(event, str(api_key_id), {"apiKeyId": str(api_key_id)})
    return event


class LambdaContext:
    """The context object Lambda passes to a handler, with the fields Powertools reads."""

    def __init__(self, function_name: str, timeout_seconds: float = 30.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_thread = threading.local()


def ensure_event_loop() -> None:
    """Give this thread an event loop of its own, as the Lambda runtime's thread has one (Mangum
    calls `asyncio.get_event_loop()`); a worker thread of the local runtime or of a test has
    none until it is given one. Kept per thread, across invocations, as a container keeps it."""
    if getattr(_thread, "loop", None) is None:
        _thread.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_thread.loop)
