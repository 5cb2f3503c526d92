"""Exact-out orders (`amountOut`) executed by the production Executor on the local chain (the
real Raydium CPMM and Meteora DAMM v2 programs) with real Postgres: the engine quotes the input
every pool needs, routes to the least, sends `swap_base_output` / `swap2` ExactOut with
maxAmountIn = the quote plus slippage, and the wallet receives exactly amountOut; the fill
reports the input actually spent, read from the wallet's balances."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from engine import config, keys, limits
from engine.orders import parse_order_request
from engine.queue import OrdersQueue
from engine.store import Store
from local.chain import POOLS, USDC_MINT, WALLET, LocalChain
from tests.integration import test_executor, test_watcher
from tests.integration.test_executor import WSOL, Runner, landed_swaps, statuses

# The executor suite's fixtures: a freshly seeded chain per test, settings without VENUE_POOLS.
chain = test_executor.chain
cfg = test_executor.cfg

SOL = 10**9
USDC = 10**6


def exact_out_order(store: Store, **body: Any) -> uuid.UUID:
    request = {"tokenIn": "SOL", "tokenOut": "USDC", "amountOut": "15", "slippage": 1, **body}
    order, _ = store.create_order(parse_order_request(request))
    oid: uuid.UUID = order.id
    return oid


@pytest.mark.parametrize("cheaper", ["raydium_cpmm", "meteora_damm_v2"])
async def test_an_exact_out_order_receives_exactly_the_amount_from_the_cheapest_pool(
    store: Store, chain: LocalChain, cfg: config.Settings, cheaper: str
) -> None:
    for venue, price in ((cheaper, 155), (next(v for v in POOLS if v != cheaper), 145)):
        chain.set_pool_price(POOLS[venue], WSOL, price)
    usdc_before, sol_before = chain.token_balance(WALLET, USDC_MINT), chain.sol_balance(WALLET)
    oid = exact_out_order(store)
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    assert statuses(store, oid) == ["pending", "routing", "building", "submitted", "confirmed"]
    routing = store.events(oid)[1].detail
    # Every pool quoted the input it needs; the least (net of the transaction's cost) won.
    quotes = [q for q in routing["quotes"] if "skipped" not in q]
    assert {q["venue"] for q in quotes} == {"raydium_cpmm", "meteora_damm_v2"}
    assert all(q["exactOut"] and q["amountOutUnits"] == str(15 * USDC) for q in quotes)
    [chosen] = [q for q in quotes if q["chosen"]]
    assert chosen["venue"] == cheaper
    assert int(chosen["netInUnits"]) == min(int(q["netInUnits"]) for q in quotes)
    quoted_in = int(chosen["amountInUnits"])
    assert routing["quotedAmountIn"] == format(Decimal(quoted_in).scaleb(-9).normalize(), "f")
    max_in = Decimal(routing["maxAmountIn"]).scaleb(9)
    assert max_in == int(quoted_in * Decimal("1.01"))  # the quote plus 1 % slippage
    [leg] = routing["route"]["legs"]
    assert leg["maxAmountInUnits"] == str(int(max_in))
    # One swap_base_output / swap2 ExactOut: exactly 15 USDC in, exactly the quote out.
    [swap] = landed_swaps(chain)
    assert len(swap["dexInstructions"]) == 1
    assert chain.token_balance(WALLET, USDC_MINT) - usdc_before == 15 * USDC
    spent = sol_before - chain.sol_balance(WALLET) - swap["fee"]
    assert spent == quoted_in
    assert chain.token_balance(WALLET, WSOL) == 0  # the unspent maximum came back
    order = store.get_order(oid)
    assert order is not None
    assert order.filled is not None
    assert order.filled["amountOut"] == "15"
    assert Decimal(order.filled["amountIn"]) == Decimal(spent).scaleb(-9)
    assert order.filled["quotedAmountIn"] == routing["quotedAmountIn"]
    assert order.filled["maxAmountIn"] == routing["maxAmountIn"]
    assert order.filled["slippageBps"] == 0
    assert order.amount_in == Decimal(routing["maxAmountIn"])  # what the key's limits counted


async def test_an_exact_out_order_for_sol_gets_exactly_that_sol(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    sol_before = chain.sol_balance(WALLET)
    usdc_before = chain.token_balance(WALLET, USDC_MINT)
    oid = exact_out_order(store, tokenIn="USDC", tokenOut="SOL", amountOut="0.1")
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    [swap] = landed_swaps(chain)
    assert chain.sol_balance(WALLET) - sol_before == SOL // 10 - swap["fee"]
    order = store.get_order(oid)
    assert order is not None
    assert order.filled is not None
    spent = usdc_before - chain.token_balance(WALLET, USDC_MINT)
    assert spent == int(order.route["legs"][0]["quotedAmountInUnits"])  # type: ignore[index]
    assert Decimal(order.filled["amountIn"]) == Decimal(spent).scaleb(-6)


key = test_watcher.key
queue = test_watcher.queue
nothing_else_watching = test_watcher.nothing_else_watching


async def test_an_exact_out_limit_order_triggers_when_a_pools_input_is_within_its_limit(
    store: Store,
    chain: LocalChain,
    cfg: config.Settings,
    key: keys.ApiKey,
    queue: OrdersQueue,
) -> None:
    """15 USDC for at most 15 / 153 SOL (limitPrice 153 USDC per SOL, rounded down to a
    lamport): not while the pools ask 150-151, triggered once they ask 157, and filled with
    exactly 15 USDC for no more than that maximum, which the chain enforces (maxAmountIn)."""
    request = {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountOut": "15",
        "limitPrice": "153",
        "expiresAt": test_watcher.expires(),
    }
    order, _ = store.create_order(parse_order_request(request), None, key.id)
    max_in = (Decimal(15) / 153).scaleb(9).to_integral_value(rounding="ROUND_FLOOR")
    assert order.amount_in == max_in.scaleb(-9)
    watching = test_watcher.Watching(store, chain, queue, cfg)
    assert (await watching.tick()).triggered == 0
    test_watcher.price_sol(chain, 157)
    assert (await watching.tick()).triggered == 1
    triggered = store.events(order.id)[-1].detail
    assert Decimal(triggered["quotedAmountIn"]) <= Decimal(triggered["maxAmountIn"])
    usdc_before, sol_before = chain.token_balance(WALLET, USDC_MINT), chain.sol_balance(WALLET)
    assert (await Runner(store, chain, cfg).run(order.id)).status == "confirmed"
    [leg] = store.events(order.id)[-4].detail["route"]["legs"]
    assert leg["maxAmountInUnits"] == str(int(max_in))
    [swap] = landed_swaps(chain)
    assert chain.token_balance(WALLET, USDC_MINT) - usdc_before == 15 * USDC
    assert sol_before - chain.sol_balance(WALLET) - swap["fee"] <= max_in


async def test_the_keys_limits_apply_to_an_exact_out_orders_max_amount_in(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey
) -> None:
    """A key may sell 0.1 SOL an order: 15 USDC at 150-151 USDC/SOL quotes about 0.0996 SOL,
    but with 1 % slippage its maxAmountIn is about 0.1006: refused at routing, nothing sent;
    with 0.1 % slippage (maxAmountIn about 0.0997) it fills."""
    limits.set_limits(store.pool, key.id, {str(WSOL): limits.MintLimit(Decimal("0.1"), Decimal(1))})
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountOut": "15", "slippage": 1}
    order, _ = store.create_order(parse_order_request(body), None, key.id)
    assert order.amount_in is None  # known at routing
    outcome = await Runner(store, chain, cfg).run(order.id)
    assert outcome.status == "failed"
    assert store.events(order.id)[-1].detail["code"] == "order_limit_exceeded"
    assert landed_swaps(chain) == []
    body["slippage"] = Decimal("0.1")
    order, _ = store.create_order(parse_order_request(body), None, key.id)
    assert (await Runner(store, chain, cfg).run(order.id)).status == "confirmed"


async def test_a_large_exact_out_order_splits_across_both_venues_in_one_transaction(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    """7,000 USDC out (about 47 SOL in: enough to move the SOL/USDC pools): the output is
    shared between the CPMM and the DAMM v2 pool, each leg an exact-out swap with its own
    maxAmountIn, in one transaction; the wallet receives exactly 7,000 USDC and spends exactly
    the legs' quoted inputs, less than the cheapest single pool's quote for the same output."""
    usdc_before, sol_before = chain.token_balance(WALLET, USDC_MINT), chain.sol_balance(WALLET)
    oid = exact_out_order(store, amountOut="7000")
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    events = store.events(oid)
    routing = events[1].detail
    route = routing["route"]
    legs = route["legs"]
    assert {leg["venue"] for leg in legs} == {"raydium_cpmm", "meteora_damm_v2"}
    assert len({leg["pool"] for leg in legs}) == 2  # never two legs on one pool
    assert sum(int(leg["quotedAmountOutUnits"]) for leg in legs) == 7000 * USDC
    assert route["exactOut"] is True
    assert route["gainBps"] > cfg.min_split_gain_bps
    quoted = [int(leg["quotedAmountInUnits"]) for leg in legs]
    best_single = min(int(q["amountInUnits"]) for q in routing["quotes"] if "skipped" not in q)
    assert sum(quoted) < best_single
    # Each leg: exactly its share out, at most its quote plus 1 %; the order's maximum is theirs.
    maxima = [int(leg["maxAmountInUnits"]) for leg in legs]
    assert maxima == [int(q * Decimal("1.01")) for q in quoted]
    assert [int(leg["minAmountOutUnits"]) for leg in legs] == [
        int(leg["quotedAmountOutUnits"]) for leg in legs
    ]
    assert Decimal(routing["maxAmountIn"]) == Decimal(sum(maxima)).scaleb(-9)
    assert Decimal(routing["quotedAmountIn"]) == Decimal(sum(quoted)).scaleb(-9)
    [swap] = landed_swaps(chain)
    assert len(swap["dexInstructions"]) == 2
    assert chain.token_balance(WALLET, USDC_MINT) - usdc_before == 7000 * USDC
    spent = sol_before - chain.sol_balance(WALLET) - swap["fee"]
    assert spent == sum(quoted) < best_single
    assert chain.token_balance(WALLET, WSOL) == 0  # the unspent maxima came back
    order = store.get_order(oid)
    assert order is not None
    assert order.amount_in == Decimal(routing["maxAmountIn"])  # what the key's limits counted
    assert order.filled is not None
    assert order.filled["amountOut"] == "7000"
    assert Decimal(order.filled["amountIn"]) == Decimal(spent).scaleb(-9)
    assert order.filled["slippageBps"] == 0
    # The fill per leg, from the pools' vaults: each paid its share and took its quote.
    filled = order.filled["legs"]
    assert [leg["pool"] for leg in filled] == [leg["pool"] for leg in legs]
    assert [int(leg["amountOutUnits"]) for leg in filled] == [
        int(leg["quotedAmountOutUnits"]) for leg in legs
    ]
    assert [int(leg["amountInUnits"]) for leg in filled] == quoted
    assert sum(int(leg["amountInUnits"]) for leg in filled) == spent


async def test_an_exact_out_limit_orders_split_maxima_sum_to_its_limit(
    store: Store,
    chain: LocalChain,
    cfg: config.Settings,
    key: keys.ApiKey,
    queue: OrdersQueue,
) -> None:
    """7,000 USDC for at most 7,000 / 120 SOL: triggered (a single pool's input is within it)
    and routed on a split, whose legs' maxAmountIn share that limit (rounded down), so the
    chain still enforces it; exactly 7,000 USDC received, within the limit."""
    request = {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountOut": "7000",
        "limitPrice": "120",
        "expiresAt": test_watcher.expires(),
    }
    order, _ = store.create_order(parse_order_request(request), None, key.id)
    cap = int((Decimal(7000) / 120).scaleb(9).to_integral_value(rounding="ROUND_FLOOR"))
    watching = test_watcher.Watching(store, chain, queue, cfg)
    assert (await watching.tick()).triggered == 1
    usdc_before, sol_before = chain.token_balance(WALLET, USDC_MINT), chain.sol_balance(WALLET)
    assert (await Runner(store, chain, cfg).run(order.id)).status == "confirmed"
    legs = store.events(order.id)[-4].detail["route"]["legs"]
    assert len(legs) == 2
    quoted = [int(leg["quotedAmountInUnits"]) for leg in legs]
    maxima = [int(leg["maxAmountInUnits"]) for leg in legs]
    assert maxima == [cap * q // sum(quoted) for q in quoted]
    assert sum(maxima) <= cap
    assert all(m >= q for m, q in zip(maxima, quoted, strict=True))
    [swap] = landed_swaps(chain)
    assert chain.token_balance(WALLET, USDC_MINT) - usdc_before == 7000 * USDC
    assert sol_before - chain.sol_balance(WALLET) - swap["fee"] == sum(quoted) <= cap
