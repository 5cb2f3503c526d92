"""WebSocket API: $connect, $disconnect, $default (submit an order), subscribe (replay), cancel.

A plain handler (Mangum does not serve WebSocket events) over `engine.stream`, which holds the
routes and their rules: parse the event, call the route, shape the reply. A bad frame is answered
with an error frame and statusCode 200, so the socket stays open.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger

from engine import db, rpc
from engine.config import Settings
from engine.errors import EngineError
from engine.intake import Intake
from engine.notify import Fanout, StatusQueue
from engine.observability import metrics, tracer
from engine.queue import OrdersQueue
from engine.spot import SpotQuotes
from engine.store import Store
from engine.stream import OrderStream, reply

logger = Logger(service="ws_connect")
tracing = tracer()
cfg = Settings.from_env()
pool = db.open_pool(cfg)
store = Store(pool)
stream = OrderStream(
    store,
    Intake(
        store,
        OrdersQueue.from_settings(cfg),
        chain_slot=functools.partial(rpc.current_slot, cfg.solana_rpc_url),
        limit_quote=SpotQuotes(cfg, pool).price,
    ),
    Fanout.from_settings(pool, cfg),
    StatusQueue.from_settings(cfg),
)


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    route = event["requestContext"]["routeKey"]
    if route == "$connect":
        return stream.connect(event)
    if route == "$disconnect":
        stream.disconnect(event["requestContext"]["connectionId"])
        return reply(200)
    try:
        stream.message(event)
    except EngineError as exc:
        logger.info("error frame", extra={"route": route, "code": exc.code})
        stream.post_error(event, exc)
    return reply(200)
