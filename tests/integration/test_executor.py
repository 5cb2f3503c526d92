"""Executing orders on the local chain with real Postgres: routing, landing, retries, crashes.

Each test gets a freshly seeded chain (wallet, USDC, two SOL/USDC pools at 150 and 151 USDC/SOL)
and drives the production Executor through the production solana-py client. "Exactly one swap"
is read from the chain's own log of landed transactions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from solders.pubkey import Pubkey

from engine import config
from engine.api import present_order
from engine.orders import Status, parse_order_request
from engine.store import Event, Store
from execution.chain import Chain
from execution.executor import Executor, Outcome, Timing
from execution.wallet import Wallet
from local.chain import POOLS, USDC_MINT, WALLET, LocalChain, client_for, seed

SOL = 10**9
USDC = 10**6
WSOL = Pubkey.from_string("So11111111111111111111111111111111111111112")


class Crash(BaseException):
    """The process dying mid-step: not an Exception, so no handler in the engine catches it."""


@pytest.fixture
def chain() -> Iterator[LocalChain]:
    chain = LocalChain.seeded()
    chain.start_ticker(0.01)
    yield chain
    chain.stop()


@pytest.fixture
def cfg(database_url: str) -> config.Settings:
    # No VENUE_POOLS: the pools are found by discovery (and cached), as a devnet user's are.
    return dataclasses.replace(
        config.Settings.from_env(),
        solana_rpc_url="http://local-chain",
        solana_cluster="custom",
        pools=(),
        max_attempts=3,
    )


class Runner:
    """One "container": the executor with its own client, recording what it published."""

    def __init__(
        self,
        store: Store,
        chain: LocalChain,
        cfg: config.Settings,
        on_event: Callable[[Event], None] | None = None,
        rpc_timeout: float = 10,
    ) -> None:
        self.published: list[Event] = []
        self.on_event = on_event
        self.client = Chain("http://local-chain", client_for(chain, timeout=rpc_timeout))
        self.executor = Executor(
            store,
            self.client,
            Wallet(seed.WALLET_KEYPAIR),
            cfg,
            publish=self._publish,
            timing=Timing(poll_seconds=0.01, resend_seconds=0.05, land_timeout_seconds=20),
        )

    def _publish(self, event: Event) -> None:
        self.published.append(event)
        if self.on_event:
            self.on_event(event)

    async def run(self, order_id: uuid.UUID, receive_count: int = 1) -> Outcome:
        return await self.executor.run(order_id, receive_count)


def new_order(store: Store, **body: Any) -> uuid.UUID:
    request = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5, **body}
    order, _ = store.create_order(parse_order_request(request))
    oid: uuid.UUID = order.id
    return oid


def signatures(store: Store, oid: uuid.UUID) -> list[str]:
    return [e.detail["txHash"] for e in store.events(oid) if e.status is Status.SUBMITTED]


def landed_swaps(chain: LocalChain, sigs: list[str] | None = None) -> list[dict[str, Any]]:
    """The engine wallet's successful transactions with a DEX instruction (not the seed's
    pool creations nor the market maker's swaps), optionally only these signatures."""
    return [
        t
        for t in chain.txlog()
        if t["err"] is None
        and t["dexInstructions"]
        and t["feePayer"] == str(WALLET)
        and (sigs is None or t["signature"] in sigs)
    ]


def statuses(store: Store, oid: uuid.UUID) -> list[str]:
    return [str(e.status) for e in store.events(oid)]


async def test_an_order_confirms_with_both_quotes_and_the_best_chosen(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    usdc_before, sol_before = chain.token_balance(WALLET, USDC_MINT), chain.sol_balance(WALLET)
    oid = new_order(store)
    outcome = await Runner(store, chain, cfg).run(oid)
    assert outcome.status == "confirmed"
    assert statuses(store, oid) == ["pending", "routing", "building", "submitted", "confirmed"]

    routing = store.events(oid)[1].detail
    assert {q["venue"] for q in routing["quotes"]} == {"raydium_cpmm", "meteora_damm_v2"}
    chosen = [q for q in routing["quotes"] if q["chosen"]]
    assert len(chosen) == 1
    assert chosen[0]["netOutUnits"] == max(q["netOutUnits"] for q in routing["quotes"])
    assert routing["venue"] == "meteora_damm_v2"  # 151 USDC/SOL beats 150

    order = store.get_order(oid)
    assert order is not None
    assert order.status == "confirmed"
    [swap] = landed_swaps(chain)
    assert swap["signature"] == order.tx_signature
    # The wallet got exactly the quoted output and paid the amount in plus the fee: the WSOL
    # account opened for the swap was closed again, its rent back in the wallet.
    assert chain.token_balance(WALLET, USDC_MINT) - usdc_before == int(order.amount_out or 0)
    assert sol_before - chain.sol_balance(WALLET) == SOL // 100 + swap["fee"]
    assert chain.token_balance(WALLET, WSOL) == 0


@pytest.mark.parametrize("better", ["raydium_cpmm", "meteora_damm_v2"])
async def test_the_router_picks_whichever_venue_pays_more(
    store: Store, chain: LocalChain, cfg: config.Settings, better: str
) -> None:
    # Price the chosen venue at 155 USDC/SOL and the other at 145.
    for venue, price in ((better, 155), (next(v for v in POOLS if v != better), 145)):
        chain.set_pool_price(POOLS[venue], WSOL, price)
    oid = new_order(store)
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    order = store.get_order(oid)
    assert order is not None
    assert order.venue == better
    assert order.pool == str(POOLS[better])
    [swap] = landed_swaps(chain)
    assert str(POOLS[better]) in swap["dexInstructions"][0]["accounts"]


async def test_a_large_order_splits_across_both_venues_in_one_transaction(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    usdc_before = chain.token_balance(WALLET, USDC_MINT)
    oid = new_order(store, amountIn="50", slippage=1)
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    events = store.events(oid)
    routing = events[1].detail
    route = routing["route"]
    assert {leg["venue"] for leg in route["legs"]} == {"raydium_cpmm", "meteora_damm_v2"}
    assert sum(int(leg["amountInUnits"]) for leg in route["legs"]) == 50 * SOL
    assert route["gainBps"] > cfg.min_split_gain_bps
    best_single = max(int(q["amountOutUnits"]) for q in routing["quotes"])
    assert int(route["amountOutUnits"]) > best_single
    # Each leg's minimum is its own quote less the slippage; together the order's minimum.
    building = events[2].detail
    mins = [int(leg["minAmountOutUnits"]) for leg in building["route"]["legs"]]
    for leg, minimum in zip(building["route"]["legs"], mins, strict=True):
        assert minimum == int(int(leg["quotedAmountOutUnits"]) * 99 // 100)
    # One transaction, a swap on each pool, and the wallet got the legs' quotes summed: more
    # than the best single pool's quote for the same amount.
    [swap] = landed_swaps(chain)
    assert len(swap["dexInstructions"]) == 2
    received = chain.token_balance(WALLET, USDC_MINT) - usdc_before
    assert received == int(route["amountOutUnits"]) > best_single
    order = store.get_order(oid)
    assert order is not None
    assert order.filled is not None
    legs = order.filled["legs"]
    assert [leg["pool"] for leg in legs] == [leg["pool"] for leg in route["legs"]]
    assert sum(int(leg["amountOutUnits"]) for leg in legs) == received
    assert Decimal(order.filled["amountOut"]) == Decimal(received).scaleb(-6)
    shown = present_order(order, [], "custom")
    assert shown["route"]["legs"][0]["pool"] == route["legs"][0]["pool"]


async def test_a_small_order_stays_on_one_pool(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    oid = new_order(store, amountIn="0.01")
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    route = store.events(oid)[1].detail["route"]
    [leg] = route["legs"]
    assert leg["venue"] == "meteora_damm_v2"
    assert route["gainBps"] == 0
    [swap] = landed_swaps(chain)
    assert len(swap["dexInstructions"]) == 1


async def test_usdc_to_sol_unwraps_into_the_wallet(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    sol_before = chain.sol_balance(WALLET)
    oid = new_order(store, tokenIn="USDC", tokenOut="SOL", amountIn="15")
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    order = store.get_order(oid)
    assert order is not None
    [swap] = landed_swaps(chain)
    assert chain.sol_balance(WALLET) - sol_before == int(order.amount_out or 0) - swap["fee"]
    assert chain.token_balance(WALLET, WSOL) == 0


async def test_slippage_exceeded_fails_with_a_typed_reason_and_no_retry(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    def move_price(event: Event) -> None:
        if event.status is Status.BUILDING:  # the quote is taken; now the market moves 5 %
            pool = POOLS[event.detail["venue"]]
            chain.set_pool_price(pool, WSOL, 143)

    usdc_before = chain.token_balance(WALLET, USDC_MINT)
    oid = new_order(store)
    outcome = await Runner(store, chain, cfg, on_event=move_price).run(oid)
    assert outcome.status == "failed"
    assert not outcome.retry
    order = store.get_order(oid)
    assert order is not None
    assert order.failure_code == "slippage_exceeded"
    assert "slippage" in (order.failure_reason or "")
    assert store.events(oid)[-1].detail["code"] == "slippage_exceeded"
    assert landed_swaps(chain) == []
    assert chain.token_balance(WALLET, USDC_MINT) == usdc_before


async def test_insufficient_funds_fail_at_once(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    oid = new_order(store, amountIn="500")  # the wallet holds 100 SOL
    outcome = await Runner(store, chain, cfg).run(oid)
    assert outcome.status == "failed"
    assert not outcome.retry
    order = store.get_order(oid)
    assert order is not None
    assert order.failure_code == "insufficient_funds"
    assert landed_swaps(chain) == []
    # Nothing landed: the order names no transaction, no explorer link and no output.
    shown = present_order(order, [], cfg.solana_cluster, cfg.explorer_custom_url)
    assert shown["status"] == "failed"
    assert shown["txHash"] is None
    assert shown["explorerUrl"] is None
    assert shown["amountOut"] is None
    assert shown["slot"] is None
    assert "txHash" not in store.events(oid)[-1].detail
    assert shown["quotes"]  # what was expected stays visible


async def test_a_transaction_that_lands_with_an_error_stays_on_the_failed_order(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    """Preflight passes, then the price moves before the transaction lands: it lands failed,
    and the user paid its fee, so the order names it (txHash, explorer link, slot)."""
    chain.faults.update(landing_delay_blocks=3)
    runner = Runner(store, chain, cfg)
    send = runner.client.send

    async def send_then_move_price(raw: bytes) -> None:
        await send(raw)  # preflight passed; the transaction waits to land
        for pool in POOLS.values():  # no blocks produced: it must land after both moves
            chain.set_pool_price(pool, WSOL, 140, confirm=False)

    runner.client.send = send_then_move_price  # type: ignore[method-assign,assignment]
    oid = new_order(store)
    outcome = await runner.run(oid)
    assert outcome.status == "failed"
    order = store.get_order(oid)
    assert order is not None
    assert order.failure_code == "slippage_exceeded"
    [landed] = [t for t in chain.txlog() if t["signature"] == order.tx_signature]
    assert landed["err"] is not None
    shown = present_order(order, [], cfg.solana_cluster, cfg.explorer_custom_url)
    assert shown["txHash"] == order.tx_signature
    assert shown["explorerUrl"].startswith(f"https://explorer.solana.com/tx/{order.tx_signature}")
    assert shown["slot"] == landed["slot"]
    assert shown["amountOut"] is None
    failed = store.events(oid)[-1].detail
    assert failed["txHash"] == order.tx_signature
    assert failed["slot"] == landed["slot"]


async def test_a_mint_the_cluster_lacks_fails_at_once(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    oid = new_order(store, tokenOut="9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")
    outcome = await Runner(store, chain, cfg).run(oid)
    assert outcome.status == "failed"
    assert not outcome.retry
    order = store.get_order(oid)
    assert order is not None
    assert order.failure_code == "unknown_mint"
    assert statuses(store, oid) == ["pending", "failed"]


@pytest.mark.parametrize("crash_at", ["routing", "building", "submitted", "after_send"])
async def test_a_crash_after_any_step_then_redelivery_leaves_exactly_one_swap(
    store: Store, chain: LocalChain, cfg: config.Settings, crash_at: str
) -> None:
    def crash_on(event: Event) -> None:
        if str(event.status) == crash_at:
            raise Crash(crash_at)

    first = Runner(store, chain, cfg, on_event=crash_on)
    if crash_at == "after_send":  # the bytes reached the chain, then the process died
        send = first.client.send

        async def send_then_die(raw: bytes) -> None:
            await send(raw)
            raise Crash("after send")

        first.client.send = send_then_die  # type: ignore[method-assign,assignment]

    oid = new_order(store)
    with pytest.raises(Crash):
        await first.run(oid, receive_count=1)
    before = store.get_order(oid)
    assert before is not None
    assert before.status != "confirmed"

    second = Runner(store, chain, cfg)
    outcome = await second.run(oid, receive_count=2)  # the redelivery
    assert outcome.status == "confirmed"
    # The crash may have come between a commit and its publish: the redelivery publishes the
    # latest stored event again (subscribers get it by seq, so never twice).
    assert str(second.published[0].status) == crash_at.replace("after_send", "submitted")
    assert len(landed_swaps(chain)) == 1
    assert len(set(signatures(store, oid))) == 1  # resumed the stored transaction, no rebuild
    assert statuses(store, oid)[-1] == "confirmed"


async def test_a_redelivered_confirmed_order_does_nothing(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    oid = new_order(store)
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    events = len(store.events(oid))
    assert (await Runner(store, chain, cfg).run(oid, receive_count=2)).status == "confirmed"
    assert len(store.events(oid)) == events
    assert len(landed_swaps(chain)) == 1


async def test_a_brief_rate_limit_is_absorbed_without_losing_an_attempt(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    oid = new_order(store)
    chain.faults.update(rate_limit_next=2)  # two 429s in a row: retried in place
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    assert chain.faults.rate_limit_next == 0
    assert len(landed_swaps(chain)) == 1


async def test_rate_limits_are_retried_then_succeed(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    oid = new_order(store)
    # Routing makes two calls at once (the quotes and a blockhash), each retried twice in
    # place: six 429s in a row outlast both.
    chain.faults.update(rate_limit_next=6)
    runner = Runner(store, chain, cfg)
    outcome = await runner.run(oid, receive_count=1)
    assert outcome.retry
    assert outcome.status == "retry"
    assert "rate limited" in (outcome.reason or "")
    order = store.get_order(oid)
    assert order is not None
    assert order.status == "pending"
    assert (await runner.run(oid, receive_count=2)).status == "confirmed"
    assert len(landed_swaps(chain)) == 1


async def test_timeouts_are_retried_then_succeed(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    oid = new_order(store)
    # solana-py retries a transport error once by itself, and the engine twice more in place:
    # six hangs make one call fail; routing makes two calls at once (quotes and a blockhash),
    # so twelve make the attempt fail.
    chain.faults.update(timeout_next=12, hang_seconds=1.0)
    runner = Runner(store, chain, cfg, rpc_timeout=0.2)
    outcome = await runner.run(oid, receive_count=1)
    assert outcome.retry
    assert "timed out" in (outcome.reason or "")
    assert (await runner.run(oid, receive_count=2)).status == "confirmed"
    assert len(landed_swaps(chain)) == 1


async def test_a_dropped_transaction_is_rebroadcast(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    chain.faults.update(drop_next_sends=3)
    oid = new_order(store)
    assert (await Runner(store, chain, cfg).run(oid)).status == "confirmed"
    assert chain.faults.drop_next_sends == 0  # every drop was spent on our sends
    [sig] = signatures(store, oid)  # the same signed bytes, not a new transaction
    assert [s["signature"] for s in landed_swaps(chain)] == [sig]


async def test_an_expired_blockhash_leads_to_one_rebuild_not_two_swaps(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    def stop_dropping_on_rebuild(event: Event) -> None:
        if event.status is Status.SUBMITTED and event.detail["attempt"] == 2:
            chain.faults.update(drop_next_sends=0)

    chain.faults.update(drop_next_sends=10**6)  # the first transaction never lands
    oid = new_order(store)
    runner = Runner(store, chain, cfg, on_event=stop_dropping_on_rebuild)
    assert (await runner.run(oid)).status == "confirmed"
    first, second = signatures(store, oid)
    submitted = [e for e in store.events(oid) if e.status is Status.SUBMITTED]
    assert submitted[1].detail["replaces"] == first
    assert [s["signature"] for s in landed_swaps(chain)] == [second]
    assert first not in {t["signature"] for t in chain.txlog()}


async def test_a_blockhash_that_keeps_expiring_fails_after_three_attempts(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    chain.faults.update(drop_next_sends=10**6)
    oid = new_order(store)
    outcome = await Runner(store, chain, cfg).run(oid)
    assert outcome.status == "failed"
    order = store.get_order(oid)
    assert order is not None
    assert order.failure_code == "blockhash_expired"
    assert len(signatures(store, oid)) == 3
    assert landed_swaps(chain) == []


async def test_three_transient_failures_end_failed_with_the_last_reason(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    chain.faults.update(rate_limit_next=10**6)
    oid = new_order(store)
    runner = Runner(store, chain, cfg)
    for receive_count in (1, 2):
        assert (await runner.run(oid, receive_count)).retry
    outcome = await runner.run(oid, receive_count=3)  # the queue will not deliver a 4th time
    assert outcome.status == "failed"
    assert not outcome.retry
    order = store.get_order(oid)
    assert order is not None
    assert order.status == "failed"
    assert order.failure_code == "rpc_rate_limited"
    assert "after 3 attempts" in (order.failure_reason or "")


def test_ten_orders_in_parallel_do_not_interfere(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    """Ten "containers" (threads with their own event loop and client), one wallet, equal
    orders: each lands once, under its own signature."""
    usdc_before = chain.token_balance(WALLET, USDC_MINT)
    oids = [new_order(store) for _ in range(10)]

    def execute(oid: uuid.UUID) -> str:
        async def go() -> str:
            return (await Runner(store, chain, cfg).run(oid)).status

        return asyncio.run(go())

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert list(pool.map(execute, oids)) == ["confirmed"] * 10
    sigs = [sig for oid in oids for sig in signatures(store, oid)]
    assert len(set(sigs)) == 10
    assert sorted(s["signature"] for s in landed_swaps(chain)) == sorted(sigs)
    orders = [store.get_order(oid) for oid in oids]
    received = chain.token_balance(WALLET, USDC_MINT) - usdc_before
    assert received >= sum((o.min_amount_out or Decimal(0) for o in orders if o), Decimal(0))


def test_the_execute_function_reports_a_transient_failure_and_delays_the_retry(
    store: Store,
    private_orders_queue: str,
    status_queue: str,
    served_chain: tuple[LocalChain, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through functions/execute on a real SQS message: a 429 makes the record a batch item
    failure and pushes its next delivery out (ChangeMessageVisibility); the redelivery lands."""
    import time

    import boto3

    from execution import discovery
    from local.apigw import LambdaContext
    from local.handlers import fresh_module
    from local.poller import sqs_event

    monkeypatch.setenv("RETRY_BASE_SECONDS", "2")
    chain, _ = served_chain
    container = fresh_module("execute")
    handler = container.handler
    # The pair's pools are known before the faults start, so routing is the one
    # getMultipleAccounts the 429s hit (discovery's calls would absorb them: retried in place).
    catalog = discovery.catalog_for(container.chain, container.store.pool, container.cfg)
    container.loop.run_until_complete(catalog.pools_for(str(WSOL), str(USDC_MINT)))
    sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
    arn = sqs.get_queue_attributes(QueueUrl=private_orders_queue, AttributeNames=["QueueArn"])
    oid = new_order(store)
    sqs.send_message(QueueUrl=private_orders_queue, MessageBody=f'{{"orderId": "{oid}"}}')

    def deliver(wait: int) -> tuple[str, dict[str, Any]]:
        got = sqs.receive_message(
            QueueUrl=private_orders_queue, MessageSystemAttributeNames=["All"], WaitTimeSeconds=wait
        )["Messages"]
        event = sqs_event(got, arn["Attributes"]["QueueArn"], "us-east-1")
        reply: dict[str, Any] = handler(event, LambdaContext("execute"))
        return got[0]["MessageId"], reply

    try:
        chain.faults.update(rate_limit_next=6)  # both of routing's concurrent calls fail
        message_id, reply = deliver(wait=1)
        assert reply == {"batchItemFailures": [{"itemIdentifier": message_id}]}
        order = store.get_order(oid)
        assert order is not None
        assert order.status == "pending"
        backed_off = time.monotonic()
        assert sqs.receive_message(QueueUrl=private_orders_queue).get("Messages", []) == []

        _, reply = deliver(wait=5)  # due again once the 2 s backoff has passed
        assert time.monotonic() - backed_off >= 1.5
        assert reply == {"batchItemFailures": []}
        order = store.get_order(oid)
        assert order is not None
        assert order.status == "confirmed"
    finally:
        monkeypatch.undo()


async def test_giving_up_on_a_sent_transaction_says_it_may_still_land(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    def rpc_goes_down(event: Event) -> None:
        if event.status is Status.SUBMITTED:  # signed and stored; now the RPC refuses everything
            chain.faults.update(rate_limit_next=10**6)

    oid = new_order(store)
    outcome = await Runner(store, chain, cfg, on_event=rpc_goes_down).run(oid, receive_count=3)
    chain.faults.clear()
    assert outcome.status == "failed"
    order = store.get_order(oid)
    assert order is not None
    assert order.failure_code == "rpc_rate_limited"
    assert order.tx_signature
    assert order.tx_signature in (order.failure_reason or "")
    assert f"block height {order.last_valid_block_height}" in (order.failure_reason or "")


async def test_a_dead_letter_before_any_send_fails_the_order_with_a_reason(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    def crash_on_building(event: Event) -> None:
        if event.status is Status.BUILDING:
            raise Crash("building")

    oid = new_order(store)
    with pytest.raises(Crash):
        await Runner(store, chain, cfg, on_event=crash_on_building).run(oid)
    outcome = await Runner(store, chain, cfg).executor.settle_dead_letter(oid)
    assert outcome.status == "failed"
    assert not outcome.retry
    order = store.get_order(oid)
    assert order is not None
    assert order.failure_code == "execution_crashed"
    assert "no transaction was sent" in (order.failure_reason or "")
    assert landed_swaps(chain) == []


async def test_a_dead_letter_after_the_send_follows_its_transaction_to_the_end(
    store: Store, chain: LocalChain, cfg: config.Settings
) -> None:
    first = Runner(store, chain, cfg)
    send = first.client.send

    async def send_then_die(raw: bytes) -> None:
        await send(raw)
        raise Crash("after send")

    first.client.send = send_then_die  # type: ignore[method-assign,assignment]
    oid = new_order(store)
    with pytest.raises(Crash):
        await first.run(oid)
    outcome = await Runner(store, chain, cfg).executor.settle_dead_letter(oid)
    assert outcome.status == "confirmed"
    assert len(landed_swaps(chain)) == 1
    assert len(signatures(store, oid)) == 1


def test_the_execute_function_settles_what_the_redrive_moved_to_the_dlq(
    store: Store,
    private_orders_queue: str,
    status_queue: str,
    served_chain: tuple[LocalChain, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three receives that never finish (throttled, or the executor died each time), SQS's
    redrive moves the message to the DLQ, and the execute function, fed from the DLQ, puts the
    order back on the queue while no executor has started it (a throttle is not a failure), at
    most MAX_DEAD_LETTER_REQUEUES times; then it fails the order with its reason."""
    import boto3

    from execution.executor import MAX_DEAD_LETTER_REQUEUES
    from local.apigw import LambdaContext
    from local.handlers import fresh_handler
    from local.poller import sqs_event

    sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
    dlq_url = sqs.get_queue_url(QueueName=private_orders_queue.rsplit("/", 1)[1] + "-dlq")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url["QueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    monkeypatch.setenv("ORDERS_DLQ_ARN", dlq_arn)
    monkeypatch.setenv("ORDERS_QUEUE_URL", private_orders_queue)
    handler = fresh_handler("execute")
    oid = new_order(store)
    sqs.send_message(QueueUrl=private_orders_queue, MessageBody=f'{{"orderId": "{oid}"}}')
    for requeued in range(MAX_DEAD_LETTER_REQUEUES + 1):
        for _ in range(3):  # received, then throttled or the container dies: visible at once
            got = sqs.receive_message(
                QueueUrl=private_orders_queue, VisibilityTimeout=0, WaitTimeSeconds=2
            )
            assert len(got["Messages"]) == 1
            assert json.loads(got["Messages"][0]["Body"]).get("requeued", 0) == requeued
        assert sqs.receive_message(QueueUrl=private_orders_queue).get("Messages", []) == []
        dead = sqs.receive_message(
            QueueUrl=dlq_url["QueueUrl"], MessageSystemAttributeNames=["All"], WaitTimeSeconds=2
        )["Messages"]
        reply = handler(sqs_event(dead, dlq_arn, "us-east-1"), LambdaContext("execute"))
        assert reply == {"batchItemFailures": []}
        order = store.get_order(oid)
        assert order is not None
        if requeued < MAX_DEAD_LETTER_REQUEUES:
            assert order.status == "pending"  # back on the queue, not failed
    order = store.get_order(oid)
    assert order is not None
    assert order.status == "failed"
    assert order.failure_code == "execution_crashed"
