"""The HTTP contract: reply shapes, error shapes, body limits and OpenAPI docs for `submit`."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import limits
from engine.config import Settings
from engine.errors import OrderNotFound, Unauthorized
from engine.intake import Accepted, Intake
from engine.notify import Publisher, announce
from engine.orders import ORDER_TYPES, OrderBody, Status, explorer_link, iso_z
from engine.store import Order, Store

MAX_BODY_BYTES = 64 * 1024


# -- replies --------------------------------------------------------------------------------------


def caller(event: dict[str, Any] | None) -> uuid.UUID:
    """The API key the HTTP API's Lambda authorizer let in (payload 2.0 simple response: its
    context is at `requestContext.authorizer.lambda`). Order routes never run without one."""
    context = ((event or {}).get("requestContext") or {}).get("authorizer") or {}
    key_id = (context.get("lambda") or {}).get("apiKeyId")
    try:
        return uuid.UUID(str(key_id)) if key_id else _unauthorized()
    except ValueError:
        return _unauthorized()


def _unauthorized() -> uuid.UUID:
    raise Unauthorized("send your API key in the x-api-key header")


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(Decimal(value).normalize(), "f")


def order_terms(order: Order) -> dict[str, Any]:
    """What a limit or sniper order waits for (null on a market order), and how many times it
    triggered."""
    return {
        "orderType": order.order_type,
        "limitPrice": _decimal_text(order.limit_price),
        "expiresAt": iso_z(order.expires_at) if order.expires_at else None,
        "poolVenue": order.pool_venue,
        "maxPrice": _decimal_text(order.max_price),
        "minLiquidity": _decimal_text(order.min_liquidity),
        "triggers": order.triggers,
    }


def present_order(
    order: Order, events: list[dict[str, Any]], cluster: str, custom_url: str | None = None
) -> dict[str, Any]:
    """The order as the API shows it: request, status, routing, amounts, tx, failure, events."""

    def amount(value: Decimal | None, scale: int = 0) -> str | None:
        return None if value is None else format(Decimal(value).scaleb(-scale).normalize(), "f")

    decimals_out = order.decimals_out or 0
    # A failed order shows a transaction only if it landed (with an error: the user paid its
    # fee), and no output: nothing came out of it. The quotes still show what was expected.
    failed = order.status is Status.FAILED
    signature = None if failed and order.landed_slot is None else order.tx_signature
    amount_out = None if failed else order.amount_out
    return {
        "orderId": str(order.id),
        "status": str(order.status),
        "createdAt": order.created_at.isoformat(),
        "updatedAt": order.updated_at.isoformat(),
        "request": order.request,
        "venue": order.venue,
        "pool": order.pool,
        "quotes": order.quotes,
        "route": order.route,
        "amountIn": amount(order.amount_in),
        "amountOut": amount(amount_out, decimals_out),
        "minAmountOut": amount(order.min_amount_out, decimals_out),
        "txHash": signature,
        "explorerUrl": explorer_link(signature, cluster, custom_url) if signature else None,
        "slot": order.landed_slot,
        # What the order got, read from its landed transaction (confirmed orders).
        "filled": order.filled,
        # What its landed transaction paid (confirmed, or failed on chain).
        "feeLamports": order.fee_lamports if order.landed_slot is not None else None,
        "attempts": order.attempts,
        "error": (
            {"code": order.failure_code, "message": order.failure_reason}
            if order.failure_code
            else None
        ),
        **order_terms(order),
        "events": events,
    }


class OrdersApi:
    """What the HTTP routes do, over one container's store, intake and settings."""

    def __init__(
        self, store: Store, intake: Intake, cfg: Settings, publisher: Publisher | None = None
    ) -> None:
        self.store = store
        self.intake = intake
        self.cfg = cfg
        self.publisher = publisher  # tells notify about a cancel (WebSocket followers)

    def ws_url_for(self, order_id: uuid.UUID) -> str | None:
        base = self.cfg.ws_url
        return f"{base}?orderId={order_id}" if base else None

    def accept(self, body: Any, idempotency_key: str | None, api_key_id: uuid.UUID) -> Accepted:
        return self.intake.accept(body, idempotency_key, api_key_id)

    def accepted_reply(self, accepted: Accepted) -> dict[str, Any]:
        return {
            "orderId": str(accepted.order_id),
            "status": accepted.status,
            "wsUrl": self.ws_url_for(accepted.order_id),
        }

    def order_detail(self, order_id: uuid.UUID, api_key_id: uuid.UUID) -> dict[str, Any]:
        order = self.store.get_owned_order(order_id, api_key_id)  # another key's: as unknown
        if order is None:
            raise OrderNotFound(f"order {order_id} does not exist", field="orderId")
        events = [e.frame() for e in self.store.events(order_id)]
        return present_order(order, events, self.cfg.solana_cluster, self.cfg.explorer_custom_url)

    def cancel(self, order_id: uuid.UUID, api_key_id: uuid.UUID) -> dict[str, Any]:
        """`DELETE /api/orders/{id}`: OrderNotFound (404) or NotCancellable (409), else the
        order is `cancelled` and its followers get the frame."""
        done = self.store.cancel(order_id, api_key_id)
        announce(self.publisher, done.event)
        return {"orderId": str(order_id), "status": str(done.order.status)}

    def key_limits(self, api_key_id: uuid.UUID) -> dict[str, Any]:
        """`GET /api/limits`: the key's risk limits and what remains of them."""
        return limits.report(self.store.pool, api_key_id)

    def order_page(
        self, limit: int, cursor: str | None, api_key_id: uuid.UUID, status: str | None = None
    ) -> dict[str, Any]:
        orders, next_cursor = self.store.list_orders(limit, cursor, api_key_id, status)
        shown = [
            present_order(o, [], self.cfg.solana_cluster, self.cfg.explorer_custom_url)
            for o in orders
        ]
        for o in shown:
            del o["events"]  # the list is a summary; the detail route has the history
        return {"orders": shown, "nextCursor": next_cursor}

    def rpc_health(self) -> dict[str, Any]:
        """Solana JSON-RPC `getHealth`, with plain httpx: this function never loads solana-py."""
        import httpx

        try:
            reply = httpx.post(
                self.cfg.solana_rpc_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
                timeout=3.0,
            ).json()
        except (httpx.HTTPError, ValueError) as exc:
            return {"ok": False, "error": type(exc).__name__}
        if reply.get("result") == "ok":
            return {"ok": True}
        return {"ok": False, "error": str((reply.get("error") or {}).get("message", "unhealthy"))}

    def health(self) -> tuple[dict[str, Any], bool]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            self.store.ping()
            checks["database"] = {"ok": True}
        except Exception as exc:  # a health report names the failure; it never raises
            checks["database"] = {"ok": False, "error": type(exc).__name__}
        try:
            checks["queue"] = {"ok": True, "depth": self.intake.queue.depth()}
        except Exception as exc:
            checks["queue"] = {"ok": False, "error": type(exc).__name__}
        checks["rpc"] = self.rpc_health()
        healthy = all(c["ok"] for c in checks.values())
        return {"status": "ok" if healthy else "degraded", "checks": checks}, healthy


# -- errors ---------------------------------------------------------------------------------------


def database_unavailable_reply() -> JSONResponse:
    """503 before the order was accepted. Its insert is one transaction, so at worst it
    committed just as the connection broke: a retry with the same Idempotency-Key is exact."""
    body = {
        "code": "database_unavailable",
        "message": "the order store is unavailable; retry shortly (with the same Idempotency-Key)",
    }
    return JSONResponse({"error": body}, status_code=503, headers={"Retry-After": "2"})


def validation_reply(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = loc[-1] if loc else None
    if field == "order_id":
        field = "orderId"
    message = f"{field}: {first.get('msg', 'invalid')}" if field else "invalid request"
    body: dict[str, Any] = {"code": "invalid_request", "message": message}
    if field:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=400)


def http_error_reply(exc: HTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    code = codes.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": {"code": code, "message": str(exc.detail)}},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over 64 KiB with 413 before reading them whole (API Gateway allows 10 MB)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _too_large(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(send)


class HeadAsGet:
    """HEAD wherever GET is served (RFC 9110 asks for it; FastAPI routes declare GET only): the
    GET route runs and its status and headers go out, its body does not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


async def _too_large(send: Send) -> None:
    response = JSONResponse(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"the body is over {MAX_BODY_BYTES} bytes",
            }
        },
        status_code=413,
    )
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


# -- OpenAPI --------------------------------------------------------------------------------------


class Doc(BaseModel):
    """A reply's shape, for the OpenAPI document only (handlers return plain dicts): built when
    the document is first asked for, not at every cold start (19 models: about 6 ms of
    engine.api's import, measured)."""

    model_config = ConfigDict(defer_build=True)


class ErrorDetail(Doc):
    code: str
    message: str
    field: str | None = None


class ErrorReply(Doc):
    error: ErrorDetail


class AcceptedReply(Doc):
    orderId: str
    status: str
    wsUrl: str | None


class FailureDetail(Doc):
    code: str
    message: str


class FilledLeg(Doc):
    venue: str
    pool: str
    amountIn: str = Field(
        description="the leg's input: its quote; for exact out, what its pool's input vault"
        " received (less an input Token-2022 transfer fee)"
    )
    amountOut: str = Field(description="what the leg's pool paid out")
    quotedAmountIn: str | None = Field(
        default=None, description="exact out: the input the leg was quoted to take"
    )


class Filled(Doc):
    """A confirmed order's fill, from the landed transaction's balance changes."""

    amountIn: str = Field(examples=["0.01"], description="tokenIn that left the wallet")
    amountOut: str = Field(examples=["1.503412"], description="tokenOut that reached it")
    price: str = Field(examples=["150.3412"], description="tokenOut per 1 tokenIn")
    quotedAmountOut: str | None = Field(description="the chosen venue's quoted amountOut")
    slippageBps: float | None = Field(
        description="amountOut against the quote, in basis points; positive = worse"
    )
    feeLamports: int = Field(description="the transaction's fee (base + priority)")
    priorityFeeLamports: int = Field(description="its priority part: CU limit x price")
    computeUnits: int = Field(description="compute units the transaction used")
    slot: int = Field(description="the slot it landed in")
    slotsToLand: int | None = Field(description="slots from its first send to landing")
    sends: int = Field(description="how many times its bytes were sent")
    legs: list[FilledLeg] | None = Field(
        default=None,
        description="each leg of the route: what its pool paid out (its output vault's balance"
        " change in the landed transaction)",
    )


class RouteLeg(Doc):
    """One swap of a route, quoted at its own amount."""

    venue: str
    pool: str
    amountIn: str = Field(description="tokenIn this leg swaps")
    quotedAmountOut: str = Field(description="what its pool pays for it, exactly")
    minAmountOut: str | None = Field(
        default=None, description="the leg's own minimum: its quote less the order's slippage"
    )
    feeAmount: str = Field(description="the pool's trade fee on the leg, in tokenIn")
    priceImpactPct: float
    quotedAmountIn: str | None = Field(
        default=None, description="exact out: the input the leg's exact-out swap takes"
    )
    maxAmountIn: str | None = Field(
        default=None,
        description="exact out: the most the leg's swap may take (its quote plus slippage; a"
        " limit order's legs share amountOut / limitPrice)",
    )


class Route(Doc):
    """What the order executes: one pool, or a split over several pools in one transaction."""

    legs: list[RouteLeg]
    amountOut: str = Field(description="the legs' quoted outputs, summed")
    otherAmountThreshold: str | None = Field(
        default=None, description="the legs' minimums, summed: the order's minimum output"
    )
    priceImpactPct: float = Field(description="the legs' impacts weighted by their inputs")
    gainBps: float = Field(
        description="the split's output net of the transaction's cost over the best single"
        " pool's, in basis points (0: one leg); for exact out, the input it saves"
    )
    exactOut: bool | None = Field(default=None, description="true for an exact-out route")
    quotedAmountIn: str | None = Field(
        default=None, description="exact out: the legs' quoted inputs, summed"
    )
    maxAmountIn: str | None = Field(
        default=None, description="exact out: the legs' maximum inputs, summed"
    )
    lookupTable: str | None = Field(
        default=None,
        description="the engine wallet's address lookup table the transaction uses (a route of"
        " more than two legs, MAX_SPLIT_LEGS 3-4)",
    )


class OrderSummary(Doc):
    orderId: str
    status: str = Field(
        description="pending, watching, triggered, routing, building, submitted, confirmed,"
        " failed, expired or cancelled",
        json_schema_extra={"enum": [s.value for s in Status]},
    )
    createdAt: str
    updatedAt: str
    request: dict[str, Any] = Field(description="what was asked, `poolId` included if pinned")
    venue: str | None
    pool: str | None = Field(description="the pool routing chose (a split's largest leg)")
    quotes: list[dict[str, Any]]
    route: Route | None = Field(
        default=None, description="the route routing chose: its legs (one, or a split over several)"
    )
    amountIn: str | None
    amountOut: str | None = Field(
        description="the chosen venue's quoted output until the order ends (none once failed)"
    )
    minAmountOut: str | None
    txHash: str | None = Field(
        description="the order's transaction; on a failed order only if it landed (fee paid)"
    )
    explorerUrl: str | None
    slot: int | None = Field(description="the slot its transaction landed in")
    filled: Filled | None = Field(
        description="what a confirmed order got, read from its landed transaction"
    )
    feeLamports: int | None = Field(description="the fee its landed transaction paid")
    attempts: int
    error: FailureDetail | None
    orderType: str = Field(json_schema_extra={"enum": list(ORDER_TYPES)})
    limitPrice: str | None = Field(description="limit orders")
    expiresAt: str | None = Field(description="limit and sniper orders")
    poolVenue: str | None = Field(description="sniper orders")
    maxPrice: str | None = Field(description="sniper orders")
    minLiquidity: str | None = Field(description="sniper orders")
    triggers: int = Field(description="how many times the watcher triggered it")


class OrderDetail(OrderSummary):
    events: list[dict[str, Any]] = Field(description="status frames {orderId, seq, status, at}")


class OrderPage(Doc):
    orders: list[OrderSummary]
    nextCursor: str | None


class CancelReply(Doc):
    orderId: str
    status: str = Field(examples=["cancelled"])


class QuoteReply(Doc):
    tokenIn: str
    tokenOut: str
    mintIn: str
    mintOut: str
    amountIn: str
    quotes: list[dict[str, Any]] = Field(
        description="every pool of the pair, as the routing frame shows them: the quoted ones"
        " (amountOut, feeUnits, priceImpactPct, netOutUnits, ..., `chosen` on the best) and"
        " the ones that cannot trade now (`skipped` with a code and message)"
    )
    venue: str = Field(description="the best pool's venue")
    pool: str = Field(description="the best pool")
    amountOut: str = Field(description="what the best pool pays for amountIn, in tokenOut")
    price: str = Field(
        description="amountOut / amountIn: tokenOut per 1 tokenIn at this size, fees and price"
        " impact included (what a limit order's limitPrice is compared with)"
    )
    slot: int = Field(description="the slot the pools were read at")
    exactOut: bool | None = Field(
        default=None,
        description="true when amountOut was asked: amountIn is then the best pool's input",
    )
    route: Route = Field(
        description="the route a market order would execute now: the split when it beats the"
        " best single pool by more than MIN_SPLIT_GAIN_BPS, else the best pool"
    )
    split: Route | None = Field(
        default=None,
        description="the best split over two pools (even when it does not beat the best pool),"
        " with its gainBps; none when the pair has fewer than two pools that can trade",
    )


class MintLimitReply(Doc):
    mint: str
    token: str = Field(description="its symbol, or the mint")
    maxIn: str = Field(description="the most one order may sell (token units)")
    maxInPer24h: str = Field(description="the most the key's orders may sell in 24 h")
    usedIn24h: str = Field(description="what its orders of the last 24 h take of it")
    remainingIn24h: str


class PositionReply(Doc):
    mint: str
    token: str
    bought: str = Field(description="what the key's own confirmed fills bought, less sold")
    inOpenOrders: str = Field(description="what its live orders would sell of it")
    remaining: str = Field(description="what it may still sell (a mint with no limit)")


class LimitsReply(Doc):
    maxSlippage: str = Field(description="percent: the most slippage an order may ask for")
    limitPriceGuard: str = Field(
        description="percent: a limit order whose limitPrice is more than this below the"
        " pair's quote is refused at submit (and fails `limit_price_guard` if the price has"
        " moved that far when it triggers)"
    )
    mints: list[MintLimitReply] = Field(description="the mints the key may sell, and how much")
    positions: list[PositionReply] = Field(
        description="mints without a limit the key may sell only up to what its fills bought"
    )


class HealthCheck(Doc):
    ok: bool
    error: str | None = None
    depth: int | None = None


class HealthReply(Doc):
    status: str = Field(description="ok or degraded")
    checks: dict[str, HealthCheck]


class GatewayReply(Doc):
    message: str = Field(examples=["Unauthorized"])


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorReply, "description": "invalid request"},
    413: {"model": ErrorReply, "description": "body over 64 KiB"},
}
# Answered by API Gateway's authorizer before the function runs (HTTP API's own body shape).
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": GatewayReply, "description": "no x-api-key header"},
    403: {"model": GatewayReply, "description": "unknown or revoked API key"},
}
API_KEY_SCHEME = {"ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}
OPENAPI_DOCS: dict[str, Any] = {
    "description": "Market, limit and sniper orders routed to the best Solana DEX price; "
    "status over WebSocket. Every /api route needs an API key in the x-api-key header."
}
_SECURED: dict[str, Any] = {"security": [{"ApiKey": []}]}
SUBMIT_DOCS: dict[str, Any] = {
    "summary": "Submit a market, limit or sniper order",
    "response_model": AcceptedReply,
    "responses": {
        **_ERRORS,
        400: {
            "model": ErrorReply,
            "description": "invalid request (`field` names the culprit); `unknown_pool` when"
            " `poolId` is known not to be a pool of the pair",
        },
        **_AUTH_ERRORS,
        403: {
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/GatewayReply"},
                            {"$ref": "#/components/schemas/ErrorReply"},
                        ]
                    }
                }
            },
            "description": "the gateway's answer to an unknown or revoked key"
            ' (`{"message": "Forbidden"}`); `api_key_revoked` (revoked since the'
            " authorizer's cached answer); `mint_not_allowed`: the key has no limit for"
            " selling tokenIn and its own fills did not buy that much (`limit`, `remaining`)",
        },
        409: {"model": ErrorReply, "description": "Idempotency-Key reused with another body"},
        415: {
            "model": ErrorReply,
            "description": "`unsupported_media_type`: a Content-Type (or charset) this API does"
            " not read as UTF-8 JSON",
        },
        422: {
            "model": ErrorReply,
            "description": "over one of the key's limits (`limit` names it, `remaining` is what"
            " is left): `order_limit_exceeded` (maxIn), `daily_limit_exceeded` (maxInPer24h),"
            " `slippage_limit_exceeded` (maxSlippage)",
        },
        429: {
            "model": ErrorReply,
            "description": "the key's in-flight order limit (`too_many_orders_in_flight`) or,"
            " for limit and sniper orders, its open order limit (`too_many_open_orders`), or"
            " for a sniper order on a new pair, its sniper pairs (`too_many_sniper_pairs`)",
        },
        503: {
            "model": ErrorReply,
            "description": "queue unavailable, or (a sniper order) the Solana RPC did not"
            " answer its slot; order not accepted",
        },
    },
    "openapi_extra": {
        **_SECURED,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OrderBody.model_json_schema()}},
        },
    },
}
ORDER_DOCS: dict[str, Any] = {
    "summary": "An order with its quotes, transaction and every status event",
    "response_model": None,  # documented below; the handler returns present_order's dict
    "responses": {
        200: {"model": OrderDetail},
        **_ERRORS,
        **_AUTH_ERRORS,
        404: {"model": ErrorReply, "description": "unknown order, or another key's"},
    },
    "openapi_extra": _SECURED,
}
CANCEL_DOCS: dict[str, Any] = {
    "summary": "Cancel a limit or sniper order that has not triggered",
    "response_model": CancelReply,
    "responses": {
        **_ERRORS,
        **_AUTH_ERRORS,
        404: {"model": ErrorReply, "description": "unknown order, or another key's"},
        409: {
            "model": ErrorReply,
            "description": "`not_cancellable`: a market order, or one that triggered or ended",
        },
    },
    "openapi_extra": _SECURED,
}
LIST_DOCS: dict[str, Any] = {
    "summary": "Orders, newest first",
    "response_model": None,
    "responses": {200: {"model": OrderPage}, **_ERRORS, **_AUTH_ERRORS},
    "openapi_extra": _SECURED,
}
LIMITS_DOCS: dict[str, Any] = {
    "summary": "The calling key's risk limits and what remains of them",
    "response_model": LimitsReply,
    "responses": {**_ERRORS, **_AUTH_ERRORS},
    "openapi_extra": _SECURED,
}
STATUS_FILTER_DOCS: dict[str, Any] = {
    "description": "only orders in this status now (400 on `status` for an unknown one)",
    "json_schema_extra": {"enum": [s.value for s in Status]},
}
HEALTH_DOCS: dict[str, Any] = {
    "summary": "Database, queue and RPC health",
    "responses": {
        200: {"model": HealthReply, "description": "every dependency is up"},
        413: _ERRORS[413],
        503: {"model": HealthReply, "description": "a dependency is down"},
    },
}


def _schema_ref(spec: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    """`model` in the spec's components (with the models it uses); its $ref."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json_reply(spec: dict[str, Any], model: type[BaseModel], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _schema_ref(spec, model)}},
    }


def add_quote_operation(spec: dict[str, Any]) -> None:
    """`GET /api/quote`, which functions/quote serves (it needs the Solana layer, which this
    function does not carry), documented with the rest of the API."""

    def query(name: str, example: str, description: str, required: bool = True) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": required,
            "schema": {"type": "string", "minLength": 1, "maxLength": 64},
            "example": example,
            "description": description,
        }

    error = _json_reply(spec, ErrorReply, "")
    spec.setdefault("paths", {})["/api/quote"] = {
        "get": {
            "summary": "Every pool's quote for a pair and amount, without trading",
            "description": "What routing would see now: each pool's quote (or why it cannot"
            " trade), the best marked `chosen`. Use it to set a limit order's limitPrice.",
            "operationId": "quote",
            **_SECURED,
            "parameters": [
                query("tokenIn", "SOL", "symbol (SOL, USDC) or base58 mint"),
                query("tokenOut", "USDC", "symbol (SOL, USDC) or base58 mint"),
                query(
                    "amountIn", "0.01", "decimal units of tokenIn (or amountOut)", required=False
                ),
                query(
                    "amountOut",
                    "1.5",
                    "exact out, instead of amountIn: decimal units of tokenOut; each pool's"
                    " quote is then the input it needs, the least `chosen`, and `amountIn` the"
                    " best pool's input; `route` and `split` share the output over two pools"
                    " when that needs less input",
                    required=False,
                ),
            ],
            "responses": {
                "200": _json_reply(spec, QuoteReply, "the quotes"),
                "400": {**error, "description": "invalid request (`field` names the culprit)"},
                **{
                    str(code): _json_reply(spec, GatewayReply, str(reply["description"]))
                    for code, reply in _AUTH_ERRORS.items()
                },
                "422": {
                    **error,
                    "description": "the pair cannot be quoted: `no_route`, `unknown_mint`,"
                    " `invalid_account`, `amount_too_small`, `invalid_amount`",
                },
                "503": {**error, "description": "the Solana RPC did not answer"},
            },
        }
    }


def truthful_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """Drop the 422 FastAPI documents by default: request validation errors are 400 here. Add
    the quote operation (served by another function of the same API)."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in str(responses.get("422", "")):
                responses.pop("422")  # FastAPI's own; ours (the key's limits) stay
    schemas = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    spec.setdefault("components", {})["securitySchemes"] = API_KEY_SCHEME
    add_quote_operation(spec)
    return spec
