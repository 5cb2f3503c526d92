"""Per-key risk limits (DESIGN "Guarantees"): what one key may do with the one wallet every key
trades, in the input token's own units (there is no price oracle).

- Per mint the key sells: `maxIn` per order and `maxInPer24h` over a rolling 24 h (the key's
  orders selling that mint created in the last 24 h, except those that ended without trading:
  cancelled, expired, failed). The engine's defaults are DEFAULT_MINT_LIMITS (SOL 100 / 1,000,
  USDC 20,000 / 200,000); a key's own rows (`key_mint_limits`) override them.
- A mint with no limit may be sold only up to the key's position in it (`key_positions`: what
  its own confirmed fills bought, less what they sold), less what its live orders would sell
  already. So a sniper can sell what it bought, and no key can sell what others' orders bought.
- `maxSlippage`: the most slippage an order may ask for (default the contract's 50 %).
- `limitPriceGuard`: a limit order whose limitPrice is more than this many percent below the
  pair's current quote is a fat finger (`check_limit_price`). Submit refuses it (422
  `limit_price_guard`, against the quote `engine.spot` reads), and the executor checks again
  against the quote the order is routed on: it fails `limit_price_guard` before anything is
  signed.

`check` runs when an order is accepted (Store.create_order, under the key's row lock, so racing
orders serialise and the order's own row is the reservation of its amount) and again before the
order is routed (the executor), so limits lowered in between hold too. A refusal is
KeyLimitExceeded (422) or MintNotAllowed (403), naming the limit and what remains of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow

from engine.db import Pool
from engine.errors import (
    InvalidRequest,
    KeyLimitExceeded,
    LimitPriceTooLow,
    MintNotAllowed,
    TooManyOpenOrders,
)
from engine.orders import MAX_SLIPPAGE, TERMINAL, Status, resolve_token, statuses
from engine.tokens import BY_MINT, USDC_DEVNET_MINT, WSOL_MINT

DEFAULT_LIMIT_PRICE_GUARD = Decimal(20)
# Distinct pairs one key's sniper orders may watch at once: the watcher's cost does not grow
# with them (execution.launches), but each is matched and its mints read every tick.
MAX_SNIPER_PAIRS = 10
# Orders that ended without trading do not count against the 24 h sum.
_NOT_SPENT = frozenset({Status.CANCELLED, Status.EXPIRED, Status.FAILED})


@dataclass(frozen=True)
class MintLimit:
    max_in: Decimal  # token units per order
    max_in_per_24h: Decimal  # token units per rolling 24 h

    def to_json(self) -> dict[str, str]:
        return {"maxIn": _text(self.max_in), "maxInPer24h": _text(self.max_in_per_24h)}


DEFAULT_MINT_LIMITS: dict[str, MintLimit] = {
    WSOL_MINT: MintLimit(Decimal(100), Decimal(1000)),
    USDC_DEVNET_MINT: MintLimit(Decimal(20_000), Decimal(200_000)),
}


@dataclass(frozen=True)
class KeyLimits:
    max_slippage: Decimal
    limit_price_guard: Decimal  # percent below the quote
    mints: dict[str, MintLimit]  # the key's own limits over the engine's defaults

    def for_mint(self, mint: str) -> MintLimit | None:
        return self.mints.get(mint)


def check_limit_price(limit_price: Decimal, quoted: Decimal, guard: Decimal) -> None:
    """Raise LimitPriceTooLow when `limit_price` is more than `guard` percent below `quoted`
    (both tokenOut per tokenIn): one rule for submit and for routing."""
    if limit_price >= quoted * (1 - guard / 100):
        return
    quote = _text(quoted.quantize(Decimal(1).scaleb(quoted.adjusted() - 11)))
    raise LimitPriceTooLow(
        f"limitPrice {format(limit_price, 'f')} is more than {_text(guard)} % below the quote"
        f" ({quote}): refused as a fat finger (the key's limitPriceGuard)",
        quote=quote,
        guard=_text(guard),
    )


def symbol(mint: str) -> str:
    token = BY_MINT.get(mint)
    return token.symbol if token else mint


def _text(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


def load(conn: Connection[DictRow], api_key_id: uuid.UUID) -> KeyLimits:
    key = conn.execute(
        "SELECT max_slippage, limit_price_guard FROM api_keys WHERE id = %s", (api_key_id,)
    ).fetchone()
    rows = conn.execute(
        "SELECT mint, max_in, max_in_per_24h FROM key_mint_limits WHERE api_key_id = %s",
        (api_key_id,),
    ).fetchall()
    mints = dict(DEFAULT_MINT_LIMITS)
    mints.update({r["mint"]: MintLimit(r["max_in"], r["max_in_per_24h"]) for r in rows})
    if key is None:
        return KeyLimits(MAX_SLIPPAGE, DEFAULT_LIMIT_PRICE_GUARD, mints)
    return KeyLimits(key["max_slippage"], key["limit_price_guard"], mints)


def _selling(
    conn: Connection[DictRow],
    api_key_id: uuid.UUID,
    mint: str,
    not_in: frozenset[Status],
    exclude: uuid.UUID | None,
    within: str | None = None,
) -> Decimal:
    """The sum of what the key's orders selling `mint` take in: those whose status is none of
    `not_in`, created within the interval `within` (None: ever), but `exclude`."""
    row = conn.execute(
        "SELECT coalesce(sum(amount_in), 0) AS total FROM orders"
        " WHERE api_key_id = %s AND mint_in = %s"
        " AND (%s::interval IS NULL OR created_at > now() - %s::interval)"
        " AND NOT (status = ANY(%s)) AND id IS DISTINCT FROM %s",
        (api_key_id, mint, within, within, statuses(not_in), exclude),
    ).fetchone()
    return Decimal(row["total"]) if row else Decimal(0)


def spent_24h(
    conn: Connection[DictRow], api_key_id: uuid.UUID, mint: str, exclude: uuid.UUID | None = None
) -> Decimal:
    """What the key's orders selling `mint` in the last 24 h take of its daily limit."""
    return _selling(conn, api_key_id, mint, _NOT_SPENT, exclude, within="24 hours")


def position(conn: Connection[DictRow], api_key_id: uuid.UUID, mint: str) -> Decimal:
    row = conn.execute(
        "SELECT amount FROM key_positions WHERE api_key_id = %s AND mint = %s",
        (api_key_id, mint),
    ).fetchone()
    return Decimal(row["amount"]) if row else Decimal(0)


def committed(
    conn: Connection[DictRow], api_key_id: uuid.UUID, mint: str, exclude: uuid.UUID | None = None
) -> Decimal:
    """What the key's live orders (not ended yet) would sell of `mint`."""
    return _selling(conn, api_key_id, mint, TERMINAL, exclude)


def check(
    conn: Connection[DictRow],
    api_key_id: uuid.UUID,
    mint: str,
    amount: Decimal,
    slippage: Decimal | None,
    exclude: uuid.UUID | None = None,
) -> None:
    """Raise KeyLimitExceeded / MintNotAllowed if selling `amount` of `mint` (at `slippage`)
    breaks one of the key's limits; `exclude`: the order being checked, when it is stored."""
    limits = load(conn, api_key_id)
    name = symbol(mint)
    if slippage is not None and slippage > limits.max_slippage:
        raise KeyLimitExceeded(
            f"slippage {_text(slippage)} % is over this key's maxSlippage of"
            f" {_text(limits.max_slippage)} %",
            field="slippage",
            code="slippage_limit_exceeded",
            limit=f"maxSlippage {_text(limits.max_slippage)}",
        )
    limit = limits.for_mint(mint)
    if limit is None:
        held = position(conn, api_key_id, mint)
        free = max(held - committed(conn, api_key_id, mint, exclude), Decimal(0))
        if amount > free:
            raise MintNotAllowed(
                f"this key has no limit for selling {name}: it may sell only what its own"
                f" fills bought, {_text(free)} {name} remaining",
                field="tokenIn",
                limit=f"position {name}",
                remaining=_text(free),
            )
        return
    if amount > limit.max_in:
        raise KeyLimitExceeded(
            f"amountIn {_text(amount)} {name} is over this key's maxIn of"
            f" {_text(limit.max_in)} {name} per order",
            field="amountIn",
            code="order_limit_exceeded",
            limit=f"maxIn {name}",
            remaining=_text(limit.max_in),
        )
    left = max(limit.max_in_per_24h - spent_24h(conn, api_key_id, mint, exclude), Decimal(0))
    if amount > left:
        raise KeyLimitExceeded(
            f"amountIn {_text(amount)} {name} is over what remains of this key's maxInPer24h"
            f" of {_text(limit.max_in_per_24h)} {name}: {_text(left)} {name}",
            field="amountIn",
            code="daily_limit_exceeded",
            limit=f"maxInPer24h {name}",
            remaining=_text(left),
        )


def check_sniper_pairs(
    conn: Connection[DictRow], api_key_id: uuid.UUID, mint_in: str, mint_out: str
) -> None:
    """TooManyOpenOrders (`too_many_sniper_pairs`) when a sniper order on a new pair would make
    the key watch more than MAX_SNIPER_PAIRS distinct pairs."""
    rows = conn.execute(
        "SELECT DISTINCT LEAST(mint_in, mint_out) AS x, GREATEST(mint_in, mint_out) AS y"
        " FROM orders WHERE api_key_id = %s AND order_type = 'sniper' AND status = %s",
        (api_key_id, str(Status.WATCHING)),
    ).fetchall()
    pairs = {(r["x"], r["y"]) for r in rows}
    if (min(mint_in, mint_out), max(mint_in, mint_out)) in pairs:
        return
    if len(pairs) >= MAX_SNIPER_PAIRS:
        raise TooManyOpenOrders(
            f"this API key's sniper orders watch {len(pairs)} pairs, its limit is"
            f" {MAX_SNIPER_PAIRS}; cancel one or add to a pair it watches",
            code="too_many_sniper_pairs",
        )


def report(pool: Pool, api_key_id: uuid.UUID) -> dict[str, Any]:
    """`GET /api/limits`: the key's limits and what remains of them now."""
    with pool.connection() as conn:
        limits = load(conn, api_key_id)
        mints = []
        for mint, limit in sorted(limits.mints.items(), key=lambda m: symbol(m[0])):
            spent = spent_24h(conn, api_key_id, mint)
            mints.append(
                {
                    "mint": mint,
                    "token": symbol(mint),
                    **limit.to_json(),
                    "usedIn24h": _text(spent),
                    "remainingIn24h": _text(max(limit.max_in_per_24h - spent, Decimal(0))),
                }
            )
        rows = conn.execute(
            "SELECT mint, amount FROM key_positions WHERE api_key_id = %s AND amount > 0"
            " ORDER BY mint",
            (api_key_id,),
        ).fetchall()
        positions = []
        for r in rows:
            if r["mint"] in limits.mints:
                continue  # sold within its limits, not against the position
            live = committed(conn, api_key_id, r["mint"])
            positions.append(
                {
                    "mint": r["mint"],
                    "token": symbol(r["mint"]),
                    "bought": _text(r["amount"]),
                    "inOpenOrders": _text(live),
                    "remaining": _text(max(Decimal(r["amount"]) - live, Decimal(0))),
                }
            )
    return {
        "maxSlippage": _text(limits.max_slippage),
        "limitPriceGuard": _text(limits.limit_price_guard),
        "mints": mints,
        "positions": positions,
    }


def parse_mint_limit(spec: str) -> tuple[str, MintLimit]:
    """`TOKEN=MAX_IN/MAX_IN_PER_24H` (a symbol or a mint), as `make key` and `local.keys` take
    it: e.g. `SOL=100/1000`."""
    token, _, amounts = spec.partition("=")
    max_in, _, per_day = amounts.partition("/")
    try:
        limit = MintLimit(Decimal(max_in), Decimal(per_day))
    except InvalidOperation:
        raise InvalidRequest(f"a limit is TOKEN=MAX_IN/MAX_IN_PER_24H, not {spec!r}") from None
    if not (limit.max_in > 0 and limit.max_in_per_24h > 0 and limit.max_in.is_finite()):
        raise InvalidRequest(f"a limit's amounts are greater than 0, not {spec!r}")
    return resolve_token(token.strip(), "limit").mint, limit


def set_limits(
    pool: Pool,
    api_key_id: uuid.UUID,
    mints: dict[str, MintLimit] | None = None,
    *,
    max_slippage: Decimal | None = None,
    limit_price_guard: Decimal | None = None,
) -> None:
    """Set some of a key's limits (the others stay); they apply to its next orders and to
    those not yet routed."""
    if max_slippage is not None and not 0 < max_slippage <= MAX_SLIPPAGE:
        raise InvalidRequest(f"maxSlippage is greater than 0 and at most {MAX_SLIPPAGE}")
    if limit_price_guard is not None and not 0 <= limit_price_guard < 100:
        raise InvalidRequest("limitPriceGuard is a percentage from 0 to below 100")
    with pool.connection() as conn, conn.transaction():
        if max_slippage is not None:
            conn.execute(
                "UPDATE api_keys SET max_slippage = %s WHERE id = %s", (max_slippage, api_key_id)
            )
        if limit_price_guard is not None:
            conn.execute(
                "UPDATE api_keys SET limit_price_guard = %s WHERE id = %s",
                (limit_price_guard, api_key_id),
            )
        for mint, limit in (mints or {}).items():
            conn.execute(
                "INSERT INTO key_mint_limits (api_key_id, mint, max_in, max_in_per_24h)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (api_key_id, mint) DO UPDATE"
                " SET max_in = EXCLUDED.max_in, max_in_per_24h = EXCLUDED.max_in_per_24h",
                (api_key_id, mint, limit.max_in, limit.max_in_per_24h),
            )
