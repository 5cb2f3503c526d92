"""Limit and sniper orders (issue 12): what each takes, what each refuses, and the one
vocabulary of statuses every other module uses (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import InvalidRequest
from engine.orders import (
    CANCELLABLE,
    ENDED_BY_REVOCATION,
    IN_FLIGHT,
    OPEN,
    TERMINAL,
    TRANSITIONS,
    Status,
    limit_min_out_units,
    max_price_min_out_units,
    parse_order_request,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LATER = "2026-12-01T12:00:00Z"
NEW_MINT = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"


def limit(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": "0.01",
        "limitPrice": "151.2",
        "expiresAt": LATER,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def sniper(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "orderType": "sniper",
        "tokenIn": "USDC",
        "tokenOut": NEW_MINT,
        "amountIn": "5",
        "expiresAt": LATER,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def rejects(body: Any, field: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_order_request(body, NOW)
    assert info.value.field == field, info.value.message
    return info.value


# -- the vocabulary -------------------------------------------------------------------------------


def test_the_status_sets_are_the_designs() -> None:
    assert [s.value for s in Status] == [
        "pending", "watching", "triggered", "routing", "building", "submitted",
        "confirmed", "failed", "expired", "cancelled",
    ]  # fmt: skip
    assert {s.value for s in TERMINAL} == {"confirmed", "failed", "expired", "cancelled"}
    assert {s.value for s in IN_FLIGHT} == {
        "pending",
        "triggered",
        "routing",
        "building",
        "submitted",
    }
    assert {s.value for s in OPEN} == {"watching"}
    assert {s.value for s in CANCELLABLE} == {"pending", "watching"}
    # every status is exactly one of terminal, in flight, open
    for status in Status:
        assert [status.terminal, status.in_flight, status.open].count(True) == 1, status


def test_terminal_statuses_lead_nowhere_and_only_watching_can_trigger() -> None:
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
    into_triggered = {s for s, targets in TRANSITIONS.items() if Status.TRIGGERED in targets}
    assert into_triggered == {Status.WATCHING}
    into_cancelled = {s for s, targets in TRANSITIONS.items() if Status.CANCELLED in targets}
    # a key cancels what has not triggered; its revocation also what has not been sent
    assert into_cancelled == set(CANCELLABLE) | set(ENDED_BY_REVOCATION)
    assert Status.SUBMITTED not in ENDED_BY_REVOCATION  # a sent transaction is followed
    into_expired = {s for s, targets in TRANSITIONS.items() if Status.EXPIRED in targets}
    assert into_expired == set(CANCELLABLE)
    # back to watching only from a step that can refuse for price, never from triggered
    into_watching = {s for s, targets in TRANSITIONS.items() if Status.WATCHING in targets}
    assert into_watching == {Status.PENDING, Status.ROUTING, Status.BUILDING, Status.SUBMITTED}


# -- limit ----------------------------------------------------------------------------------------


def test_a_limit_order_has_a_price_an_expiry_and_no_slippage() -> None:
    req = parse_order_request(limit(expiresAt="2026-12-01T14:00:00+02:00"), NOW)
    assert req.order_type == "limit"
    assert req.watched
    assert req.limit_price == Decimal("151.2")
    assert req.expires_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert req.slippage is None
    body = req.to_json()
    assert body["expiresAt"] == "2026-12-01T12:00:00Z"
    assert "slippage" not in body
    assert body["limitPrice"] == "151.2"


def test_slippage_is_refused_on_a_limit_order() -> None:
    error = rejects(limit(slippage=0.5), "slippage")
    assert "limitPrice is the worst price" in error.message


@pytest.mark.parametrize("price", ["0", "-1", "abc", "NaN", True, [], "1e400"])
def test_a_bad_limit_price_is_refused(price: Any) -> None:
    rejects(limit(limitPrice=price), "limitPrice")


@pytest.mark.parametrize("field", ["limitPrice", "expiresAt", "tokenIn", "amountIn"])
def test_what_a_limit_order_needs_is_required(field: str) -> None:
    body = limit()
    del body[field]
    rejects(body, field)


@pytest.mark.parametrize(
    "expires",
    [
        "2026-12-01T12:00:00",  # no zone
        "2026-12-01",  # a date, no time
        "2026-11-30T11:59:59Z",  # the past
        "2026-11-30T12:00:00Z",  # now
        "2026-12-30T12:00:01Z",  # more than 30 days ahead
        "tomorrow",
        1764590400,
        "",
        "2026-13-01T00:00:00Z",
    ],
)
def test_a_bad_expiry_is_refused(expires: Any) -> None:
    rejects(limit(expiresAt=expires), "expiresAt")


def test_thirty_days_ahead_is_the_latest_expiry() -> None:
    edge = (NOW + timedelta(days=30)).isoformat()
    assert parse_order_request(limit(expiresAt=edge), NOW).expires_at == NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("field", "value"), [("maxPrice", "1"), ("minLiquidity", "10"), ("poolVenue", "raydium_cpmm")]
)
def test_sniper_fields_are_refused_on_a_limit_order(field: str, value: str) -> None:
    error = rejects(limit(**{field: value}), field)
    assert "only for sniper orders" in error.message


def test_limit_fields_are_refused_on_a_market_order() -> None:
    market = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}
    rejects({**market, "limitPrice": "150"}, "limitPrice")
    rejects({**market, "expiresAt": LATER}, "expiresAt")
    assert parse_order_request({**market, "limitPrice": None}, NOW).order_type == "market"


def test_a_limit_orders_fingerprint_covers_its_price_and_expiry() -> None:
    a = parse_order_request(limit(), NOW)
    assert parse_order_request(limit(limitPrice="151.20"), NOW).fingerprint() == a.fingerprint()
    assert parse_order_request(limit(limitPrice="151.3"), NOW).fingerprint() != a.fingerprint()
    later = parse_order_request(limit(expiresAt="2026-12-01T12:00:01Z"), NOW)
    assert later.fingerprint() != a.fingerprint()


# -- sniper ---------------------------------------------------------------------------------------


def test_a_sniper_order_takes_its_optional_guards() -> None:
    req = parse_order_request(
        sniper(poolVenue="meteora_damm_v2", maxPrice="0.5", minLiquidity="1000", slippage=2), NOW
    )
    assert req.order_type == "sniper"
    assert req.pool_venue == "meteora_damm_v2"
    assert req.max_price == Decimal("0.5")
    assert req.min_liquidity == Decimal(1000)
    assert req.slippage == Decimal(2)
    plain = parse_order_request(sniper(), NOW)
    assert plain.slippage == Decimal("0.5")
    assert (plain.pool_venue, plain.max_price, plain.min_liquidity) == (None, None, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("poolVenue", "orca"),
        ("poolVenue", 1),
        ("maxPrice", "0"),
        ("maxPrice", "-3"),
        ("minLiquidity", "-1"),
        ("minLiquidity", "0.0000001"),  # USDC has 6 decimals
        ("slippage", "51"),
        ("limitPrice", "1"),
        ("poolId", "2AzU8PsLsjzk27A3hu88EgV1GdS221BwM9bvKdssCYbo"),
    ],
)
def test_a_bad_sniper_field_is_refused(field: str, value: Any) -> None:
    rejects(sniper(**{field: value}), field)


def test_a_sniper_order_needs_an_expiry() -> None:
    body = sniper()
    del body["expiresAt"]
    rejects(body, "expiresAt")


# -- the minimum output ---------------------------------------------------------------------------


def test_the_limit_minimum_output_rounds_up() -> None:
    assert limit_min_out_units(Decimal("0.01"), Decimal("151.2"), 6) == 1_512_000
    assert limit_min_out_units(Decimal("0.000000001"), Decimal("150"), 6) == 1  # 0.15 units
    assert max_price_min_out_units(Decimal("5"), Decimal("0.5"), 6) == 10_000_000
    assert max_price_min_out_units(Decimal("1"), Decimal("3"), 0) == 1  # 0.33 -> 1


@given(
    amount=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**6), places=6),
    price=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**6), places=6),
    decimals=st.integers(0, 9),
)
def test_the_minimum_output_is_never_below_the_limit(
    amount: Decimal, price: Decimal, decimals: int
) -> None:
    units = limit_min_out_units(amount, price, decimals)
    assert Decimal(units).scaleb(-decimals) >= amount * price
    assert Decimal(units - 1).scaleb(-decimals) < amount * price
