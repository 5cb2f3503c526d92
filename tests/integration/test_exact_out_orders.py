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

from engine import config
from engine.orders import parse_order_request
from engine.store import Store
from local.chain import POOLS, USDC_MINT, WALLET, LocalChain
from tests.integration import test_executor
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
