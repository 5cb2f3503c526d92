"""500 orders through an RPC that misbehaves 10-20 % of the time: 429s, timeouts, dropped
transactions, blockhashes that expire under them. Every order ends terminal, none lands twice,
every failure carries a typed reason.

Ten worker threads play ten execute containers (own event loop, own RPC client); each order gets
at most three deliveries, as the SQS redrive policy allows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from engine import config
from engine.orders import Status, parse_order_request
from engine.store import Store
from execution.chain import Chain
from execution.executor import Executor, Timing
from execution.wallet import Wallet
from local.chain import LocalChain, client_for, seed, seeded_venue_pools

pytestmark = pytest.mark.chaos

ORDERS = 500
WORKERS = 10
MAX_RECEIVES = 3
TYPED = {
    "rpc_rate_limited",
    "rpc_timeout",
    "rpc_unavailable",
    "rpc_error",
    "blockhash_expired",
    "confirmation_timeout",
    "slippage_exceeded",
}


@pytest.fixture
def chain() -> Iterator[LocalChain]:
    chain = LocalChain.seeded()
    chain.start_ticker(0.005)
    yield chain
    chain.stop()


def test_five_hundred_orders_through_a_faulty_rpc(store: Store, chain: LocalChain) -> None:
    cfg = dataclasses.replace(
        config.Settings.from_env(),
        solana_rpc_url="http://local-chain",
        solana_cluster="custom",
        pools=config.parse_pools(seeded_venue_pools()),
        max_attempts=MAX_RECEIVES,
    )
    timing = Timing(poll_seconds=0.01, resend_seconds=0.05, land_timeout_seconds=10)
    oids = [
        store.create_order(
            parse_order_request(
                {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.001", "slippage": 1}
            )
        )[0].id
        for _ in range(ORDERS)
    ]
    chain.faults.update(
        seed=42,
        rate_limit_rate=0.10,
        timeout_rate=0.03,
        hang_seconds=0.3,
        drop_rate=0.15,
        expire_rate=0.03,
    )
    work: queue.Queue[tuple[uuid.UUID, int]] = queue.Queue()
    for oid in oids:
        work.put((oid, 1))
    dead_letters: list[uuid.UUID] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def container() -> None:
        async def serve() -> None:
            executor = Executor(
                store,
                Chain("http://local-chain", client_for(chain, timeout=0.15)),
                Wallet(seed.WALLET_KEYPAIR),
                cfg,
                timing=timing,
            )
            while True:
                try:
                    oid, receive = work.get_nowait()
                except queue.Empty:
                    return
                outcome = await executor.run(oid, receive)
                if outcome.retry:
                    if receive < MAX_RECEIVES:
                        work.put((oid, receive + 1))
                    else:
                        with lock:
                            dead_letters.append(oid)

        try:
            asyncio.run(serve())
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=container) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.monotonic() - started
    assert errors == []
    chain.faults.clear()

    orders = {oid: store.get_order(oid) for oid in oids}
    final = Counter(o.status for o in orders.values() if o)
    landed_swaps = [
        t
        for t in chain.txlog()
        if t["err"] is None and t["dexInstructions"] and t["feePayer"] == str(seed.WALLET)
    ]
    landed = Counter(t["signature"] for t in landed_swaps)
    # Each swap carries its order's id in a memo: what landed for each order, whatever signed it.
    swaps_per_order = Counter(memo for t in landed_swaps for memo in t["memos"])
    codes = Counter(o.failure_code for o in orders.values() if o and o.failure_code)
    print(
        f"\n{ORDERS} orders in {elapsed:.1f} s: {dict(final)}; failures {dict(codes)}; "
        f"dead letters {len(dead_letters)}"
    )
    assert dead_letters == []  # the third failing receive fails the order itself
    assert set(final) <= {Status.CONFIRMED, Status.FAILED}
    assert final[Status.CONFIRMED] >= ORDERS * 0.8
    assert set(codes) <= TYPED
    assert sum(swaps_per_order.values()) == len(landed_swaps)  # every landed swap names its order
    for oid, order in orders.items():
        assert order is not None
        sigs = {e.detail["txHash"] for e in store.events(oid) if e.status is Status.SUBMITTED}
        swaps = sum(landed[s] for s in sigs)
        if order.status == Status.CONFIRMED:
            assert swaps == 1, oid
            assert swaps_per_order[str(oid)] == 1, f"{oid}: {swaps_per_order[str(oid)]} swaps"
            assert order.tx_signature is not None
            assert landed[order.tx_signature] == 1, oid
        else:
            assert swaps == 0, f"{oid} failed ({order.failure_code}) but its swap landed"
            assert swaps_per_order[str(oid)] == 0, f"{oid} failed but a swap of it landed"
