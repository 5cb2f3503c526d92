"""The watcher on the local chain with real Postgres and SQS (moto's server), and the executor
taking over what it triggers (issue 12, "Done when").

Limit orders: trigger exactly once when the price crosses, with two watchers racing; the chain
refuses a fill below the limit; back to `watching` when the price moves away before landing,
then triggered again and filled; MAX_TRIGGERS; expiry on time; cancel racing the watcher.
Sniper orders: fire on a new pool of their pair, created by the programs' real initialize
instructions, and only then: not before it opens, not on pools of other mints, not on pools
that existed before the order; the guards (poolVenue, maxPrice, minLiquidity); found from the
programs' signatures where the RPC refuses getProgramAccounts; traded even when VENUE_POOLS is
an allow-list that does not name the new pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from psycopg import OperationalError
from solders.pubkey import Pubkey

from engine import config, db, keys, observability
from engine.errors import NotCancellable
from engine.orders import Status, limit_min_out_units, parse_order_request
from engine.queue import OrdersQueue
from engine.store import Event, Order, Store
from execution import router
from execution.chain import Chain
from execution.executor import Timing
from execution.watcher import TickReport, Watcher
from local import pools as local_pools
from local.chain import POOLS, USDC_MINT, WALLET, LocalChain, client_for, seed
from tests.integration.test_executor import WSOL, Runner, landed_swaps
from tests.integration.test_submit_api import queued_ids


@pytest.fixture
def chain() -> Iterator[LocalChain]:
    chain = LocalChain.seeded()
    chain.start_ticker(0.01)
    yield chain
    chain.stop()


@pytest.fixture
def cfg(database_url: str) -> config.Settings:
    return dataclasses.replace(
        config.Settings.from_env(),
        solana_rpc_url="http://local-chain",
        solana_cluster="custom",
        pools=(),
        max_attempts=3,
        max_triggers=3,
    )


@pytest.fixture(autouse=True)
def nothing_else_watching(store: Store) -> None:
    """The watcher watches every order of the database: end what earlier tests left watching
    (cancelled, as their keys could), so each test's ticks see its own orders only."""
    for order in store.watched_orders() + store.due_to_expire():
        store.transition(
            order.id, order.status, Status.CANCELLED, detail={"reason": "cancelled by its key"}
        )


@pytest.fixture
def key(database_url: str) -> keys.ApiKey:
    return keys.create_key(f"w-{uuid.uuid4().hex[:6]}", pool=db.pool(database_url))[0]


@pytest.fixture
def queue(private_orders_queue: str) -> OrdersQueue:
    return OrdersQueue(private_orders_queue, os.environ["SQS_ENDPOINT_URL"])


class Watching:
    """A watcher "container": its own chain client, recording what it published."""

    def __init__(
        self, store: Store, chain: LocalChain, queue: OrdersQueue, cfg: config.Settings
    ) -> None:
        self.published: list[Event] = []
        self.chain = chain
        self.watcher = Watcher(
            store,
            Chain("http://local-chain", client_for(chain)),
            queue,
            cfg,
            publish=self.published.append,
        )

    async def tick(self) -> TickReport:
        return await self.watcher.tick()


def expires(seconds: float = 3600) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def limit_order(store: Store, key: keys.ApiKey, price: str, **body: Any) -> uuid.UUID:
    request = {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": "0.01",
        "limitPrice": price,
        "expiresAt": expires(),
        **body,
    }
    order, _ = store.create_order(parse_order_request(request), None, key.id)
    return order.id


def sniper_order(
    store: Store, key: keys.ApiKey, chain: LocalChain, mint: str, **body: Any
) -> uuid.UUID:
    request = {
        "orderType": "sniper",
        "tokenIn": "USDC",
        "tokenOut": mint,
        "amountIn": "5",
        "expiresAt": expires(),
        **body,
    }
    order, _ = store.create_order(
        parse_order_request(request), None, key.id, watch_from_slot=chain.ledger.slot
    )
    return order.id


def price_sol(chain: LocalChain, usdc_per_sol: int, *, confirm: bool = True) -> None:
    """Both SOL/USDC pools at `usdc_per_sol` (1,000 SOL deep), confirmed (what the watcher and
    the router read) unless `confirm` is False."""
    for pool in POOLS.values():
        chain.set_pool_price(pool, WSOL, usdc_per_sol, confirm=confirm)


async def best_out(chain: LocalChain, amount: Decimal) -> int:
    """The router's best output (USDC units) for `amount` SOL on the seeded pools."""
    decision = await router.quote_all_venues(
        Chain("http://local-chain", client_for(chain)),
        [config.PoolConfig(v, str(a)) for v, a in POOLS.items()],
        mint_in=str(WSOL),
        mint_out=str(USDC_MINT),
        amount_in=amount,
        priority_fee=0,
    )
    return max(q.amount_out_units for q in decision.quotes)


async def passed(store: Store, moment: datetime | None, timeout: float = 30) -> None:
    """Wait until the database's clock (the one expiry is judged by) has passed `moment`."""
    assert moment is not None
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with store.pool.connection() as conn:
            row = conn.execute("SELECT now() > %s AS passed", (moment,)).fetchone()
        if row is not None and row["passed"]:
            return
        assert asyncio.get_running_loop().time() < deadline, f"the clock never passed {moment}"
        await asyncio.sleep(0.02)


def current(store: Store, oid: uuid.UUID) -> Order:
    order = store.get_order(oid)
    assert order is not None
    return order


def statuses(store: Store, oid: uuid.UUID) -> list[str]:
    return [str(e.status) for e in store.events(oid)]


# -- limit orders ---------------------------------------------------------------------------------


def test_a_limit_order_triggers_exactly_once_when_the_price_crosses_with_two_watchers_racing(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """Ten orders at 152, 153 ... 161 USDC/SOL; the pools pay 150-151. Two watchers tick
    together, in threads of their own: nothing triggers. The price goes to 157: the five
    orders at or below it trigger, each exactly once, with one queue message each."""
    ids = {limit_order(store, key, str(152 + i)): 152 + i for i in range(10)}
    watchers = [Watching(store, chain, queue, cfg) for _ in range(2)]

    def race() -> list[TickReport]:
        start = threading.Barrier(2)
        reports: list[TickReport] = []

        def run(w: Watching) -> None:
            start.wait()
            reports.append(asyncio.run(w.tick()))

        threads = [threading.Thread(target=run, args=(w,)) for w in watchers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return reports

    # The watcher re-sends the queue message of any `triggered` order it finds unqueued: orders
    # other tests of the session left triggered share this database and queue, so only this
    # test's orders are counted.
    ours = {str(o) for o in ids}

    def queued() -> list[str]:
        return sorted(m for m in queued_ids(queue.url or "") if m in ours)

    assert sum(r.triggered for r in race()) == 0
    assert queued() == []
    price_sol(chain, 157)
    best = asyncio.run(best_out(chain, Decimal("0.01")))  # what routing would get now
    crossed = {oid for oid, limit in ids.items() if limit * 10_000 <= best}
    reports = race()
    assert sum(r.triggered for r in reports) == len(crossed) > 0
    assert queued() == sorted(str(o) for o in crossed)  # one message each
    for oid, limit in ids.items():
        history = statuses(store, oid)
        if oid in crossed:
            assert history == ["pending", "watching", "triggered"], (limit, history)
            trigger = store.events(oid)[-1].detail
            assert trigger["reason"] == "limit_reached"
            assert Decimal(trigger["amountOut"]) >= Decimal(trigger["minAmountOut"])
            assert Decimal(trigger["minAmountOut"]) == Decimal(limit) / 100
            assert trigger["pool"] in {str(p) for p in POOLS.values()}
            assert current(store, oid).triggers == 1
        else:
            assert history == ["pending", "watching"], (limit, history)
    # Each trigger was published by the watcher that won it, and by no other.
    published = [e.order_id for w in watchers for e in w.published]
    assert sorted(published) == sorted(crossed)


async def test_a_triggered_limit_order_fills_at_or_above_its_limit(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    oid = limit_order(store, key, "149.5")
    usdc_before = chain.token_balance(WALLET, USDC_MINT)
    assert (await Watching(store, chain, queue, cfg).tick()).triggered == 1
    assert queued_ids(queue.url or "") == [str(oid)]
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    order = current(store, oid)
    assert statuses(store, oid)[-5:] == [
        "triggered",
        "routing",
        "building",
        "submitted",
        "confirmed",
    ]
    minimum = limit_min_out_units(Decimal("0.01"), Decimal("149.5"), 6)
    assert order.min_amount_out == minimum  # the chain enforced amountIn x limitPrice
    received = chain.token_balance(WALLET, USDC_MINT) - usdc_before
    assert received >= minimum
    [swap] = landed_swaps(chain)
    assert swap["signature"] == order.tx_signature


async def test_a_large_limit_order_splits_at_its_trigger_with_minimums_summing_to_its_limit(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    oid = limit_order(store, key, "140", amountIn="50")
    usdc_before = chain.token_balance(WALLET, USDC_MINT)
    assert (await Watching(store, chain, queue, cfg).tick()).triggered == 1
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    order = current(store, oid)
    assert order.route is not None
    legs = order.route["legs"]
    assert {leg["venue"] for leg in legs} == {"raydium_cpmm", "meteora_damm_v2"}
    floor = limit_min_out_units(Decimal("50"), Decimal("140"), 6)
    mins = [int(leg["minAmountOutUnits"]) for leg in legs]
    # The limit shared among the legs in proportion to their quotes, rounded up: together at
    # least amountIn x limitPrice, each at most its own quote.
    assert floor <= sum(mins) < floor + len(legs)
    assert all(m <= int(leg["quotedAmountOutUnits"]) for m, leg in zip(mins, legs, strict=True))
    assert order.min_amount_out == sum(mins)
    received = chain.token_balance(WALLET, USDC_MINT) - usdc_before
    assert received == int(order.route["amountOutUnits"]) >= floor
    [swap] = landed_swaps(chain)
    assert len(swap["dexInstructions"]) == 2


async def test_the_chain_refuses_a_fill_below_the_limit_and_the_order_watches_again(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """The transaction passes preflight, then the price drops before it lands: the program
    refuses it (its minimum output is the limit), it lands failed, and the order goes back to
    watching with the landed transaction in the event. Nothing ever filled below the limit."""
    oid = limit_order(store, key, "149.5")
    assert (await Watching(store, chain, queue, cfg).tick()).triggered == 1
    chain.faults.update(landing_delay_blocks=3)
    runner = Runner(store, chain, cfg)
    send = runner.client.send

    async def send_then_move_price(raw: bytes) -> None:
        await send(raw)
        price_sol(chain, 140, confirm=False)  # no blocks: it must land after both moves

    runner.client.send = send_then_move_price  # type: ignore[method-assign,assignment]
    outcome = await runner.run(oid)
    assert outcome.status == "watching"
    order = current(store, oid)
    assert order.status == Status.WATCHING
    assert (order.tx_signature, order.attempts, order.amount_out) == (None, 0, None)
    back = store.events(oid)[-1]
    assert back.status == Status.WATCHING
    assert back.detail["code"] == "slippage_exceeded"
    assert back.detail["txOutcome"] == "landed with an error"
    [landed] = [t for t in chain.txlog() if t["signature"] == back.detail["txHash"]]
    assert landed["err"] is not None
    assert back.detail["slot"] == landed["slot"]
    assert landed_swaps(chain) == []  # nothing filled
    building = next(e for e in store.events(oid) if e.status == Status.BUILDING)
    assert building.detail["minAmountOut"] == "1.495"
    # At 140 the limit is not met: the watcher leaves it watching.
    chain.faults.update(landing_delay_blocks=0)
    assert (await Watching(store, chain, queue, cfg).tick()).triggered == 0


async def test_the_simulation_refuses_for_price_and_the_order_watches_again_unsigned(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """The price moves away between the quote and the build: the simulation before signing
    refuses the swap for price, so the order watches again with nothing signed, stored or sent
    (no fee); when the price comes back it triggers a second time and fills."""

    def move_away(event: Event) -> None:
        if event.status is Status.BUILDING and event.order_id == oid:
            price_sol(chain, 140)

    oid = limit_order(store, key, "149.5")
    watching = Watching(store, chain, queue, cfg)
    assert (await watching.tick()).triggered == 1
    log = chain.txlog()
    assert (await Runner(store, chain, cfg, on_event=move_away).run(oid)).status == "watching"
    back = store.events(oid)[-1]
    assert (back.detail["code"], back.detail["trigger"]) == ("slippage_exceeded", 1)
    assert "txHash" not in back.detail
    # Nothing of the wallet's reached the chain (the market maker's price moves are all that
    # landed).
    assert [t for t in chain.txlog() if t not in log and t["feePayer"] == str(WALLET)] == []
    price_sol(chain, 151)
    assert (await watching.tick()).triggered == 1
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    assert statuses(store, oid) == [
        "pending", "watching", "triggered", "routing", "building", "watching",
        "triggered", "routing", "building", "submitted", "confirmed",
    ]  # fmt: skip
    assert len(landed_swaps(chain)) == 1


async def test_back_to_watching_when_the_price_moves_away_before_landing_then_filled(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """The price moves away after the simulation, between the signing and the send: the
    node's preflight refuses the swap. The signed transaction is followed until it can no
    longer land, then the order watches again; when the price comes back it triggers a second
    time and fills."""

    def move_away(event: Event) -> None:
        if event.status is Status.SUBMITTED and event.order_id == oid:
            price_sol(chain, 140)

    oid = limit_order(store, key, "149.5")
    watching = Watching(store, chain, queue, cfg)
    assert (await watching.tick()).triggered == 1
    outcome = await Runner(store, chain, cfg, on_event=move_away).run(oid)
    assert outcome.status == "watching"
    back = store.events(oid)[-1]
    assert back.detail["txOutcome"] == "expired unlanded"
    assert back.detail["trigger"] == 1
    assert back.detail["txHash"] not in {t["signature"] for t in chain.txlog()}  # never landed
    price_sol(chain, 151)
    assert (await watching.tick()).triggered == 1
    assert current(store, oid).triggers == 2
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    assert statuses(store, oid) == [
        "pending", "watching", "triggered", "routing", "building", "submitted", "watching",
        "triggered", "routing", "building", "submitted", "confirmed",
    ]  # fmt: skip
    submitted = [e.detail["txHash"] for e in store.events(oid) if e.status == Status.SUBMITTED]
    assert len(set(submitted)) == 2  # each cycle its own transaction, landed at most once
    assert [t["signature"] for t in landed_swaps(chain)] == [submitted[1]]


async def test_a_refused_limit_order_still_in_doubt_is_retried_not_failed(
    store: Store,
    chain: LocalChain,
    cfg: config.Settings,
    key: keys.ApiKey,
    queue: OrdersQueue,
) -> None:
    """Preflight refused the send, and the transaction's blockhash outlives this invocation's
    landing budget: the message is retried (the order stays `submitted`), never failed or
    treated as a bug; the next delivery sees it out and sends the order back to watching."""

    def move_away(event: Event) -> None:
        if event.status is Status.SUBMITTED and event.order_id == oid:  # signed, not yet sent
            price_sol(chain, 140)

    oid = limit_order(store, key, "149.5")
    assert (await Watching(store, chain, queue, cfg).tick()).triggered == 1
    runner = Runner(store, chain, cfg, on_event=move_away)
    runner.executor.timing = Timing(
        poll_seconds=0.01, resend_seconds=0.05, land_timeout_seconds=0.2
    )
    observability.metrics.metric_set.pop("InternalError", None)
    first = await runner.run(oid)
    assert (first.status, first.retry) == ("retry", True)
    assert current(store, oid).status == Status.SUBMITTED
    assert "InternalError" not in observability.metrics.metric_set  # a wait, not a bug
    runner.executor.timing = Timing(poll_seconds=0.01, resend_seconds=0.05, land_timeout_seconds=20)
    assert (await runner.run(oid, receive_count=2)).status == "watching"
    assert landed_swaps(chain) == []
    assert current(store, oid).failure_code is None


async def test_a_quote_below_the_limit_at_routing_watches_again_without_a_transaction(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    oid = limit_order(store, key, "149.5")
    assert (await Watching(store, chain, queue, cfg).tick()).triggered == 1
    price_sol(chain, 140)  # between the trigger and the executor's quote
    assert (await Runner(store, chain, cfg).run(oid)).status == "watching"
    assert statuses(store, oid)[-3:] == ["triggered", "routing", "watching"]
    assert "below the order's minimum of 1.495" in store.events(oid)[-1].detail["reason"]
    sent = [t for t in chain.txlog() if t["dexInstructions"] and t["feePayer"] == str(WALLET)]
    assert sent == []  # nothing was sent


async def test_a_limit_order_refused_max_triggers_times_fails_too_many_triggers(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    oid = limit_order(store, key, "149.5")
    watching = Watching(store, chain, queue, cfg)
    for attempt in range(1, cfg.max_triggers + 1):
        price_sol(chain, 151)
        assert (await watching.tick()).triggered == 1
        price_sol(chain, 140)
        outcome = await Runner(store, chain, cfg).run(oid)
        assert outcome.status == ("failed" if attempt == cfg.max_triggers else "watching")
    order = current(store, oid)
    assert order.failure_code == "too_many_triggers"
    assert f"each of its {cfg.max_triggers} triggers" in (order.failure_reason or "")
    assert "below the order's minimum" in (order.failure_reason or "")
    assert statuses(store, oid).count("triggered") == cfg.max_triggers


async def test_a_limit_order_expires_on_time(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    request = parse_order_request(
        {
            "orderType": "limit",
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amountIn": "0.01",
            "limitPrice": "160",
            "expiresAt": expires(1.5),
        }
    )
    oid = store.create_order(request, None, key.id)[0].id
    watching = Watching(store, chain, queue, cfg)
    assert (await watching.tick()).expired == 0
    assert current(store, oid).status == Status.WATCHING
    await passed(store, current(store, oid).expires_at)
    report = await watching.tick()
    assert (report.expired, report.watched) == (1, 0)
    order = current(store, oid)
    assert order.status == Status.EXPIRED
    ended = store.events(oid)[-1]
    assert order.expires_at is not None
    assert order.expires_at <= ended.at < order.expires_at + timedelta(seconds=1)
    assert [e.status for e in watching.published] == [Status.EXPIRED]
    # Over: nothing triggers it, nothing cancels it.
    price_sol(chain, 170)
    assert (await watching.tick()).triggered == 0
    with pytest.raises(NotCancellable, match="is expired"):
        store.cancel(oid, key.id)


def test_cancel_racing_the_watcher_leaves_exactly_one_outcome_per_order(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    ids = [limit_order(store, key, "149.5") for _ in range(30)]
    watching = Watching(store, chain, queue, cfg)
    start = threading.Barrier(2)
    cancelled: list[uuid.UUID] = []
    refused: list[uuid.UUID] = []

    def cancel_all() -> None:
        start.wait()
        for oid in ids:
            try:
                store.cancel(oid, key.id)
                cancelled.append(oid)
            except NotCancellable:
                refused.append(oid)

    def tick() -> None:
        start.wait()
        asyncio.run(watching.tick())

    threads = [threading.Thread(target=cancel_all), threading.Thread(target=tick)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    triggered = {oid for oid in ids if current(store, oid).status == Status.TRIGGERED}
    assert triggered == set(refused)
    assert triggered | set(cancelled) == set(ids)
    assert not triggered & set(cancelled)
    assert sorted(queued_ids(queue.url or "")) == sorted(str(o) for o in triggered)
    for oid in ids:
        assert len(statuses(store, oid)) == 3


async def test_a_trigger_whose_message_did_not_go_out_is_queued_again(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    oid = limit_order(store, key, "149.5")
    broken = Watching(store, chain, OrdersQueue(None), cfg)  # no queue: the send fails
    assert (await broken.tick()).triggered == 1
    assert queued_ids(queue.url or "") == []
    with db.pool(os.environ["DATABASE_URL"]).connection() as conn:  # time passes
        conn.execute(
            "UPDATE orders SET updated_at = now() - interval '1 minute' WHERE id = %s", (oid,)
        )
    report = await Watching(store, chain, queue, cfg).tick()
    assert report.requeued == 1
    assert queued_ids(queue.url or "") == [str(oid)]
    assert current(store, oid).enqueued_at is not None


# -- sniper orders --------------------------------------------------------------------------------


async def new_token(chain: LocalChain) -> str:
    client = client_for(chain)
    mint, _ = await local_pools.mint_new_token(client, seed.WALLET_KEYPAIR, 6, 10**12)
    return str(mint)


async def once_open(watching: Watching, seconds: float = 30.0) -> TickReport:
    """The first tick once a new pool is open: a CPMM pool made with open_time 0 opens a second
    of chain time after it lands, and a sniper order fires on a pool only once it is open. The
    chain's clock is moved past that (never waited for: on a loaded machine a second of wall
    time is no measure of chain time), then it ticks until one triggers or `seconds` pass."""
    watching.chain.ledger.shift_time(2)
    deadline = time.monotonic() + seconds
    while True:
        report = await watching.tick()
        if report.triggered or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.02)


async def new_pool(
    chain: LocalChain, mint: str, venue: str = "raydium_cpmm", **request: Any
) -> local_pools.Created:
    client = client_for(chain)
    wanted = {"price": Decimal("0.5"), "liquidity": Decimal(1_000), **request}
    return await local_pools.create_pool(
        client, local_pools.PoolRequest(venue, mint=mint, **wanted), seed.WALLET_KEYPAIR
    )


@pytest.mark.parametrize("venue", ["raydium_cpmm", "meteora_damm_v2"])
async def test_a_sniper_order_fires_on_a_new_pool_of_its_pair_and_fills_there(
    store: Store,
    chain: LocalChain,
    cfg: config.Settings,
    key: keys.ApiKey,
    queue: OrdersQueue,
    venue: str,
) -> None:
    mint = await new_token(chain)
    oid = sniper_order(store, key, chain, mint)
    watching = Watching(store, chain, queue, cfg)
    assert (await watching.tick()).triggered == 0  # no pool of the pair yet
    created = await new_pool(chain, mint, venue)
    assert (await once_open(watching)).triggered == 1
    trigger = store.events(oid)[-1].detail
    assert (trigger["reason"], trigger["pool"], trigger["venue"]) == (
        "new_pool",
        created.pool,
        venue,
    )
    assert (trigger["createdSlot"], trigger["creationTx"]) == (created.slot, created.signature)
    assert trigger["seenSlot"] >= created.slot
    assert current(store, oid).pinned_pool == created.pool
    assert queued_ids(queue.url or "") == [str(oid)]
    received_before = chain.token_balance(WALLET, Pubkey.from_string(mint))
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    order = current(store, oid)
    assert order.pool == created.pool
    assert chain.token_balance(WALLET, Pubkey.from_string(mint)) > received_before
    assert (await watching.tick()).triggered == 0  # over


async def test_a_sniper_order_ignores_pools_of_other_mints_and_pools_older_than_itself(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    mint, other = await new_token(chain), await new_token(chain)
    old = await new_pool(chain, mint, "raydium_cpmm")  # before the order: not new to it
    oid = sniper_order(store, key, chain, mint)
    watching = Watching(store, chain, queue, cfg)
    assert (await watching.tick()).triggered == 0
    await new_pool(chain, other, "raydium_cpmm")  # a new pool, of another mint
    assert (await watching.tick()).triggered == 0
    assert current(store, oid).status == Status.WATCHING
    fresh = await new_pool(chain, mint, "meteora_damm_v2")
    assert (await watching.tick()).triggered == 1
    trigger = store.events(oid)[-1].detail
    assert trigger["pool"] == fresh.pool != old.pool
    assert trigger["createdSlot"] == fresh.slot


async def test_a_sniper_order_waits_for_its_new_pool_to_open(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    mint = await new_token(chain)
    oid = sniper_order(store, key, chain, mint)
    created = await new_pool(chain, mint, "raydium_cpmm", opens_in=3_600)
    watching = Watching(store, chain, queue, cfg)
    for _ in range(3):
        assert (await watching.tick()).triggered == 0
    assert current(store, oid).status == Status.WATCHING
    chain.ledger.shift_time(3_700)  # the cluster's clock passes the pool's open time
    assert (await watching.tick()).triggered == 1
    trigger = store.events(oid)[-1].detail
    assert trigger["pool"] == created.pool
    opens = datetime.fromisoformat(trigger["opensAt"].replace("Z", "+00:00"))
    assert opens.timestamp() <= chain.ledger.clock().unix_timestamp


async def test_a_sniper_orders_guards_keep_it_watching(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """A pool of the wrong venue, too dear (0.5 USDC per token against maxPrice 0.4), or too
    thin (500 USDC against minLiquidity 1,000) does not trigger it; one that passes does."""
    mint = await new_token(chain)
    venue_only = sniper_order(store, key, chain, mint, poolVenue="meteora_damm_v2")
    cheap_only = sniper_order(store, key, chain, mint, maxPrice="0.4")
    deep_only = sniper_order(store, key, chain, mint, minLiquidity="1000")
    watching = Watching(store, chain, queue, cfg)
    await new_pool(chain, mint, "raydium_cpmm", price=Decimal("0.5"), liquidity=Decimal(1_000))
    assert (await watching.tick()).triggered == 0
    await new_pool(chain, mint, "meteora_damm_v2", price=Decimal("0.3"), liquidity=Decimal(5_000))
    assert (await watching.tick()).triggered == 3
    for oid in (venue_only, cheap_only, deep_only):
        assert store.events(oid)[-1].detail["venue"] == "meteora_damm_v2"
    cheap = store.events(cheap_only)[-1].detail
    # maxPrice bounds tokenIn per tokenOut; the frame's price is tokenOut per tokenIn, as fills
    assert Decimal(cheap["amountIn"]) / Decimal(cheap["amountOut"]) <= Decimal("0.4")
    assert Decimal(cheap["price"]) >= 1 / Decimal("0.4")
    assert abs(
        Decimal(cheap["price"]) * Decimal(cheap["amountIn"]) - Decimal(cheap["amountOut"])
    ) < (Decimal("0.001") * Decimal(cheap["amountOut"]))
    assert Decimal(store.events(deep_only)[-1].detail["liquidity"]) >= 1_000


async def test_new_pools_are_found_from_program_signatures_where_get_program_accounts_is_refused(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    chain.faults.update(refuse_methods=["getProgramAccounts"])
    mint = await new_token(chain)
    old = await new_pool(chain, mint, "raydium_cpmm")
    oid = sniper_order(store, key, chain, mint)
    watching = Watching(store, chain, queue, cfg)
    assert (await watching.tick()).triggered == 0  # the old pool is before the order
    fresh = await new_pool(chain, mint, "meteora_damm_v2")
    assert (await watching.tick()).triggered == 1
    trigger = store.events(oid)[-1].detail
    assert trigger["pool"] == fresh.pool != old.pool
    assert (trigger["createdSlot"], trigger["creationTx"]) == (fresh.slot, fresh.signature)
    with db.pool(os.environ["DATABASE_URL"]).connection() as conn:
        cursors = conn.execute("SELECT count(*) AS n FROM watch_cursors").fetchone()
    assert cursors is not None
    assert cursors["n"] >= 1


async def test_a_sniper_order_trades_its_new_pool_when_venue_pools_is_an_allow_list(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    listed = dataclasses.replace(
        cfg, pools=tuple(config.PoolConfig(v, str(a)) for v, a in POOLS.items())
    )
    mint = await new_token(chain)
    oid = sniper_order(store, key, chain, mint)
    created = await new_pool(chain, mint, "raydium_cpmm")
    assert (await once_open(Watching(store, chain, queue, listed))).triggered == 1
    assert (await Runner(store, chain, listed).run(oid)).status == "confirmed"
    assert current(store, oid).pool == created.pool


def test_an_executor_leaves_a_watching_order_alone(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey
) -> None:
    """A stale message (a redelivery after the order went back to watching) changes nothing."""
    oid = limit_order(store, key, "170")
    before = statuses(store, oid)
    assert asyncio.run(Runner(store, chain, cfg).run(oid)).status == "watching"
    assert asyncio.run(Runner(store, chain, cfg).executor.settle_dead_letter(oid)).status in (
        "watching",
    )
    assert statuses(store, oid) == before
    assert landed_swaps(chain) == []


async def test_an_idle_watcher_may_end_its_invocation_early(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """WATCH_STOP_WHEN_IDLE: nothing watching, one tick and the invocation ends; while an order
    watches, it ticks on until its time is up."""
    watcher = Watching(store, chain, queue, cfg).watcher
    idle = await watcher.run(lambda: True, 0.05, stop_when_idle=True)
    assert [r.watched for r in idle] == [0]
    limit_order(store, key, "900")
    until = asyncio.get_running_loop().time() + 0.5
    busy = await watcher.run(
        lambda: asyncio.get_running_loop().time() < until, 0.05, stop_when_idle=True
    )
    assert len(busy) >= 3
    assert all(r.watched == 1 for r in busy)


async def test_the_garbage_collector_waits_for_a_tick_and_runs_again_after_it(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: OrdersQueue
) -> None:
    """A tick prices with Python's cyclic collector paused (no full collection between a limit
    met and its trigger); after every tick, a failed one too, it is on again."""
    watcher = Watching(store, chain, queue, cfg).watcher
    limit_order(store, key, "900")
    during: list[bool] = []
    real_tick = watcher.tick

    async def tick() -> TickReport:
        during.append(gc.isenabled())
        if len(during) == 2:
            raise OperationalError("Postgres went away mid-tick")
        return await real_tick()

    watcher.tick = tick  # type: ignore[method-assign]
    reports = await watcher.run(lambda: len(during) < 3, 0.01)
    assert during == [False, False, False]
    assert gc.isenabled()
    assert [r.watched for r in reports] == [1, 1]  # the failed tick is logged, the next one ran
