"""The watcher triggers a limit order that no single pool pays but a split over two pools does
(the seeded SOL/USDC pools on the real programs, real Postgres and SQS), and the executor then
fills it split, at or above its limit."""

from __future__ import annotations

import uuid
from decimal import Decimal

from engine import config, keys
from engine.orders import parse_order_request
from engine.queue import OrdersQueue
from engine.store import Store
from execution import router
from execution.chain import Chain
from local.chain import POOLS, USDC_MINT, WALLET, LocalChain, client_for
from tests.integration import test_watcher
from tests.integration.test_executor import WSOL, Runner, landed_swaps

# The watcher suite's fixtures: a seeded chain per test, settings, a key, a private queue, and
# nothing else of the database watching.
chain = test_watcher.chain
cfg = test_watcher.cfg
key = test_watcher.key
queue = test_watcher.queue
nothing_else_watching = test_watcher.nothing_else_watching


async def test_a_limit_order_only_a_split_meets_triggers_and_fills_split(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """50 SOL moves either pool's price: the best pool alone pays less than the best split.
    A limit between the two triggers (on the split), and the fill meets it; a limit above the
    split does not trigger."""
    decision = await router.quote_all_venues(
        Chain("http://local-chain", client_for(chain)),
        [config.PoolConfig(v, str(a)) for v, a in POOLS.items()],
        mint_in=str(WSOL),
        mint_out=str(USDC_MINT),
        amount_in=Decimal(50),
        priority_fee=0,
    )
    assert decision.split is not None
    single = max(q.amount_out_units for q in decision.quotes)
    both = decision.split.amount_out_units
    assert both > single
    between = (Decimal(single + both) / 2).scaleb(-6) / 50
    above = (Decimal(both + 10_000)).scaleb(-6) / 50
    too_high = test_watcher.limit_order(
        store, key, format(above.quantize(Decimal("0.0001")), "f"), amountIn="50"
    )
    oid = test_watcher.limit_order(
        store, key, format(between.quantize(Decimal("0.0001")), "f"), amountIn="50"
    )
    watching = test_watcher.Watching(store, chain, queue, cfg)
    report = await watching.tick()
    assert report.triggered == 1
    assert test_watcher.current(store, too_high).status == "watching"
    triggered = store.events(oid)[-1]
    assert triggered.status == "triggered"
    assert {leg["venue"] for leg in triggered.detail["split"]} == {
        "raydium_cpmm",
        "meteora_damm_v2",
    }
    usdc_before = chain.token_balance(WALLET, USDC_MINT)
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    order = test_watcher.current(store, oid)
    assert order.route is not None
    assert len(order.route["legs"]) == 2
    received = chain.token_balance(WALLET, USDC_MINT) - usdc_before
    assert Decimal(received).scaleb(-6) >= Decimal(50) * Decimal(order.limit_price or 0)
    assert received > single  # more than the best pool alone would have paid
    [swap] = landed_swaps(chain)
    assert len(swap["dexInstructions"]) == 2


async def test_an_exact_out_limit_order_only_a_split_meets_triggers_and_fills_split(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """7,000 USDC out moves either pool's price: the cheapest pool alone needs more SOL than
    the best split of the output. A maximum input between the two (amountOut / limitPrice)
    triggers (on the split), and the fill takes no more than it; a maximum below the split's
    input does not trigger."""
    decision = await router.quote_exact_out_all(
        Chain("http://local-chain", client_for(chain)),
        [config.PoolConfig(v, str(a)) for v, a in POOLS.items()],
        mint_in=str(WSOL),
        mint_out=str(USDC_MINT),
        amount_out=Decimal(7000),
        priority_fee=0,
    )
    assert decision.split is not None
    single = min(q.amount_in_units for q in decision.quotes)
    both = sum(leg.amount_in_units for leg in decision.split.legs)
    assert both < single

    def exact_out_limit(max_in_units: int) -> str:
        price = Decimal(7000) / Decimal(max_in_units).scaleb(-9)
        return format(price.quantize(Decimal("0.0001")), "f")

    def order(limit: str) -> uuid.UUID:
        request = {
            "orderType": "limit",
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amountOut": "7000",
            "limitPrice": limit,
            "expiresAt": test_watcher.expires(),
        }
        made, _ = store.create_order(parse_order_request(request), None, key.id)
        oid: uuid.UUID = made.id
        return oid

    too_low = order(exact_out_limit(both - 10**7))  # 0.01 SOL less than the split takes
    oid = order(exact_out_limit((single + both) // 2))
    watching = test_watcher.Watching(store, chain, queue, cfg)
    report = await watching.tick()
    assert report.triggered == 1
    assert test_watcher.current(store, too_low).status == "watching"
    triggered = store.events(oid)[-1]
    assert triggered.status == "triggered"
    assert {leg["venue"] for leg in triggered.detail["split"]} == {
        "raydium_cpmm",
        "meteora_damm_v2",
    }
    max_in = test_watcher.current(store, oid).amount_in
    assert max_in is not None
    usdc_before, sol_before = chain.token_balance(WALLET, USDC_MINT), chain.sol_balance(WALLET)
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    filled = test_watcher.current(store, oid)
    assert filled.route is not None
    assert len(filled.route["legs"]) == 2
    assert chain.token_balance(WALLET, USDC_MINT) - usdc_before == 7000 * 10**6
    [swap] = landed_swaps(chain)
    assert len(swap["dexInstructions"]) == 2
    spent = sol_before - chain.sol_balance(WALLET) - swap["fee"]
    assert spent <= max_in.scaleb(9)
    assert spent < single  # less than the cheapest pool alone would have taken
