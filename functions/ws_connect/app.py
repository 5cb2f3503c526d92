"""WebSocket API routes: $connect, $disconnect, $default (submit an order), subscribe (replay).

A plain handler: Mangum does not serve WebSocket events. Replies to the client are posted through
the management API (the routes have no route responses). A frame that is not a valid request gets
an error frame `{"error": {"code", "message", "field"?}}` and statusCode 200: the socket stays.

`$connect ?orderId=ID` subscribes the new connection from seq 0. Nothing can be posted during
`$connect` (API Gateway answers 410), so the handler asks notify to deliver the backlog right
after the upgrade (a delayed status-queue message). A malformed orderId rejects the upgrade with
400, an unknown one with 404.
"""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from engine import notify
from engine.connections import Connections
from engine.errors import EngineError, InvalidRequest, OrderNotFound
from engine.intake import accept_order
from engine.orders import shown
from engine.store import Store

logger = Logger(service="ws_connect")
_store = Store()
_connections = Connections()
SUBSCRIBE_FIELDS = frozenset({"action", "orderId", "fromSeq"})
MAX_FRAME_BYTES = 64 * 1024  # as the HTTP body limit (API Gateway itself allows 128 KB messages)


# -- parsing --------------------------------------------------------------------------------------


def _no_nan(token: str) -> Any:
    raise InvalidRequest(f"{token} is not a number this API accepts")


def _frame(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    size = len(raw) * 3 // 4 if event.get("isBase64Encoded") else len(raw.encode(errors="replace"))
    if size > MAX_FRAME_BYTES:
        raise InvalidRequest(f"the frame is over {MAX_FRAME_BYTES} bytes", code="payload_too_large")
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode("utf-8", errors="replace")
        body = json.loads(raw, parse_float=Decimal, parse_constant=_no_nan)
    except (ValueError, RecursionError):  # RecursionError: JSON nested ~1000 deep
        raise InvalidRequest("the frame is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("a frame must be a JSON object")
    return body


def _order_id(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise InvalidRequest("orderId is required", field="orderId")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest("orderId is not a valid order id", field="orderId") from None


def _from_seq(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest("fromSeq must be an integer >= 0", field="fromSeq")
    return value


def _header(headers: dict[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _where(ctx: dict[str, Any]) -> dict[str, Any]:
    domain, stage = ctx.get("domainName"), ctx.get("stage")
    return {"domain": domain, "stage": stage, "endpoint": notify.endpoint_for(domain, stage)}


def _reply(status: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"statusCode": status}
    if body is not None:
        reply["body"] = json.dumps(body)
        reply["headers"] = {"content-type": "application/json"}
    return reply


# -- routes ---------------------------------------------------------------------------------------


def on_connect(event: dict[str, Any], cid: str, ctx: dict[str, Any]) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    key = _header(event.get("headers"), "idempotency-key")
    try:
        order_id = _order_id(query["orderId"]) if "orderId" in query else None
        if order_id is not None and _store.get_order(order_id) is None:
            raise OrderNotFound(f"order {order_id} does not exist", field="orderId")
        if key is not None and not (0 < len(key) <= 255):
            raise InvalidRequest(
                "Idempotency-Key must be 1 to 255 characters", field="Idempotency-Key"
            )
    except EngineError as exc:
        return _reply(exc.status, {"error": exc.to_dict()})
    where = _where(ctx)
    _connections.add(cid, idempotency_key=key, **where)
    if order_id is not None:
        _connections.subscribe(cid, order_id, 0, **where)
        notify.publish_backlog(order_id)
    return _reply(200)


def on_submit(body: dict[str, Any], cid: str, ctx: dict[str, Any]) -> None:
    if body.get("action") is not None:
        raise InvalidRequest(
            f"unknown action {shown(body['action'])}; send an order body, or action 'subscribe'",
            field="action",
            code="unknown_action",
        )
    key = body.pop("idempotencyKey", None)
    if key is not None and not isinstance(key, str):
        raise InvalidRequest("idempotencyKey must be a string", field="idempotencyKey")
    if key is None:
        row = _connections.get(cid)
        key = row["idempotency_key"] if row else None
    accepted = accept_order(_store, body, key)
    notify.subscribe_and_deliver(_connections, cid, accepted.order_id, 0, **_where(ctx))


def on_subscribe(body: dict[str, Any], cid: str, ctx: dict[str, Any]) -> None:
    unknown = sorted(set(body) - SUBSCRIBE_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field {shown(unknown[0])}", field=unknown[0][:64])
    order_id = _order_id(body.get("orderId"))
    from_seq = _from_seq(body.get("fromSeq"))
    if _store.get_order(order_id) is None:
        raise OrderNotFound(f"order {order_id} does not exist", field="orderId")
    notify.subscribe_and_deliver(_connections, cid, order_id, from_seq, **_where(ctx))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    route, cid = ctx["routeKey"], ctx["connectionId"]
    if route == "$connect":
        return on_connect(event, cid, ctx)
    if route == "$disconnect":
        _connections.remove(cid)
        return _reply(200)
    try:
        body = _frame(event)
        if route == "subscribe":
            on_subscribe(body, cid, ctx)
        else:
            on_submit(body, cid, ctx)
    except EngineError as exc:
        logger.info("error frame", extra={"route": route, "code": exc.code})
        notify.post_frame(_where(ctx)["endpoint"], cid, {"error": exc.to_dict()})
    return _reply(200)
