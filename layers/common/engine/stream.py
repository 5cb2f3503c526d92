"""The WebSocket API's routes: follow orders, submit them over the socket, replay their events,
cancel a limit or sniper order (`{"action": "cancel", "orderId"}`, route `cancel`).

`functions/ws_connect` is the thin handler over these. Replies to the client are posted through
the management API (the routes have no route responses). A frame that is not a valid request
gets an error frame `{"error": {"code", "message", "field"?}}` and statusCode 200: the socket
stays open.

Who: `$connect` passes the gateway's Lambda authorizer, whose context (`apiKeyId`) arrives at
`requestContext.authorizer`; the connection row keeps that key, and every frame on the
connection acts for it. A key sees only its own orders: another key's order id gets the same
404 / `order_not_found` as an unknown one.

`$connect ?orderId=ID` subscribes the new connection from seq 0. Nothing can be posted during
`$connect` (API Gateway answers 410), so it asks notify to deliver the backlog right after the
upgrade (a delayed status-queue message). A malformed orderId rejects the upgrade with 400, an
unknown one with 404.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from engine import payloads
from engine.connections import Socket
from engine.errors import (
    ApiKeyRevoked,
    EngineError,
    InvalidRequest,
    OrderNotFound,
    Unauthorized,
)
from engine.intake import Intake
from engine.notify import REVOKED_MESSAGE, Fanout, Publisher, announce
from engine.orders import check_idempotency_key, shown
from engine.store import Store

SUBSCRIBE_FIELDS = frozenset({"action", "orderId", "fromSeq"})
CANCEL_FIELDS = frozenset({"action", "orderId"})
MAX_SEQ = 2**31 - 1  # event seq and delivered_seq are Postgres integers
MAX_FRAME_BYTES = 64 * 1024  # as the HTTP body limit (API Gateway itself allows 128 KB messages)


# -- parsing --------------------------------------------------------------------------------------


def parse_frame(event: dict[str, Any]) -> dict[str, Any]:
    """The message's JSON object; InvalidRequest for anything else (too big, not JSON, ...)."""
    raw = event.get("body") or ""
    size = len(raw) * 3 // 4 if event.get("isBase64Encoded") else len(raw.encode(errors="replace"))
    if size > MAX_FRAME_BYTES:
        raise InvalidRequest(f"the frame is over {MAX_FRAME_BYTES} bytes", code="payload_too_large")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw)
        except ValueError:
            raise InvalidRequest("the frame is not valid base64") from None
    body = payloads.loads(raw, "the frame")
    if not isinstance(body, dict):
        raise InvalidRequest("a frame must be a JSON object")
    return body


def parse_order_id(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise InvalidRequest("orderId is required", field="orderId")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest("orderId is not a valid order id", field="orderId") from None


def parse_from_seq(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise InvalidRequest(f"fromSeq must be an integer from 0 to {MAX_SEQ}", field="fromSeq")
    return value


def header(headers: dict[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def authorized_key(event: dict[str, Any]) -> uuid.UUID | None:
    """The API key the `$connect` authorizer let in (`requestContext.authorizer.apiKeyId`)."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    try:
        return uuid.UUID(str(context["apiKeyId"])) if context.get("apiKeyId") else None
    except ValueError:
        return None


def reply(status: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Lambda reply to API Gateway (for `$connect`, a non-2xx refuses the upgrade)."""
    out: dict[str, Any] = {"statusCode": status}
    if body is not None:
        out["body"] = json.dumps(body)
        out["headers"] = {"content-type": "application/json"}
    return out


# -- routes ---------------------------------------------------------------------------------------


class OrderStream:
    """The routes over one container's store, intake, fan-out and status publisher."""

    def __init__(self, store: Store, intake: Intake, fanout: Fanout, publisher: Publisher) -> None:
        self.store = store
        self.intake = intake
        self.fanout = fanout
        self.connections = fanout.connections
        self.publisher = publisher

    def where(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """Where a connection is reached: its domain, stage and management API endpoint."""
        domain, stage = ctx.get("domainName"), ctx.get("stage")
        return {
            "domain": domain,
            "stage": stage,
            "endpoint": self.fanout.endpoint_for(domain, stage),
        }

    def _owned(self, order_id: uuid.UUID, api_key_id: uuid.UUID) -> None:
        if self.store.get_owned_order(order_id, api_key_id) is None:
            raise OrderNotFound(f"order {order_id} does not exist", field="orderId")
        if self.store.key_revoked(api_key_id):  # a socket opened before its key was revoked
            raise ApiKeyRevoked(REVOKED_MESSAGE)

    def connect(self, event: dict[str, Any]) -> dict[str, Any]:
        """`$connect`: record the connection and its key; with `?orderId=`, follow that order."""
        ctx = event["requestContext"]
        query = event.get("queryStringParameters") or {}
        key = header(event.get("headers"), "idempotency-key")
        try:
            api_key_id = authorized_key(event)
            if api_key_id is None:
                raise Unauthorized("connect with your API key (?apiKey= or x-api-key)")
            order_id = parse_order_id(query["orderId"]) if "orderId" in query else None
            if order_id is not None:
                self._owned(order_id, api_key_id)
            check_idempotency_key(key)
        except EngineError as exc:
            return reply(exc.status, {"error": exc.to_dict()})
        at = self.where(ctx)
        self.connections.add(ctx["connectionId"], idempotency_key=key, api_key_id=api_key_id, **at)
        if order_id is not None:
            self.connections.subscribe(ctx["connectionId"], order_id, 0, **at)
            self.publisher.publish_backlog(order_id)
        return reply(200)

    def disconnect(self, connection_id: str) -> None:
        self.connections.remove(connection_id)

    def message(self, event: dict[str, Any]) -> None:
        """A frame on `$default` (an order), `subscribe` or `cancel`; raises EngineError for a
        bad one."""
        ctx = event["requestContext"]
        body = parse_frame(event)
        if ctx["routeKey"] == "subscribe":
            self.subscribe(body, event)
        elif ctx["routeKey"] == "cancel" or body.get("action") == "cancel":
            self.cancel(body, event)
        else:
            self.submit(body, event)

    def _caller(self, event: dict[str, Any]) -> tuple[uuid.UUID, Socket | None]:
        """The frame's API key (the authorizer's context, else the connection row's) and the
        connection row when it had to be read."""
        api_key_id = authorized_key(event)
        row = None
        if api_key_id is None:
            row = self.connections.get(event["requestContext"]["connectionId"])
            api_key_id = row.api_key_id if row else None
        if api_key_id is None:
            raise Unauthorized("this connection has no API key; reconnect with one")
        return api_key_id, row

    def submit(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        ctx = event["requestContext"]
        cid = ctx["connectionId"]
        if body.get("action") is not None:
            raise InvalidRequest(
                f"unknown action {shown(body['action'])}; send an order body, or action "
                "'subscribe' or 'cancel'",
                field="action",
                code="unknown_action",
            )
        key = body.pop("idempotencyKey", None)
        check_idempotency_key(key, "idempotencyKey")
        api_key_id, row = self._caller(event)
        if key is None:
            row = row or self.connections.get(cid)
            key = row.idempotency_key if row else None
        accepted = self.intake.accept(body, key, api_key_id)
        self.fanout.subscribe_and_deliver(cid, accepted.order_id, 0, **self.where(ctx))

    def subscribe(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        ctx = event["requestContext"]
        unknown = sorted(set(body) - SUBSCRIBE_FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field {shown(unknown[0])}", field=unknown[0][:64])
        order_id = parse_order_id(body.get("orderId"))
        from_seq = parse_from_seq(body.get("fromSeq"))
        self._owned(order_id, self._caller(event)[0])
        self.fanout.subscribe_and_deliver(
            ctx["connectionId"], order_id, from_seq, **self.where(ctx)
        )

    def cancel(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """Cancel a limit or sniper order of this connection's key that has not triggered; the
        connection gets the `cancelled` frame (it is subscribed from there if it was not), the
        order's other followers through notify. OrderNotFound / NotCancellable otherwise."""
        ctx = event["requestContext"]
        unknown = sorted(set(body) - CANCEL_FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field {shown(unknown[0])}", field=unknown[0][:64])
        order_id = parse_order_id(body.get("orderId"))
        api_key_id = self._caller(event)[0]
        if self.store.key_revoked(api_key_id):
            raise ApiKeyRevoked(REVOKED_MESSAGE)
        done = self.store.cancel(order_id, api_key_id)
        cid = ctx["connectionId"]
        if self.connections.delivered_seq(cid, order_id) is None:
            self.connections.subscribe(cid, order_id, done.event.seq - 1, **self.where(ctx))
        self.fanout.deliver(cid, order_id)
        announce(self.publisher, done.event)

    def post_error(self, event: dict[str, Any], exc: EngineError) -> None:
        """The error frame; for a revoked key's frame, the last one: the socket is closed."""
        ctx = event["requestContext"]
        endpoint = self.where(ctx)["endpoint"]
        if isinstance(exc, ApiKeyRevoked):
            self.fanout.close(endpoint, ctx["connectionId"], REVOKED_MESSAGE, only_if_known=False)
        else:
            self.fanout.post_frame(endpoint, ctx["connectionId"], {"error": exc.to_dict()})
