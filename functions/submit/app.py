"""HTTP API: submit an order, read one, list them, health. FastAPI behind Mangum (payload v2)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from engine import api
from engine.errors import EngineError, InvalidRequest
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from starlette.exceptions import HTTPException

logger = Logger(service="submit")
app = FastAPI(title="Solana order execution engine", version="0.1.0", **api.OPENAPI_DOCS)
app.add_middleware(api.BodyLimit)


@app.exception_handler(EngineError)
async def engine_error(_: Request, exc: EngineError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)


@app.exception_handler(RequestValidationError)
async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return api.validation_reply(exc)


@app.exception_handler(HTTPException)
async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
    return api.http_error_reply(exc)


@app.post("/api/orders/execute", status_code=202, **api.SUBMIT_DOCS)
async def execute_order(
    request: Request, idempotency_key: Annotated[str | None, Header()] = None
) -> JSONResponse:
    if "json" not in request.headers.get("content-type", "application/json"):
        raise InvalidRequest("Content-Type must be application/json", code="unsupported_media_type")
    try:
        body = json.loads(await request.body(), parse_float=Decimal, parse_constant=api.no_nan)
    except (ValueError, RecursionError):  # RecursionError: JSON nested ~1000 deep
        raise InvalidRequest("the request body is not valid JSON") from None
    accepted = api.accept(body, idempotency_key)
    headers = {} if accepted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(api.accepted_reply(accepted), status_code=202, headers=headers)


@app.get("/api/orders/{order_id}", **api.ORDER_DOCS)
def get_order(order_id: uuid.UUID) -> dict[str, Any]:
    return api.order_detail(order_id)


@app.get("/api/orders", **api.LIST_DOCS)
def list_orders(
    limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: str | None = None
) -> dict[str, Any]:
    return api.order_page(limit, cursor)


@app.get("/health", **api.HEALTH_DOCS)
def health() -> JSONResponse:
    report, healthy = api.health()
    return JSONResponse(report, status_code=200 if healthy else 503)


_default_openapi = app.openapi


def openapi() -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = api.truthful_openapi(_default_openapi())
    return app.openapi_schema


app.openapi = openapi  # type: ignore[method-assign]
_mangum = Mangum(app, lifespan="off")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    api.ensure_event_loop()  # Mangum needs one; a runner's worker thread has none
    return _mangum(event, context)  # type: ignore[arg-type]
