"""The watcher's cost per tick does not grow with other users' sniper orders (issue 25 item 4).

Before: each sniper order on a new pair added 4 getProgramAccounts calls (2 programs x 2 mint
orders) to every tick; 100 sniper orders of one key took the tick from 23 ms to 1.15 s, and a
limit order triggered 3.3 s after its price was met. Now new pools are found from one
getSignaturesForAddress per venue program per tick, matched against every watched pair at once,
and one key may watch at most `MAX_SNIPER_PAIRS` distinct pairs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from solders.keypair import Keypair

from engine import config, keys, limits
from engine.errors import TooManyOpenOrders
from engine.store import Store
from execution.creation_feed import CreationFeed
from execution.discovery import venue_programs
from execution.launches import creation_feed
from local.chain import LocalChain, serve_in_thread
from local.poller import wait_until
from local.ports import free_port
from tests.conftest import rpc_calls
from tests.integration.test_watcher import (
    Watching,
    key,
    new_pool,
    new_token,
    nothing_else_watching,
    once_open,
    price_sol,
    queue,
    sniper_order,
)

__all__ = ["key", "nothing_else_watching", "queue"]  # fixtures


@pytest.fixture
def cfg(database_url: str) -> config.Settings:
    """The watcher's settings, with an endpoint of this test's own: what the watcher keeps per
    endpoint (program cursors, pools seen) is then this chain's alone. Every test's chain is
    another chain, and a cursor from another one made a tick read transactions it should not."""
    return dataclasses.replace(
        config.Settings.from_env(),
        solana_rpc_url=f"http://local-chain/{uuid.uuid4().hex}",
        solana_cluster="custom",
        pools=(),
        max_attempts=3,
        max_triggers=3,
    )


@pytest.fixture
def chain(counting_chain: LocalChain) -> LocalChain:
    """Seeded, producing blocks, its RPC requests counted, and the seed's own transactions (its
    pools' creation) confirmed: until they are, a tick's signature read finds them new, one by
    one as they confirm, however long after the chain started (on a loaded machine, late)."""
    seeded = max(t["slot"] for t in counting_chain.txlog())
    assert wait_until(lambda: counting_chain.ledger.confirmed_slot >= seeded, 30)
    return counting_chain


async def tick_calls(watching: Watching, chain: LocalChain) -> Counter[str]:
    calls = rpc_calls(chain)
    calls.reset()
    report = await watching.tick()
    assert report.triggered == 0
    return Counter(calls.methods)


async def test_a_ticks_rpc_calls_do_not_grow_with_other_keys_sniper_orders(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: Any
) -> None:
    watching = Watching(store, chain, queue, cfg)
    sniper_order(store, key, chain, await new_token(chain))
    await watching.tick()  # the first: the programs' cursors are set
    one = await tick_calls(watching, chain)
    programs = len(venue_programs(cfg.solana_cluster))
    assert one["getSignaturesForAddress"] == programs
    for i in range(6):  # 60 sniper orders on 60 new pairs, from 6 other keys
        other = keys.create_key(f"sniper {i}", pool=store.pool)[0]
        for _ in range(limits.MAX_SNIPER_PAIRS):
            sniper_order(store, other, chain, str(Keypair().pubkey()))
    many = await tick_calls(watching, chain)
    assert many["getProgramAccounts"] == 0
    assert many["getSignaturesForAddress"] == programs  # one per program, whatever is watched
    assert many["getTransaction"] == 0  # no new transaction of the programs, nothing read
    # only the orders' mints are read besides: in the same getMultipleAccounts batches
    assert many - Counter({"getMultipleAccounts": many["getMultipleAccounts"]}) == one - Counter(
        {"getMultipleAccounts": one["getMultipleAccounts"]}
    )
    assert many["getMultipleAccounts"] <= one["getMultipleAccounts"] + 2


async def test_a_new_pool_is_found_after_many_pairs_are_watched(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: Any
) -> None:
    watching = Watching(store, chain, queue, cfg)
    mint = await new_token(chain)
    for _ in range(limits.MAX_SNIPER_PAIRS - 1):
        sniper_order(store, key, chain, str(Keypair().pubkey()))
    oid = sniper_order(store, key, chain, mint)
    await watching.tick()
    fresh = await new_pool(chain, mint, "raydium_cpmm")
    calls = rpc_calls(chain)
    calls.reset()
    assert (await once_open(watching)).triggered == 1
    assert calls.methods["getProgramAccounts"] == 0
    assert calls.methods["getTransaction"] >= 1  # the pool-creating transaction
    assert store.events(oid)[-1].detail["pool"] == fresh.pool


@pytest.fixture
def served(chain: LocalChain) -> Iterator[str]:
    """The counting chain over a real socket: its PubSub WebSocket for the creation feed."""
    url, stop = serve_in_thread(chain)
    yield url
    stop()


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    """Wait for `condition` while this loop runs (the feed's task lives in it)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_swaps_on_the_programs_read_no_transaction_and_a_new_pool_is_still_found(
    store: Store,
    chain: LocalChain,
    cfg: config.Settings,
    key: keys.ApiKey,
    queue: Any,
    served: str,
) -> None:
    """Before: every tick read every new transaction of the two programs (getTransaction per
    swap), so its cost grew with the programs' activity. With the logsSubscribe feed live, a
    tick reads only the pool-creating transactions, and no signatures."""
    watching = Watching(store, chain, queue, cfg)
    feed = creation_feed(dataclasses.replace(cfg, solana_rpc_url=served))
    watching.watcher.launches.feed = feed
    mint = await new_token(chain)
    oid = sniper_order(store, key, chain, mint)
    await watching.tick()  # starts the feed
    assert await until(lambda: feed.live)
    await watching.tick()  # reads the programs' signatures once: the gap before subscribing
    calls = rpc_calls(chain)
    for price in (150, 140, 160):  # real swaps on both programs' pools
        price_sol(chain, price)
    swapped = max(t["slot"] for t in chain.txlog())
    assert await until(lambda: chain.ledger.confirmed_slot >= swapped)
    programs = [program for _, program in venue_programs(cfg.solana_cluster)]
    assert await until(lambda: all(seen(feed, p) for p in programs))  # the feed saw the swaps
    calls.reset()
    assert (await watching.tick()).triggered == 0
    assert calls.methods["getTransaction"] == 0, calls.methods
    assert calls.methods["getSignaturesForAddress"] == 0, calls.methods
    fresh = await new_pool(chain, mint, "meteora_damm_v2")
    calls.reset()
    assert (await once_open(watching)).triggered == 1
    assert calls.methods["getTransaction"] == 1, calls.methods  # the pool-creating one only
    assert calls.methods["getSignaturesForAddress"] == 0
    assert store.events(oid)[-1].detail["pool"] == fresh.pool
    await feed.close()


async def test_without_a_websocket_a_new_pool_is_found_from_the_programs_signatures(
    store: Store, chain: LocalChain, cfg: config.Settings, key: keys.ApiKey, queue: Any
) -> None:
    """An RPC whose WebSocket does not answer (nothing listens): the feed never goes live and
    every tick reads the programs' signatures, as before the feed."""
    watching = Watching(store, chain, queue, cfg)
    feed = creation_feed(dataclasses.replace(cfg, solana_rpc_url=f"http://127.0.0.1:{free_port()}"))
    watching.watcher.launches.feed = feed
    mint = await new_token(chain)
    oid = sniper_order(store, key, chain, mint)
    await watching.tick()
    fresh = await new_pool(chain, mint, "raydium_cpmm")
    calls = rpc_calls(chain)
    calls.reset()
    assert (await once_open(watching)).triggered == 1
    assert not feed.live
    assert calls.methods["getSignaturesForAddress"] >= len(venue_programs(cfg.solana_cluster))
    assert store.events(oid)[-1].detail["pool"] == fresh.pool
    await feed.close()


def seen(feed: CreationFeed, program: Any) -> bool:
    """The feed has seen a transaction of `program` since it was last taken from."""
    return feed._programs[str(program)].newest is not None


def test_one_key_may_watch_a_limited_number_of_sniper_pairs(
    store: Store, chain: LocalChain, key: keys.ApiKey
) -> None:
    mints = [str(Keypair().pubkey()) for _ in range(limits.MAX_SNIPER_PAIRS)]
    for mint in mints:
        sniper_order(store, key, chain, mint)
    sniper_order(store, key, chain, mints[0])  # another order on a pair it watches: fine
    with pytest.raises(TooManyOpenOrders) as refused:
        sniper_order(store, key, chain, str(Keypair().pubkey()))
    assert refused.value.code == "too_many_sniper_pairs"
    assert refused.value.status == 429
    other = keys.create_key(f"o-{uuid.uuid4().hex[:6]}", pool=store.pool)[0]
    sniper_order(store, other, chain, str(Keypair().pubkey()))  # another key's own budget
