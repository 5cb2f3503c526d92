"""HTTP API: submit an order, read one, list them, cancel one, health; the console and the API
docs (`engine.console`). FastAPI behind Mangum (payload v2). (`GET /api/quote` is another
function's: functions/quote. A limit order's limitPrice is held against the pair's quote,
whose code comes from the Solana layer on the first limit order: `engine.spot`.)

Order routes act for the API key the gateway's Lambda authorizer let in (`api.caller`): orders
are created for it, and only its own orders can be read or listed.
"""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from psycopg import OperationalError
from starlette.exceptions import HTTPException

from engine import api, console, db, payloads, rpc
from engine.config import Settings
from engine.errors import EngineError
from engine.intake import Intake
from engine.notify import StatusQueue
from engine.observability import metrics, tracer
from engine.queue import OrdersQueue
from engine.spot import SpotQuotes
from engine.store import Store

logger = Logger(service="submit")
tracing = tracer()
cfg = Settings.from_env()
store = Store(db.open_pool(cfg))
intake = Intake(
    store,
    OrdersQueue.from_settings(cfg),
    chain_slot=functools.partial(rpc.current_slot, cfg.solana_rpc_url),
    limit_quote=SpotQuotes(cfg, store.pool).price,
)
# A cancel is told to notify (the order's WebSocket followers get the `cancelled` frame).
publisher = StatusQueue.from_settings(cfg) if cfg.status_queue_url else None
orders = api.OrdersApi(store, intake, cfg, publisher)
app = FastAPI(
    title="Solana order execution engine",
    version="0.1.0",
    docs_url=None,  # console.mount serves /docs with Swagger UI's files from the layer, not a CDN
    redoc_url=None,
    redirect_slashes=False,  # a redirect would be built from the Host header
    **api.OPENAPI_DOCS,
)
app.add_middleware(api.BodyLimit)
app.add_middleware(api.HeadAsGet)
console.mount(app, cfg)


def _caller(request: Request) -> uuid.UUID:
    return api.caller(request.scope.get("aws.event"))  # Mangum puts the API Gateway event here


# The API key behind the request (401 when none); resolved before the route's own parameters.
Caller = Annotated[uuid.UUID, Depends(_caller)]


@app.exception_handler(EngineError)
async def engine_error(_: Request, exc: EngineError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)


@app.exception_handler(OperationalError)  # Postgres unreachable or restarting; PoolTimeout too
async def database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
    logger.warning("database unavailable", extra={"error": type(exc).__name__})
    return api.database_unavailable_reply()


@app.exception_handler(RequestValidationError)
async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return api.validation_reply(exc)


@app.exception_handler(HTTPException)
async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
    return api.http_error_reply(exc)


@app.post("/api/orders/execute", status_code=202, **api.SUBMIT_DOCS)
async def execute_order(
    request: Request, caller: Caller, idempotency_key: Annotated[str | None, Header()] = None
) -> JSONResponse:
    body = payloads.read_body(request.headers.get("content-type"), await request.body())
    accepted = orders.accept(body, idempotency_key, caller)
    headers = {} if accepted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(orders.accepted_reply(accepted), status_code=202, headers=headers)


@app.get("/api/orders/{order_id}", **api.ORDER_DOCS)
def get_order(caller: Caller, order_id: uuid.UUID) -> dict[str, Any]:
    return orders.order_detail(order_id, caller)


@app.delete("/api/orders/{order_id}", **api.CANCEL_DOCS)
def cancel_order(caller: Caller, order_id: uuid.UUID) -> dict[str, Any]:
    return orders.cancel(order_id, caller)


@app.get("/api/limits", **api.LIMITS_DOCS)
def get_limits(caller: Caller) -> dict[str, Any]:
    return orders.key_limits(caller)


@app.get("/api/orders", **api.LIST_DOCS)
def list_orders(
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    status: Annotated[str | None, Query(**api.STATUS_FILTER_DOCS)] = None,
) -> dict[str, Any]:
    return orders.order_page(limit, cursor, caller, status)


@app.get("/health", **api.HEALTH_DOCS)
def health() -> JSONResponse:
    report, healthy = orders.health()
    return JSONResponse(report, status_code=200 if healthy else 503)


_default_openapi = app.openapi


def openapi() -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = api.truthful_openapi(_default_openapi())
    return app.openapi_schema


app.openapi = openapi  # type: ignore[method-assign]
_mangum = Mangum(app, lifespan="off")


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reply: dict[str, Any] = _mangum(event, context)
    return reply
