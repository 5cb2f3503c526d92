"""Order validation and the status state machine, rule by rule (no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import IllegalTransition, InvalidRequest
from engine.orders import TRANSITIONS, Status, check_transition, parse_order_request
from engine.tokens import USDC_DEVNET_MINT, WSOL_MINT

BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"


def order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def rejects(body: Any, field: str | None = None, code: str = "invalid_request") -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_order_request(body)
    assert info.value.code == code
    if field:
        assert info.value.field == field
    return info.value


def test_valid_market_order_defaults_slippage_to_half_percent() -> None:
    req = parse_order_request(order())
    assert req.token_in.mint == WSOL_MINT
    assert req.token_out.mint == USDC_DEVNET_MINT
    assert req.amount_in == Decimal("0.01")
    assert req.slippage == Decimal("0.5")
    assert req.amount_in_base_units == 10_000_000


def test_symbols_are_case_insensitive_and_mints_resolve_to_symbols() -> None:
    req = parse_order_request(order(tokenIn="sol", tokenOut=USDC_DEVNET_MINT))
    assert req.token_out.symbol == "USDC"


def test_any_valid_base58_mint_is_accepted() -> None:
    req = parse_order_request(order(tokenOut=BONK))
    assert req.token_out.mint == BONK


@pytest.mark.parametrize("token", ["DOGE", "", "   ", "0OIl" * 10, 12, None])
def test_unknown_token_is_refused(token: Any) -> None:
    body = order()
    body["tokenOut"] = token
    rejects(body, "tokenOut")


def test_tokens_must_differ_even_when_named_by_symbol_and_mint() -> None:
    err = rejects(order(tokenOut=WSOL_MINT), "tokenOut")
    assert "differ" in err.message


@pytest.mark.parametrize(
    "amount",
    ["0", "-1", "-0", "abc", "NaN", "Infinity", "-Infinity", "1e400", True, [], {}, "", "1" * 70],
)
def test_bad_amounts_are_refused(amount: Any) -> None:
    rejects(order(amountIn=amount), "amountIn")


def test_amount_with_more_decimals_than_the_token_is_refused() -> None:
    rejects(order(amountIn="0.0000000001"), "amountIn")  # SOL has 9
    rejects(order(tokenIn="USDC", tokenOut="SOL", amountIn="1.0000001"), "amountIn")  # USDC 6


def test_amount_over_u64_base_units_is_refused() -> None:
    rejects(order(amountIn="18446744074"), "amountIn")


def test_amount_as_json_number_decimal_is_accepted() -> None:
    assert parse_order_request(order(amountIn=Decimal("1.5"))).amount_in == Decimal("1.5")


@pytest.mark.parametrize("slippage", ["0", "-0.1", "50.0001", "100", "NaN", "x", False])
def test_slippage_outside_zero_to_fifty_is_refused(slippage: Any) -> None:
    rejects(order(slippage=slippage), "slippage")


@pytest.mark.parametrize("slippage", ["0.01", "50", 1, Decimal("0.5")])
def test_slippage_inside_range_is_accepted(slippage: Any) -> None:
    assert parse_order_request(order(slippage=slippage)).slippage == Decimal(str(slippage))


@pytest.mark.parametrize("kind", ["stop", "LIMIT", "MARKET", 1, ["market"]])
def test_only_market_limit_and_sniper_orders_are_supported(kind: Any) -> None:
    err = rejects(order(orderType=kind), "orderType", code="unsupported_order_type")
    assert "market, limit, sniper" in err.message


def test_missing_and_unknown_fields_are_named() -> None:
    rejects({"tokenIn": "SOL", "amountIn": "1"}, "tokenOut")
    rejects(order(price="1"), "price")
    rejects(["SOL"])


def test_same_request_has_same_fingerprint_and_other_request_differs() -> None:
    a = parse_order_request(order(amountIn="0.010"))
    b = parse_order_request(order(amountIn="0.01", tokenIn="sol"))
    c = parse_order_request(order(amountIn="0.02"))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


POOL = "2AzU8PsLsjzk27A3hu88EgV1GdS221BwM9bvKdssCYbo"


def test_an_order_may_pin_one_pool_by_address() -> None:
    req = parse_order_request(order(poolId=f" {POOL} "))
    assert req.pool_id == POOL
    assert req.to_json()["poolId"] == POOL
    assert req.fingerprint() != parse_order_request(order()).fingerprint()
    assert "poolId" not in parse_order_request(order()).to_json()


@pytest.mark.parametrize("pool", ["", "  ", "not-a-pool", "0OIl" * 10, "1" * 44, 42, True, [POOL]])
def test_a_pool_id_that_is_no_address_is_refused(pool: Any) -> None:
    rejects(order(poolId=pool), "poolId")


def test_base_in_true_is_what_the_order_already_says() -> None:
    """The seed's `baseIn` (the amount is of tokenIn) is implied: true (or null) is the very
    same order, with the same idempotency fingerprint; false would ask for an exact output, which
    is asked with amountOut instead."""
    plain = parse_order_request(order())
    assert parse_order_request(order(baseIn=True)) == plain
    assert parse_order_request({**order(), "baseIn": None}).fingerprint() == plain.fingerprint()
    error = rejects(order(baseIn=False), "baseIn")
    assert "send amountOut instead of amountIn" in error.message
    not_booleans: list[Any] = ["true", 1, 0, "false", {}]
    for value in not_booleans:
        rejects(order(baseIn=value), "baseIn")


@given(st.decimals(allow_nan=True, allow_infinity=True, places=None))
def test_any_decimal_either_parses_to_a_positive_u64_amount_or_is_refused(value: Decimal) -> None:
    try:
        req = parse_order_request(order(amountIn=str(value)))
    except InvalidRequest as err:
        refused: InvalidRequest | None = err
    else:
        refused = None
        assert 0 < req.amount_in_base_units < 2**64
        assert Decimal(req.amount_in_base_units).scaleb(-9) == req.amount_in
    assert refused is None or refused.field == "amountIn"


LEGAL = (
    [
        (Status.PENDING, Status.ROUTING),
        (Status.ROUTING, Status.BUILDING),
        (Status.BUILDING, Status.SUBMITTED),
        (Status.SUBMITTED, Status.CONFIRMED),
        (Status.SUBMITTED, Status.SUBMITTED),
        # limit and sniper orders (DESIGN.md "Order types")
        (Status.PENDING, Status.WATCHING),
        (Status.WATCHING, Status.TRIGGERED),
        (Status.TRIGGERED, Status.ROUTING),
        (Status.ROUTING, Status.WATCHING),
        (Status.BUILDING, Status.WATCHING),
        (Status.SUBMITTED, Status.WATCHING),
    ]
    + [(s, Status.FAILED) for s in Status if not s.terminal and s is not Status.WATCHING]
    + [(s, end) for s in (Status.PENDING, Status.WATCHING) for end in (Status.EXPIRED,)]
    + [(s, end) for s in (Status.PENDING, Status.WATCHING) for end in (Status.CANCELLED,)]
    # a key's revocation cancels what it has not sent yet (DESIGN "Guarantees")
    + [(s, Status.CANCELLED) for s in (Status.TRIGGERED, Status.ROUTING, Status.BUILDING)]
)


@pytest.mark.parametrize(("current", "new"), [(a, b) for a in Status for b in Status])
def test_only_the_designed_arrows_are_legal(current: Status, new: Status) -> None:
    if (current, new) in LEGAL:
        check_transition(current, new)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, new)


def test_terminal_statuses_have_no_way_out() -> None:
    assert TRANSITIONS[Status.CONFIRMED] == TRANSITIONS[Status.FAILED] == frozenset()


def test_exact_out_takes_amount_out_instead_of_amount_in() -> None:
    req = parse_order_request(order(amountIn=None, amountOut="1.5"))
    assert (req.amount_in, req.amount_out) == (None, Decimal("1.5"))
    assert req.to_json()["amountOut"] == "1.5"
    assert "amountIn" not in req.to_json()
    # Exact out is another order than exact in of the same number (idempotency).
    assert req.fingerprint() != parse_order_request(order(amountIn="1.5")).fingerprint()


def test_exactly_one_of_amount_in_and_amount_out() -> None:
    assert "not both" in rejects(order(amountOut="1.5"), "amountOut").message
    assert "required" in rejects(order(amountIn=None), "amountIn").message
    rejects(order(amountIn=None, amountOut="1.1234567"), "amountOut")  # USDC has 6 decimals
    rejects(order(amountIn=None, amountOut="0"), "amountOut")


def test_a_sniper_order_stays_exact_in() -> None:
    body = order(amountIn=None, amountOut="5", orderType="sniper", expiresAt="2099-01-01T00:00:00Z")
    with pytest.raises(InvalidRequest) as info:
        parse_order_request(body)
    assert info.value.field == "amountOut"
    assert "sniper order sells exactly amountIn" in info.value.message


def test_an_exact_out_limit_orders_maximum_input_is_rounded_down() -> None:
    """amountOut / limitPrice in tokenIn's units, rounded down: one unit more would pay above
    the limit."""
    from datetime import UTC, datetime

    body = order(
        tokenIn="USDC",
        tokenOut="SOL",
        amountIn=None,
        amountOut="2",
        orderType="limit",
        limitPrice="0.0066",
        expiresAt="2026-12-10T00:00:00Z",
    )
    req = parse_order_request(body, datetime(2026, 12, 6, tzinfo=UTC))
    assert req.amount_in == Decimal("303.030303")  # 2 / 0.0066 = 303.0303030...
    assert (
        req.amount_in * Decimal("0.0066")
        <= 2
        < (req.amount_in + Decimal("0.000001")) * Decimal("0.0066")
    )
    tiny = {**body, "amountOut": "0.000000001", "limitPrice": "1000"}
    assert rejects_at(tiny).field == "amountOut"  # less than one unit of USDC


def rejects_at(body: dict[str, Any]) -> InvalidRequest:
    from datetime import UTC, datetime

    with pytest.raises(InvalidRequest) as info:
        parse_order_request(body, datetime(2026, 12, 6, tzinfo=UTC))
    return info.value
