"""Per-key risk limits (issue 25 item 3), against real parts: Postgres, the submit handler, and
the local chain through the production Watcher and Executor.

Before: all keys traded one wallet with no per-key limit. Any key could sell whatever the wallet
held (a sniper order sold a token the wallet had just minted), route wallet funds at up to 50 %
slippage, or sell at any price with a tiny limitPrice (1e-30 was accepted and filled).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from solders.keypair import Keypair

from engine import config, db, keys, limits
from engine.errors import KeyLimitExceeded
from engine.limits import MintLimit
from engine.orders import Status, parse_order_request
from engine.pools import PoolCache, endpoint_id
from engine.store import Store
from engine.tokens import USDC_DEVNET_MINT, WSOL_MINT
from local.apigw import LambdaContext, ensure_event_loop, http_event
from local.chain import T22_MINT, LocalChain
from local.handlers import fresh_handler
from tests.auth import as_key
from tests.integration.test_executor import Runner, landed_swaps
from tests.integration.test_pool_pinning import run
from tests.integration.test_watcher import (
    Watching,
    cfg,
    chain,
    expires,
    limit_order,
    nothing_else_watching,
    queue,
)

__all__ = ["cfg", "chain", "nothing_else_watching", "queue"]  # fixtures

SOL_ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "slippage": 1}


@pytest.fixture
def key(database_url: str) -> keys.ApiKey:
    return keys.create_key(f"limits-{uuid.uuid4().hex[:6]}", 1000, pool=db.pool(database_url))[0]


@pytest.fixture
def submit(database_url: str, orders_queue: str, served_chain: Any) -> Any:
    return fresh_handler("submit")


def call(handler: Any, key: keys.ApiKey, method: str, path: str, body: Any = None) -> Any:
    """The submit handler as the gateway calls it once the authorizer let `key` in."""
    event = http_event(
        method,
        path,
        headers={"content-type": "application/json"},
        body=b"" if body is None else json.dumps(body).encode(),
    )
    ensure_event_loop()
    reply: dict[str, Any] = as_key(handler, key.id)(event, LambdaContext("submit"))
    reply["json"] = json.loads(reply["body"]) if reply.get("body") else None
    return reply


def orders_of(store: Store, key: keys.ApiKey) -> int:
    with store.pool.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM orders WHERE api_key_id = %s", (key.id,))
        found = row.fetchone()
    return int(found["n"]) if found else 0


def refused(reply: Any, status: int, code: str, field: str) -> dict[str, Any]:
    assert reply["statusCode"] == status, reply["json"]
    error: dict[str, Any] = reply["json"]["error"]
    assert (error["code"], error["field"]) == (code, field), error
    return error


# -- at submit ------------------------------------------------------------------------------------


def test_the_default_limits_let_the_demos_orders_through_and_refuse_more_per_order(
    submit: Any, store: Store, key: keys.ApiKey
) -> None:
    assert (
        call(submit, key, "POST", "/api/orders/execute", {**SOL_ORDER, "amountIn": "50"})[
            "statusCode"
        ]
        == 202
    )
    buy = {"tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "5000", "slippage": 1}
    assert call(submit, key, "POST", "/api/orders/execute", buy)["statusCode"] == 202
    before = orders_of(store, key)
    reply = call(submit, key, "POST", "/api/orders/execute", {**SOL_ORDER, "amountIn": "100.5"})
    error = refused(reply, 422, "order_limit_exceeded", "amountIn")
    assert (error["limit"], error["remaining"]) == ("maxIn SOL", "100")
    assert "100 SOL per order" in error["message"]
    reply = call(submit, key, "POST", "/api/orders/execute", {**buy, "amountIn": "20000.01"})
    refused(reply, 422, "order_limit_exceeded", "amountIn")
    assert orders_of(store, key) == before  # nothing stored


def test_the_daily_limit_counts_what_the_key_sold_in_24_hours(
    submit: Any, store: Store, key: keys.ApiKey
) -> None:
    limits.set_limits(store.pool, key.id, {WSOL_MINT: MintLimit(Decimal(10), Decimal(25))})
    for _ in range(2):
        body = {**SOL_ORDER, "amountIn": "10"}
        assert call(submit, key, "POST", "/api/orders/execute", body)["statusCode"] == 202
    reply = call(submit, key, "POST", "/api/orders/execute", {**SOL_ORDER, "amountIn": "10"})
    error = refused(reply, 422, "daily_limit_exceeded", "amountIn")
    assert (error["limit"], error["remaining"]) == ("maxInPer24h SOL", "5")
    assert (
        call(submit, key, "POST", "/api/orders/execute", {**SOL_ORDER, "amountIn": "5"})[
            "statusCode"
        ]
        == 202
    )
    report = call(submit, key, "GET", "/api/limits")["json"]
    [sol] = [m for m in report["mints"] if m["token"] == "SOL"]
    assert sol == {
        "mint": WSOL_MINT,
        "token": "SOL",
        "maxIn": "10",
        "maxInPer24h": "25",
        "usedIn24h": "25",
        "remainingIn24h": "0",
    }
    [usdc] = [m for m in report["mints"] if m["token"] == "USDC"]
    assert (usdc["maxIn"], usdc["maxInPer24h"], usdc["remainingIn24h"]) == (
        "20000",
        "200000",
        "200000",
    )
    assert report["maxSlippage"] == "50"
    assert report["limitPriceGuard"] == "20"


def test_a_cancelled_order_gives_its_amount_back(
    submit: Any, store: Store, key: keys.ApiKey
) -> None:
    limits.set_limits(store.pool, key.id, {WSOL_MINT: MintLimit(Decimal(10), Decimal(10))})
    order_id = limit_order(store, key, "900", amountIn="10")
    refused(
        call(submit, key, "POST", "/api/orders/execute", SOL_ORDER),
        422,
        "daily_limit_exceeded",
        "amountIn",
    )
    assert call(submit, key, "DELETE", f"/api/orders/{order_id}")["statusCode"] == 200
    assert call(submit, key, "POST", "/api/orders/execute", SOL_ORDER)["statusCode"] == 202


def test_the_keys_max_slippage_is_enforced(submit: Any, store: Store, key: keys.ApiKey) -> None:
    limits.set_limits(store.pool, key.id, max_slippage=Decimal(2))
    reply = call(submit, key, "POST", "/api/orders/execute", {**SOL_ORDER, "slippage": 2.5})
    error = refused(reply, 422, "slippage_limit_exceeded", "slippage")
    assert "maxSlippage of 2 %" in error["message"]
    assert (
        call(submit, key, "POST", "/api/orders/execute", {**SOL_ORDER, "slippage": 2})["statusCode"]
        == 202
    )


@pytest.mark.parametrize("order_type", ["market", "sniper"])
def test_a_mint_without_a_limit_may_not_be_sold(
    submit: Any, store: Store, key: keys.ApiKey, order_type: str
) -> None:
    """The probe's sniper order sold a token the wallet had just minted."""
    minted = str(Keypair().pubkey())
    body: dict[str, Any] = {"tokenIn": minted, "tokenOut": "USDC", "amountIn": "1000"}
    if order_type == "sniper":
        body |= {"orderType": "sniper", "expiresAt": expires()}
    reply = call(submit, key, "POST", "/api/orders/execute", body)
    error = refused(reply, 403, "mint_not_allowed", "tokenIn")
    assert error["remaining"] == "0"
    assert orders_of(store, key) == 0


def test_twenty_orders_racing_one_keys_daily_cap_never_overshoot_it(
    database_url: str, store: Store, key: keys.ApiKey
) -> None:
    limits.set_limits(store.pool, key.id, {WSOL_MINT: MintLimit(Decimal(3), Decimal(10))})
    # a pool of its own, 20 connections: every create runs at once, only the key's lock orders them
    racing = Store(db.pool(database_url, max_size=20, key=f"racing {uuid.uuid4()}"))
    request = parse_order_request({**SOL_ORDER, "amountIn": "1"})
    start = threading.Barrier(20)
    outcomes: list[str] = []

    def one() -> None:
        start.wait()
        try:
            racing.create_order(request, None, key.id)
            outcomes.append("accepted")
        except KeyLimitExceeded as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["accepted"] * 10 + ["daily_limit_exceeded"] * 10
    with store.pool.connection() as conn:
        assert limits.spent_24h(conn, key.id, WSOL_MINT) == Decimal(10)


# -- at execution ---------------------------------------------------------------------------------


def quoted_price(key: keys.ApiKey, amount: str = "1") -> Decimal:
    """What GET /api/quote answers for SOL -> USDC now (tokenOut per tokenIn): the quote a user
    sets a limitPrice from. Quoting the pair also records its pools in the pool cache."""
    event = http_event("GET", "/api/quote", query=f"tokenIn=SOL&tokenOut=USDC&amountIn={amount}")
    ensure_event_loop()
    reply = as_key(fresh_handler("quote"), key.id)(event, LambdaContext("quote"))
    assert reply["statusCode"] == 200, reply
    return Decimal(json.loads(reply["body"])["price"])


def limit_body(price: Decimal | str, **fields: Any) -> dict[str, Any]:
    return {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": "1",
        "limitPrice": format(Decimal(price), "f"),
        "expiresAt": expires(),
        **fields,
    }


def test_a_fat_finger_limit_price_is_refused_at_submit_naming_the_quote(
    submit: Any, store: Store, key: keys.ApiKey
) -> None:
    """A limitPrice 30 % below the quote was accepted, and only failed when it was routed."""
    price = quoted_price(key)
    before = orders_of(store, key)
    for fat in (price * Decimal("0.7"), Decimal("1e-30")):
        reply = call(submit, key, "POST", "/api/orders/execute", limit_body(fat))
        error = refused(reply, 422, "limit_price_guard", "limitPrice")
        assert (error["limit"], error["limitPriceGuard"]) == ("limitPriceGuard", "20")
        quote = Decimal(error["quote"])
        assert abs(quote - price) / price < Decimal("0.001"), (quote, price)
        assert f"({error['quote']})" in error["message"]
        assert "more than 20 % below the quote" in error["message"]
    assert orders_of(store, key) == before  # nothing stored
    # Within the guard: accepted and watched.
    reply = call(submit, key, "POST", "/api/orders/execute", limit_body(price * Decimal("0.9")))
    assert (reply["statusCode"], reply["json"]["status"]) == (202, "watching"), reply["json"]
    # The guard is the key's own: at 50 %, 30 % below the quote passes.
    limits.set_limits(store.pool, key.id, {}, limit_price_guard=Decimal(50))
    reply = call(submit, key, "POST", "/api/orders/execute", limit_body(price * Decimal("0.7")))
    assert reply["statusCode"] == 202, reply["json"]


def test_an_exact_out_limit_order_meets_the_same_guard_at_submit(
    submit: Any, store: Store, key: keys.ApiKey
) -> None:
    """amountOut instead of amountIn: its limitPrice is judged against the same quote (for the
    most it may sell, amountOut / limitPrice), refused when fat-fingered, accepted within."""
    price = quoted_price(key)
    before = orders_of(store, key)
    out = {"amountOut": format((price * Decimal("0.5")).quantize(Decimal("0.000001")), "f")}
    fat = {k: v for k, v in limit_body(price * Decimal("0.7")).items() if k != "amountIn"}
    reply = call(submit, key, "POST", "/api/orders/execute", {**fat, **out})
    refused(reply, 422, "limit_price_guard", "limitPrice")
    assert orders_of(store, key) == before
    fine = {k: v for k, v in limit_body(price * Decimal("0.95")).items() if k != "amountIn"}
    reply = call(submit, key, "POST", "/api/orders/execute", {**fine, **out})
    assert (reply["statusCode"], reply["json"]["status"]) == (202, "watching"), reply["json"]


def test_a_limit_order_is_refused_with_503_when_its_quote_cannot_be_read(
    store: Store,
    key: keys.ApiKey,
    database_url: str,
    orders_queue: str,
    served_chain: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An RPC that does not answer: the limitPrice cannot be checked, so the order is not
    accepted unchecked (nothing is stored); a market order does not need a quote at submit."""
    _, url = served_chain
    quoted_price(key)  # the pair's pools, as the cache knows them on the working endpoint
    cache = PoolCache(store.pool)
    known = cache.of_pair(endpoint_id(url), WSOL_MINT, USDC_DEVNET_MINT)
    assert known
    down = "http://127.0.0.1:9"  # nothing listens
    cache.remember(endpoint_id(down), known, datetime.now(UTC))
    monkeypatch.setenv("SOLANA_RPC_URL", down)
    submit = fresh_handler("submit")
    before = orders_of(store, key)
    reply = call(submit, key, "POST", "/api/orders/execute", limit_body("1e-30"))
    refused_error = reply["json"]["error"]
    assert (reply["statusCode"], refused_error["code"]) == (503, "rpc_unavailable"), reply
    assert "limitPrice" in refused_error["message"]
    assert orders_of(store, key) == before
    assert call(submit, key, "POST", "/api/orders/execute", SOL_ORDER)["statusCode"] == 202


async def test_limits_lowered_after_submit_hold_at_execution(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey
) -> None:
    order, _ = store.create_order(parse_order_request({**SOL_ORDER, "amountIn": "5"}), None, key.id)
    limits.set_limits(store.pool, key.id, {WSOL_MINT: MintLimit(Decimal(2), Decimal(100))})
    outcome = await Runner(store, chain, cfg).run(order.id)
    assert outcome.status == "failed"
    row = store.get_order(order.id)
    assert row is not None
    assert row.failure_code == "order_limit_exceeded"
    assert landed_swaps(chain) == []


async def test_a_fat_finger_limit_price_is_refused_before_anything_is_signed(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: Any
) -> None:
    """limitPrice 1e-30 (any price at all) was accepted and filled."""
    order_id = limit_order(store, key, "1e-30")
    assert (await Watching(store, chain, queue, cfg).tick()).triggered == 1
    assert (await Runner(store, chain, cfg).run(order_id)).status == "failed"
    row = store.get_order(order_id)
    assert row is not None
    assert row.failure_code == "limit_price_guard"
    assert "more than 20 % below the quote" in (row.failure_reason or "")
    assert landed_swaps(chain) == []
    assert Status.SUBMITTED not in [e.status for e in store.events(order_id)]


def test_a_key_may_sell_what_its_own_fills_bought_and_no_other_key_may(
    submit: Any, store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey
) -> None:
    buy = {"tokenIn": "USDC", "tokenOut": str(T22_MINT), "amountIn": "20", "slippage": 5}
    order, _ = store.create_order(parse_order_request(buy), None, key.id)
    assert run(Runner(store, chain, cfg).run(order.id)).status == "confirmed"
    row = store.get_order(order.id)
    assert row is not None
    assert row.filled is not None
    bought = Decimal(row.filled["amountOut"])
    assert bought > 0
    sell = {"tokenIn": str(T22_MINT), "tokenOut": "USDC", "slippage": 5}
    too_much = {**sell, "amountIn": format(bought + Decimal("0.000001"), "f")}
    error = refused(
        call(submit, key, "POST", "/api/orders/execute", too_much),
        403,
        "mint_not_allowed",
        "tokenIn",
    )
    assert error["remaining"] == format(bought.normalize(), "f")
    [position] = call(submit, key, "GET", "/api/limits")["json"]["positions"]
    assert (position["mint"], position["remaining"]) == (str(T22_MINT), error["remaining"])
    other = keys.create_key("another", pool=store.pool)[0]
    half = {**sell, "amountIn": format((bought / 2).quantize(Decimal("0.000001")), "f")}
    refused(
        call(submit, other, "POST", "/api/orders/execute", half), 403, "mint_not_allowed", "tokenIn"
    )
    assert call(submit, key, "POST", "/api/orders/execute", half)["statusCode"] == 202
