"""The order domain: what a valid market, limit or sniper order is, the statuses an order goes
through, and which status changes are legal.

One vocabulary (DESIGN.md "One vocabulary"), defined here once and used everywhere else (the
in-flight and open-order limits, list filters, the console, notify's clients, metrics):
- `TERMINAL`: confirmed, failed, expired, cancelled. Nothing happens to the order any more.
- `IN_FLIGHT` (counts against a key's `max_in_flight`): pending (a market order not routed
  yet), triggered, routing, building, submitted.
- `OPEN` (counts against a key's `max_open_orders`): watching.
- `CANCELLABLE` (`DELETE /api/orders/{id}`): pending and watching, for limit and sniper orders.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine import base58
from engine.errors import IllegalTransition, InvalidRequest
from engine.tokens import BY_MINT, NOT_MINTS, REGISTRY, Token

MAX_SLIPPAGE = Decimal(50)
DEFAULT_SLIPPAGE = Decimal("0.5")
ORDER_TYPES = ("market", "limit", "sniper")
WATCHED_TYPES = ("limit", "sniper")  # stored as `watching` until the watcher triggers them
VENUE_NAMES = ("raydium_cpmm", "meteora_damm_v2")  # config.VENUE_NAMES (config imports us not)
MAX_EXPIRY = timedelta(days=30)
# Decimals assumed for a mint outside the registry until the chain tells us; 9 is the most an
# SPL mint commonly has, so validation never rejects a precision the chain would accept.
UNKNOWN_MINT_DECIMALS = 9
U64_MAX = 2**64 - 1
_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_COMMON = {"tokenIn", "tokenOut", "amountIn", "orderType", "baseIn", "maxPriorityFeeLamports"}
# Exact-out (`amountOut` instead of `amountIn`): market and limit orders. A sniper order buys
# with an exact input: it cannot know a new pool's price before it finds it.
EXACT_OUT_TYPES = ("market", "limit")
MAX_FEE_CAP = 10**12  # lamports (1,000 SOL): beyond any sane priority fee, inside a bigint
# The fields each order type takes; a field of another type is a 400 naming it.
_FIELDS = {
    "market": _COMMON | {"slippage", "poolId", "amountOut"},
    "limit": _COMMON | {"limitPrice", "expiresAt", "poolId", "amountOut"},
    "sniper": _COMMON | {"slippage", "expiresAt", "poolVenue", "maxPrice", "minLiquidity"},
}
_ALL_FIELDS = set().union(*_FIELDS.values())
# A decimal as text: ASCII digits only (Decimal() alone also takes "1_000" and Arabic-Indic digits).
_DECIMAL_TEXT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII)
# No amount or percentage is beyond 10^+-64; the bound also keeps normalize()/scaleb() inside the
# decimal context (1E+999999999999 raised Overflow, a 500; 1E-999999999 normalized to 0).
MAX_MAGNITUDE = 64
# The digits a decimal keeps here (Python's default decimal context: what normalize() and the
# engine's arithmetic round to). A number with more significant digits is refused, not rounded.
SIGNIFICANT_DIGITS = 28
_ASCII_DIGITS = re.compile(r"^[0-9]+$", re.ASCII)
# `expiresAt`, exactly the formats docs/order-types.md lists: a calendar date, T, hours and
# minutes, optional seconds and up to 6 fraction digits (microseconds: what the engine keeps),
# then Z or +-HH:MM.
_EXPIRY = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$",
    re.ASCII,
)


class Status(StrEnum):
    PENDING = "pending"
    WATCHING = "watching"
    TRIGGERED = "triggered"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def in_flight(self) -> bool:
        return self in IN_FLIGHT

    @property
    def open(self) -> bool:
        return self in OPEN


TERMINAL = frozenset({Status.CONFIRMED, Status.FAILED, Status.EXPIRED, Status.CANCELLED})
IN_FLIGHT = frozenset(
    {Status.PENDING, Status.TRIGGERED, Status.ROUTING, Status.BUILDING, Status.SUBMITTED}
)
OPEN = frozenset({Status.WATCHING})
CANCELLABLE = frozenset({Status.PENDING, Status.WATCHING})
# Revoking a key cancels, in the revocation's transaction, each of its orders that is open or
# not sent yet (DESIGN "Guarantees"): nothing of it is triggered or sent afterwards. A
# `submitted` order's transaction may land: it is followed to its end.
ENDED_BY_REVOCATION = frozenset(
    {Status.PENDING, Status.WATCHING, Status.TRIGGERED, Status.ROUTING, Status.BUILDING}
)
REVOKED_CODE = "api_key_revoked"
# A limit order's swap refused for price goes back to `watching` from wherever the refusal
# came: routing (the quote no longer meets the limit), building (a simulation refused it) or
# submitted (the transaction landed with the program's slippage error, or expired unlanded).
REWATCH_FROM = frozenset({Status.ROUTING, Status.BUILDING, Status.SUBMITTED})

# The arrows of DESIGN.md. SUBMITTED -> SUBMITTED is a re-submission with a new signature, allowed
# only after the previous transaction's blockhash expired without it landing. A limit or sniper
# order is stored `pending` and moved to `watching` in the same transaction; the watcher moves it
# to `triggered`, and the executor routes it from there as it routes a pending market order.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset(
        {Status.ROUTING, Status.FAILED, Status.WATCHING, Status.EXPIRED, Status.CANCELLED}
    ),
    Status.WATCHING: frozenset({Status.TRIGGERED, Status.EXPIRED, Status.CANCELLED}),
    # triggered, routing, building -> cancelled: only a key's revocation (ENDED_BY_REVOCATION)
    Status.TRIGGERED: frozenset({Status.ROUTING, Status.FAILED, Status.CANCELLED}),
    Status.ROUTING: frozenset({Status.BUILDING, Status.FAILED, Status.WATCHING, Status.CANCELLED}),
    Status.BUILDING: frozenset(
        {Status.SUBMITTED, Status.FAILED, Status.WATCHING, Status.CANCELLED}
    ),
    Status.SUBMITTED: frozenset(
        {Status.SUBMITTED, Status.CONFIRMED, Status.FAILED, Status.WATCHING}
    ),
    Status.CONFIRMED: frozenset(),
    Status.FAILED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def statuses(group: frozenset[Status]) -> list[str]:
    """A set of statuses as SQL parameters (`status = ANY(%s)`), in the enum's order."""
    return [s.value for s in Status if s in group]


def check_transition(current: Status, new: Status) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"an order cannot go from {current} to {new}")


@dataclass(frozen=True)
class OrderRequest:
    token_in: Token
    token_out: Token
    # Exact in: what it sells. Exact out (`amount_out`): the most it may sell, known at submit
    # for a limit order (amountOut / limitPrice, rounded down), None for a market order until
    # routing sets it (the quote plus slippage: `maxAmountIn`).
    amount_in: Decimal | None
    slippage: Decimal | None  # None on a limit order: its limit is its worst price
    order_type: str = "market"
    pool_id: str | None = None  # the one pool routing may use (None: the best of every pool)
    # limit: the least tokenOut per 1 tokenIn accepted (fees and price impact included)
    limit_price: Decimal | None = None
    expires_at: datetime | None = None  # limit and sniper: when watching ends (`expired`)
    # sniper: only pools of this venue; not above this price (tokenIn per tokenOut); only pools
    # holding at least this much tokenIn
    pool_venue: str | None = None
    max_price: Decimal | None = None
    min_liquidity: Decimal | None = None
    max_priority_fee_lamports: int | None = None  # the order's own cap (None: the engine's)
    amount_out: Decimal | None = None  # exact out: what it buys, exactly (tokenOut units)

    @property
    def amount_in_base_units(self) -> int:
        if self.amount_in is None:
            raise ValueError("an exact-out market order's input is set at routing")
        return int(self.amount_in.scaleb(self.token_in.decimals))

    @property
    def watched(self) -> bool:
        """Stored `watching` until the watcher triggers it (limit and sniper orders)."""
        return self.order_type in WATCHED_TYPES

    def to_json(self) -> dict[str, str]:
        body = {
            "tokenIn": self.token_in.symbol,
            "tokenOut": self.token_out.symbol,
            "mintIn": self.token_in.mint,
            "mintOut": self.token_out.mint,
            "orderType": self.order_type,
        }
        if self.amount_out is not None:  # exact out: amountIn is the engine's, not asked
            body["amountOut"] = _plain(self.amount_out)
        elif self.amount_in is not None:
            body["amountIn"] = _plain(self.amount_in)
        if self.slippage is not None:
            body["slippage"] = _plain(self.slippage)
        # Only when set, so a market order's fingerprint (idempotency) is what it always was.
        optional = {
            "poolId": self.pool_id,
            "limitPrice": _plain(self.limit_price) if self.limit_price is not None else None,
            "expiresAt": iso_z(self.expires_at) if self.expires_at is not None else None,
            "poolVenue": self.pool_venue,
            "maxPrice": _plain(self.max_price) if self.max_price is not None else None,
            "minLiquidity": (
                _plain(self.min_liquidity) if self.min_liquidity is not None else None
            ),
            "maxPriorityFeeLamports": (
                str(self.max_priority_fee_lamports)
                if self.max_priority_fee_lamports is not None
                else None
            ),
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def fingerprint(self) -> str:
        """Stable hash of what the order asks for: same key + same fingerprint = same order."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the microsecond at most (what `expiresAt` is shown as)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def limit_min_out_units(amount_in: Decimal, limit_price: Decimal, decimals_out: int) -> int:
    """A limit order's minimum output in tokenOut base units: amountIn x limitPrice, rounded
    up (a swap paying one unit less than the limit is below it)."""
    exact = (Decimal(amount_in) * Decimal(limit_price)).scaleb(decimals_out)
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def limit_max_in(amount_out: Decimal, limit_price: Decimal, decimals_in: int) -> Decimal:
    """An exact-out limit order's most input, in tokenIn token units: amountOut / limitPrice,
    rounded down to a base unit (one unit more would pay above the limit)."""
    exact = (Decimal(amount_out) / Decimal(limit_price)).scaleb(decimals_in)
    return exact.to_integral_value(rounding=ROUND_FLOOR).scaleb(-decimals_in).normalize()


def max_price_min_out_units(amount_in: Decimal, max_price: Decimal, decimals_out: int) -> int:
    """The least tokenOut (base units) a sniper order with `maxPrice` (tokenIn per tokenOut)
    accepts for `amount_in`: amountIn / maxPrice, rounded up."""
    exact = (Decimal(amount_in) / Decimal(max_price)).scaleb(decimals_out)
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def shown(value: Any, limit: int = 40) -> str:
    """A client's value echoed in an error message: repr, cut short (error frames are bounded)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def resolve_token(value: Any, field: str) -> Token:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(
            f"{field} must be a token symbol or a base58 mint address", field=field
        )
    text = value.strip()
    known = REGISTRY.get(text.upper())
    if known:
        return known
    if text in BY_MINT:
        return BY_MINT[text]
    if text in NOT_MINTS:
        raise InvalidRequest(f"{field} is {NOT_MINTS[text]}, not a token mint", field=field)
    if _BASE58.match(text) and base58.is_pubkey(text):
        return Token(symbol=text, mint=text, decimals=UNKNOWN_MINT_DECIMALS)
    symbols = ", ".join(sorted(REGISTRY))
    raise InvalidRequest(
        f"{field} is not a known token ({symbols}) nor a base58 mint address", field=field
    )


def _decimal(value: Any, field: str) -> Decimal:
    # bool is an int in Python; a JSON true is never an amount.
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal, float)):
        raise InvalidRequest(f"{field} must be a decimal number", field=field)
    if isinstance(value, str) and (len(value) > 64 or not value.strip()):
        raise InvalidRequest(f"{field} must be a decimal number", field=field)
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise InvalidRequest(f"{field} must be a decimal number", field=field) from None
    if not number.is_finite():
        raise InvalidRequest(f"{field} must be a finite number", field=field)
    if isinstance(value, str) and not _DECIMAL_TEXT.match(value.strip()):
        raise InvalidRequest(f"{field} must be a decimal number", field=field)
    if number and not -MAX_MAGNITUDE <= number.adjusted() <= MAX_MAGNITUDE:
        raise InvalidRequest(
            f"{field} is out of range (10^-{MAX_MAGNITUDE} to 10^{MAX_MAGNITUDE})", field=field
        )
    significant = "".join(map(str, number.as_tuple().digits)).rstrip("0")
    if len(significant) > SIGNIFICANT_DIGITS:
        raise InvalidRequest(
            f"{field} has more than {SIGNIFICANT_DIGITS} significant digits (it would be rounded)",
            field=field,
        )
    return number


class OrderBody(BaseModel):
    """Every order body (HTTP and WebSocket; market, limit and sniper): the one model that both
    validates it and documents it (the OpenAPI request body is its schema).

    Each field's validator applies the field's rule and raises InvalidRequest naming the field
    (code `invalid_request`, or its own code), so a client gets the API's error shape, never
    pydantic's. The rules that span fields (which fields an order type takes, tokenIn and
    tokenOut differ) are the model validators'. `OrderBody.parse(body, now)` gives the
    OrderRequest the engine acts on."""

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        frozen=True,
        # Built by the functions that take orders (engine.intake builds it at their init), not
        # by every function that imports this module for its statuses and helpers: execute,
        # notify and the authorizer never validate a body (7-11 ms of each one's cold start).
        defer_build=True,
        title="OrderBody",
        json_schema_extra={
            "description": "A market, limit or sniper order",
            # exactly one of amountIn (exact in) and amountOut (exact out)
            "oneOf": [{"required": ["amountIn"]}, {"required": ["amountOut"]}],
        },
    )

    tokenIn: Token = Field(examples=["SOL"], description="symbol (SOL, USDC) or base58 mint")
    tokenOut: Token = Field(examples=["USDC"], description="symbol (SOL, USDC) or base58 mint")
    amountIn: Decimal | None = Field(
        default=None,
        examples=["0.01"],
        description="decimal token units of tokenIn (ASCII digits; no more decimals than the"
        " token has). Exactly one of amountIn and amountOut",
    )
    amountOut: Decimal | None = Field(
        default=None,
        examples=["1.5"],
        description="exact out, instead of amountIn (market and limit orders): decimal token"
        " units of tokenOut to receive exactly; the engine spends at most the quoted input plus"
        " slippage (`maxAmountIn`), or for a limit order amountOut / limitPrice",
    )
    orderType: str = Field(
        default="market",
        description="market (default), limit or sniper. limit: needs limitPrice and expiresAt,"
        " refuses slippage. sniper: needs expiresAt; poolVenue, maxPrice, minLiquidity optional",
        json_schema_extra={"enum": list(ORDER_TYPES)},
    )
    slippage: Decimal | None = Field(
        default=None,
        examples=[0.5],
        description="percent, >0 and <=50 (and at most the key's maxSlippage); default 0.5;"
        " market and sniper orders",
    )
    poolId: str | None = Field(
        default=None,
        examples=["2AzU8PsLsjzk27A3hu88EgV1GdS221BwM9bvKdssCYbo"],  # the local chain's CPMM pool
        description="optional: the one pool (base58 address) the order may trade on; by default"
        " the best of every pool of the pair. 400 `unknown_pool` when the pool cache already"
        " knows the address is not a pool of the pair; otherwise the order fails `unknown_pool`"
        " at routing if it is not one",
    )
    baseIn: bool | None = Field(
        default=None,
        description="optional, must be true when sent: the amount is of tokenIn (the engine"
        " sells exactly amountIn; false is 400 on `baseIn`)",
    )
    limitPrice: Decimal | None = Field(
        default=None,
        examples=["151.2"],
        description="limit orders: the least tokenOut per 1 tokenIn accepted, fees and price"
        f" impact included (> 0, at most {SIGNIFICANT_DIGITS} significant digits); the swap's"
        " minimum output is amountIn x limitPrice",
    )
    expiresAt: datetime | None = Field(
        default=None,
        examples=["2026-12-01T12:00:00Z"],
        description="limit and sniper orders: YYYY-MM-DDTHH:MM[:SS[.ffffff]] then Z or +HH:MM /"
        " -HH:MM, in the future, at most 30 days ahead; the order ends `expired` if it has not"
        " triggered by then",
    )
    poolVenue: str | None = Field(
        default=None,
        description="sniper orders: only new pools of this venue",
        json_schema_extra={"enum": list(VENUE_NAMES)},
    )
    maxPrice: Decimal | None = Field(
        default=None,
        description="sniper orders: not above this price (tokenIn per tokenOut, > 0, at most"
        f" {SIGNIFICANT_DIGITS} significant digits)",
    )
    minLiquidity: Decimal | None = Field(
        default=None,
        description="sniper orders: only pools holding at least this much tokenIn (>= 0)",
    )
    maxPriorityFeeLamports: int | None = Field(
        default=None,
        description=f"optional: the most this order's transaction pays for priority (0 to"
        f" {MAX_FEE_CAP} lamports, an integer or a string of ASCII digits); the engine's own"
        " cap still applies",
    )

    @classmethod
    def parse(cls, body: Any, now: datetime | None = None) -> OrderRequest:
        """`body` (a JSON object, floats read as Decimal) as the OrderRequest it asks for, or
        InvalidRequest naming the field. `now`: when it is asked (expiresAt must be after it)."""
        context = {"now": now or datetime.now(UTC)}
        return cls.model_validate(body, context=context).request()

    @model_validator(mode="before")
    @classmethod
    def _fields_of_the_type(cls, body: Any) -> Any:
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object")
        order_type = body.get("orderType")
        if order_type is None:
            order_type = "market"
        if order_type not in ORDER_TYPES:
            raise InvalidRequest(
                f"orderType {shown(order_type)} is not supported; supported:"
                f" {', '.join(ORDER_TYPES)}",
                field="orderType",
                code="unsupported_order_type",
            )
        _check_fields(body, order_type)
        # null is "not sent"; `action` (null) is the WebSocket's routing key, not the order's
        return {k: v for k, v in body.items() if v is not None and k != "action"}

    @field_validator("tokenIn", "tokenOut", mode="plain", json_schema_input_type=str)
    @classmethod
    def _token(cls, value: Any, info: ValidationInfo) -> Token:
        field = str(info.field_name)
        token = resolve_token(value, field)
        token_in = info.data.get("tokenIn")
        if field == "tokenOut" and isinstance(token_in, Token) and token_in.mint == token.mint:
            raise InvalidRequest("tokenIn and tokenOut must differ", field="tokenOut")
        return token

    @field_validator("amountIn", mode="plain", json_schema_input_type=str | float)
    @classmethod
    def _amount(cls, value: Any, info: ValidationInfo) -> Decimal:
        return parse_amount(value, info.data["tokenIn"], "amountIn")

    @field_validator("amountOut", mode="plain", json_schema_input_type=str | float | None)
    @classmethod
    def _amount_out(cls, value: Any, info: ValidationInfo) -> Decimal:
        token_out = info.data.get("tokenOut")
        if not isinstance(token_out, Token):  # tokenOut failed first: its error is raised
            raise InvalidRequest("tokenOut is required", field="tokenOut")
        return parse_amount(value, token_out, "amountOut")

    @field_validator("orderType", mode="plain", json_schema_input_type=str)
    @classmethod
    def _order_type(cls, value: Any) -> str:
        return str(value)  # checked with the fields it allows (_fields_of_the_type)

    @field_validator("slippage", mode="plain", json_schema_input_type=str | float | None)
    @classmethod
    def _slippage(cls, value: Any) -> Decimal:
        return parse_slippage(value)

    @field_validator("poolId", mode="plain", json_schema_input_type=str | None)
    @classmethod
    def _pool_id(cls, value: Any) -> str | None:
        return parse_pool_id(value)

    @field_validator("baseIn", mode="plain", json_schema_input_type=bool | None)
    @classmethod
    def _base_in(cls, value: Any) -> bool:
        check_base_in(value)
        return True

    @field_validator(
        "limitPrice", "maxPrice", mode="plain", json_schema_input_type=str | float | None
    )
    @classmethod
    def _price(cls, value: Any, info: ValidationInfo) -> Decimal:
        return parse_price(value, str(info.field_name))

    @field_validator("expiresAt", mode="plain", json_schema_input_type=str | None)
    @classmethod
    def _expiry(cls, value: Any, info: ValidationInfo) -> datetime:
        now = (info.context or {}).get("now") or datetime.now(UTC)
        return parse_expiry(value, now)

    @field_validator("poolVenue", mode="plain", json_schema_input_type=str | None)
    @classmethod
    def _venue(cls, value: Any) -> str:
        if value not in VENUE_NAMES:
            raise InvalidRequest(
                f"poolVenue must be one of {', '.join(VENUE_NAMES)}", field="poolVenue"
            )
        return str(value)

    @field_validator("minLiquidity", mode="plain", json_schema_input_type=str | float | None)
    @classmethod
    def _liquidity(cls, value: Any, info: ValidationInfo) -> Decimal:
        return parse_liquidity(value, info.data["tokenIn"])

    @field_validator(
        "maxPriorityFeeLamports", mode="plain", json_schema_input_type=int | str | None
    )
    @classmethod
    def _fee_cap(cls, value: Any) -> int | None:
        return parse_max_priority_fee(value)

    def request(self) -> OrderRequest:
        """What the engine acts on (a limit order has no slippage: its limit is its worst
        price)."""
        watched = self.orderType in WATCHED_TYPES
        slippage = None if self.orderType == "limit" else self.slippage or DEFAULT_SLIPPAGE
        amount_in = self.amountIn
        if self.amountOut is not None and self.limitPrice is not None:
            amount_in = limit_max_in(self.amountOut, self.limitPrice, self.tokenIn.decimals)
            if amount_in <= 0:
                raise InvalidRequest(
                    "amountOut / limitPrice is less than one base unit of tokenIn",
                    field="amountOut",
                )
        return OrderRequest(
            self.tokenIn,
            self.tokenOut,
            amount_in,
            slippage,
            self.orderType,
            pool_id=self.poolId,
            limit_price=self.limitPrice,
            expires_at=self.expiresAt if watched else None,
            pool_venue=self.poolVenue,
            max_price=self.maxPrice,
            min_liquidity=self.minLiquidity,
            max_priority_fee_lamports=self.maxPriorityFeeLamports,
            amount_out=self.amountOut,
        )


def parse_order_request(body: Any, now: datetime | None = None) -> OrderRequest:
    """Validate an order body with `OrderBody` (the one set of rules) or raise InvalidRequest
    naming the field."""
    return OrderBody.parse(body, now)


def check_idempotency_key(key: str | None, field: str = "Idempotency-Key") -> None:
    """An idempotency key: 1 to 255 characters, none of them a control character (Postgres
    text holds no NUL; a header cannot carry one either)."""
    if key is None:
        return
    if not isinstance(key, str) or not 0 < len(key) <= 255:
        raise InvalidRequest(f"{field} must be a string of 1 to 255 characters", field=field)
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidRequest(f"{field} must not contain control characters", field=field)


def parse_max_priority_fee(value: Any) -> int | None:
    """`maxPriorityFeeLamports`: the most this order's transaction may pay for priority, in
    lamports (an integer, or a string of ASCII digits, 0 to 10^12); the engine's own cap still
    applies."""
    if value is None:
        return None
    if isinstance(value, str) and _ASCII_DIGITS.match(value.strip()) and len(value) <= 20:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FEE_CAP:
        raise InvalidRequest(
            f"maxPriorityFeeLamports must be an integer from 0 to {MAX_FEE_CAP} (ASCII digits)",
            field="maxPriorityFeeLamports",
        )
    return value


def _check_fields(body: dict[str, Any], order_type: str) -> None:
    """Unknown fields, another order type's fields and missing required ones: 400 naming it."""
    allowed = _FIELDS[order_type]
    # `action` routes a WebSocket frame; an order body carries none (or null).
    extra = {"action"} if body.get("action") is None else set()
    unknown = sorted(set(body) - _ALL_FIELDS - extra)
    if unknown:
        raise InvalidRequest(f"unknown field {shown(unknown[0])}", field=unknown[0][:64])
    foreign = sorted(set(body) - allowed - extra)
    for name in foreign:
        if body.get(name) is None:
            continue  # null is "not sent"
        if name == "slippage":
            raise InvalidRequest(
                "slippage is refused on a limit order: its limitPrice is the worst price",
                field="slippage",
            )
        if name == "amountOut":
            raise InvalidRequest(
                "amountOut (exact out) is only for market and limit orders: a sniper order"
                " sells exactly amountIn",
                field="amountOut",
            )
        takes = ", ".join(t for t in ORDER_TYPES if name in _FIELDS[t])
        raise InvalidRequest(f"{name} is only for {takes} orders", field=name)
    required = ["tokenIn", "tokenOut"]
    required += {"limit": ["limitPrice", "expiresAt"], "sniper": ["amountIn", "expiresAt"]}.get(
        order_type, []
    )
    for name in required:
        if body.get(name) is None:
            raise InvalidRequest(f"{name} is required", field=name)
    amounts = [name for name in ("amountIn", "amountOut") if body.get(name) is not None]
    if len(amounts) == 2:
        raise InvalidRequest(
            "give amountIn (exact in) or amountOut (exact out), not both", field="amountOut"
        )
    if not amounts and order_type in EXACT_OUT_TYPES:
        raise InvalidRequest(
            "amountIn (exact in) or amountOut (exact out) is required", field="amountIn"
        )


def parse_slippage(raw: Any) -> Decimal:
    slippage = DEFAULT_SLIPPAGE if raw is None else _decimal(raw, "slippage")
    if not (0 < slippage <= MAX_SLIPPAGE):
        raise InvalidRequest(
            "slippage is a percentage greater than 0 and at most 50", field="slippage"
        )
    return slippage.normalize()


def parse_price(value: Any, field: str) -> Decimal:
    """A price (`limitPrice`, `maxPrice`): a decimal greater than 0."""
    price = _decimal(value, field)
    if price <= 0:
        raise InvalidRequest(f"{field} must be greater than 0", field=field)
    return price.normalize()


def parse_liquidity(value: Any, token: Token) -> Decimal:
    """`minLiquidity`: tokenIn units, at least 0, no more decimals than tokenIn has."""
    amount = _decimal(value, "minLiquidity")
    if amount < 0:
        raise InvalidRequest("minLiquidity must be at least 0", field="minLiquidity")
    if amount == 0:
        return Decimal(0)
    return parse_amount(amount, token, "minLiquidity")


def parse_expiry(value: Any, now: datetime) -> datetime:
    """`expiresAt`: YYYY-MM-DDTHH:MM[:SS[.ffffff]] with Z or an offset +-HH:MM (nothing else:
    no week or ordinal dates, no second-precision offsets, no more than 6 fraction digits, no
    characters around it), after `now`, at most 30 days on."""
    example = "e.g. 2026-12-01T12:00:00Z"
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise InvalidRequest(
            f"expiresAt must be an ISO 8601 time with a zone, {example}", field="expiresAt"
        )
    if not _EXPIRY.match(value):
        if re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9:.]+$", value, re.ASCII):
            raise InvalidRequest(
                "expiresAt needs a zone (Z or an offset such as +02:00)", field="expiresAt"
            )
        raise InvalidRequest(
            "expiresAt must be YYYY-MM-DDTHH:MM[:SS[.ffffff]] with Z or an offset +HH:MM,"
            f" {example}",
            field="expiresAt",
        )
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    except ValueError:
        raise InvalidRequest(
            f"expiresAt is not a valid time, {example}", field="expiresAt"
        ) from None
    if moment <= now:
        raise InvalidRequest("expiresAt must be in the future", field="expiresAt")
    if moment - now > MAX_EXPIRY:
        raise InvalidRequest("expiresAt must be at most 30 days ahead", field="expiresAt")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class QuoteRequest:
    """`GET /api/quote`: a pair and an amount of tokenIn, or (exact out) of tokenOut."""

    token_in: Token
    token_out: Token
    amount_in: Decimal | None
    amount_out: Decimal | None = None  # exact out: the input each pool needs for this


QUOTE_PARAMETERS = ("tokenIn", "tokenOut")


def parse_quote_request(query: Any) -> QuoteRequest:
    """The quote's query parameters, checked as an order's fields are (400 naming the field);
    other parameters are ignored, as HTTP APIs ignore unknown query parameters."""
    params = query if isinstance(query, dict) else {}
    for name in QUOTE_PARAMETERS:
        if not params.get(name):
            raise InvalidRequest(f"{name} is required", field=name)
    token_in = resolve_token(params["tokenIn"], "tokenIn")
    token_out = resolve_token(params["tokenOut"], "tokenOut")
    if token_in.mint == token_out.mint:
        raise InvalidRequest("tokenIn and tokenOut must differ", field="tokenOut")
    if params.get("amountIn") and params.get("amountOut"):
        raise InvalidRequest(
            "give amountIn (exact in) or amountOut (exact out), not both", field="amountOut"
        )
    if params.get("amountOut"):
        amount_out = parse_amount(params["amountOut"], token_out, "amountOut")
        return QuoteRequest(token_in, token_out, None, amount_out)
    if not params.get("amountIn"):
        raise InvalidRequest(
            "amountIn (exact in) or amountOut (exact out) is required", field="amountIn"
        )
    return QuoteRequest(token_in, token_out, parse_amount(params["amountIn"], token_in, "amountIn"))


def check_base_in(value: Any) -> None:
    """`baseIn` (the seed engine's flag: true = the amount is of tokenIn) is what tokenIn and
    amountIn already say; it may be sent, and must then agree (true). An exact output is
    asked with `amountOut` instead of `amountIn`."""
    if value is None or value is True:
        return
    if value is False:
        raise InvalidRequest(
            "baseIn false is not how an exact amount of tokenOut is asked: send amountOut"
            " instead of amountIn, and baseIn true or no baseIn",
            field="baseIn",
        )
    raise InvalidRequest("baseIn must be true or false", field="baseIn")


def parse_pool_id(value: Any) -> str | None:
    """`poolId`: a base58 address, the one pool the order may trade on (None: not pinned)."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else None
    if not text or not _BASE58.match(text) or not base58.is_pubkey(text):
        raise InvalidRequest("poolId must be a pool's base58 address", field="poolId")
    return text


def parse_amount(value: Any, token: Token, field: str) -> Decimal:
    """A positive amount of `token` in token units, with no more decimals than it has and no
    more base units than a u64 holds."""
    amount = _decimal(value, field)
    if amount <= 0:
        raise InvalidRequest(f"{field} must be greater than 0", field=field)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > token.decimals:
        raise InvalidRequest(
            f"{field} has more than {token.decimals} decimal places for {token.symbol}",
            field=field,
        )
    if amount.scaleb(token.decimals) > U64_MAX:
        raise InvalidRequest(f"{field} is too large", field=field)
    return amount.normalize()


def explorer_link(signature: str, cluster: str, custom_url: str | None = None) -> str:
    """The Solana Explorer page of a transaction. `custom_url` is the RPC URL the link may
    name for a custom cluster (Settings.explorer_custom_url: never a provider URL)."""
    base = f"https://explorer.solana.com/tx/{signature}"
    if cluster == "custom" and custom_url:
        from urllib.parse import quote

        return f"{base}?cluster=custom&customUrl={quote(custom_url, safe='')}"
    if cluster == "mainnet-beta":
        return base
    return f"{base}?cluster={cluster}"
