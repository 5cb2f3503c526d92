"""The order domain: what a valid market order is, and which status changes are legal."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from engine import base58
from engine.errors import IllegalTransition, InvalidRequest
from engine.tokens import BY_MINT, NOT_MINTS, REGISTRY, Token

MAX_SLIPPAGE = Decimal(50)
DEFAULT_SLIPPAGE = Decimal("0.5")
SUPPORTED_ORDER_TYPES = ("market",)
# Decimals assumed for a mint outside the registry until the chain tells us; 9 is the most an
# SPL mint commonly has, so validation never rejects a precision the chain would accept.
UNKNOWN_MINT_DECIMALS = 9
U64_MAX = 2**64 - 1
_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_FIELDS = {
    "tokenIn",
    "tokenOut",
    "amountIn",
    "slippage",
    "orderType",
    "poolId",
    "baseIn",
    "maxPriorityFeeLamports",
}
MAX_FEE_CAP = 10**12  # lamports (1,000 SOL): beyond any sane priority fee, inside a bigint
# A decimal as text: ASCII digits only (Decimal() alone also takes "1_000" and Arabic-Indic digits).
_DECIMAL_TEXT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII)
# No amount or percentage is beyond 10^+-64; the bound also keeps normalize()/scaleb() inside the
# decimal context (1E+999999999999 raised Overflow, a 500; 1E-999999999 normalized to 0).
MAX_MAGNITUDE = 64


class Status(StrEnum):
    PENDING = "pending"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Status.CONFIRMED, Status.FAILED)


# The arrows of DESIGN.md. SUBMITTED -> SUBMITTED is a re-submission with a new signature, allowed
# only after the previous transaction's blockhash expired without it landing.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.ROUTING, Status.FAILED}),
    Status.ROUTING: frozenset({Status.BUILDING, Status.FAILED}),
    Status.BUILDING: frozenset({Status.SUBMITTED, Status.FAILED}),
    Status.SUBMITTED: frozenset({Status.SUBMITTED, Status.CONFIRMED, Status.FAILED}),
    Status.CONFIRMED: frozenset(),
    Status.FAILED: frozenset(),
}


def check_transition(current: Status, new: Status) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"an order cannot go from {current} to {new}")


@dataclass(frozen=True)
class OrderRequest:
    token_in: Token
    token_out: Token
    amount_in: Decimal
    slippage: Decimal
    order_type: str = "market"
    pool_id: str | None = None  # the one pool routing may use (None: the best of every pool)
    max_priority_fee_lamports: int | None = None  # the order's own cap (None: the engine's)

    @property
    def amount_in_base_units(self) -> int:
        return int(self.amount_in.scaleb(self.token_in.decimals))

    def to_json(self) -> dict[str, str]:
        body = {
            "tokenIn": self.token_in.symbol,
            "tokenOut": self.token_out.symbol,
            "mintIn": self.token_in.mint,
            "mintOut": self.token_out.mint,
            "amountIn": _plain(self.amount_in),
            "slippage": _plain(self.slippage),
            "orderType": self.order_type,
        }
        # Only when pinned, so an unpinned order's fingerprint (idempotency) is what it was.
        if self.pool_id is not None:
            body["poolId"] = self.pool_id
        if self.max_priority_fee_lamports is not None:
            body["maxPriorityFeeLamports"] = str(self.max_priority_fee_lamports)
        return body

    def fingerprint(self) -> str:
        """Stable hash of what the order asks for: same key + same fingerprint = same order."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


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
    return number


def parse_order_request(body: Any) -> OrderRequest:
    """Validate an order body (JSON object, floats parsed as Decimal) or raise InvalidRequest."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    # `action` routes a WebSocket frame; an order body carries none (or null).
    unknown = sorted(set(body) - _FIELDS - ({"action"} if body.get("action") is None else set()))
    if unknown:
        raise InvalidRequest(f"unknown field {shown(unknown[0])}", field=unknown[0][:64])
    for name in ("tokenIn", "tokenOut", "amountIn"):
        if body.get(name) is None:
            raise InvalidRequest(f"{name} is required", field=name)

    order_type = body.get("orderType", "market")
    if order_type not in SUPPORTED_ORDER_TYPES:
        raise InvalidRequest(
            f"orderType {shown(order_type)} is not supported; "
            f"supported: {', '.join(SUPPORTED_ORDER_TYPES)}",
            field="orderType",
            code="unsupported_order_type",
        )
    token_in = resolve_token(body["tokenIn"], "tokenIn")
    token_out = resolve_token(body["tokenOut"], "tokenOut")
    if token_in.mint == token_out.mint:
        raise InvalidRequest("tokenIn and tokenOut must differ", field="tokenOut")

    amount = parse_amount(body["amountIn"], token_in, "amountIn")
    raw_slippage = body.get("slippage")
    slippage = DEFAULT_SLIPPAGE if raw_slippage is None else _decimal(raw_slippage, "slippage")
    if not (0 < slippage <= MAX_SLIPPAGE):
        raise InvalidRequest(
            "slippage is a percentage greater than 0 and at most 50", field="slippage"
        )
    check_base_in(body.get("baseIn"))
    pool_id = parse_pool_id(body.get("poolId"))
    max_fee = parse_max_priority_fee(body.get("maxPriorityFeeLamports"))
    return OrderRequest(
        token_in, token_out, amount, slippage.normalize(), "market", pool_id, max_fee
    )


def parse_max_priority_fee(value: Any) -> int | None:
    """`maxPriorityFeeLamports`: the most this order's transaction may pay for priority, in
    lamports (an integer, or a string of one, 0 to 10^12); the engine's own cap still applies."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FEE_CAP:
        raise InvalidRequest(
            f"maxPriorityFeeLamports must be an integer from 0 to {MAX_FEE_CAP}",
            field="maxPriorityFeeLamports",
        )
    return value


def check_base_in(value: Any) -> None:
    """`baseIn` (the seed engine's flag: true = the amount is of tokenIn) is what tokenIn and
    amountIn already say; it may be sent, and must then agree: this engine sells exactly
    `amountIn` of `tokenIn`, it never buys an exact output."""
    if value is None or value is True:
        return
    if value is False:
        raise InvalidRequest(
            "baseIn false (an exact amount of tokenOut) is not supported: the engine sells"
            " exactly amountIn of tokenIn; send baseIn true or leave it out",
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
