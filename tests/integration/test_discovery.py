"""Pool discovery on the local chain: the engine finds a pair's pools itself (getProgramAccounts
with size and mint filters), caches them in Postgres, routes over them with no VENUE_POOLS, and
applies the operator's floor, deny-list, cap and allow-list. Every JSON-RPC request the chain
receives is counted at its ASGI app, so the round trips are what the chain saw."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from engine import observability
from engine.config import PoolConfig, Settings
from engine.errors import PermanentChainError, RpcMethodRefused, TransientChainError
from engine.orders import parse_order_request
from engine.pools import PoolCache
from engine.store import Order, Store
from execution import router
from execution.chain import Chain
from execution.discovery import PoolCatalog, find_pools, measure
from execution.executor import Executor, Timing
from execution.wallet import Wallet
from local.chain import POOLS, T22_MINT, T22_POOLS, USDC_MINT, WALLET, LocalChain, client_for, seed
from local.chain.admin import admin_headers
from local.chain.ledger import WSOL_MINT
from local.shared import shared_path
from tests.conftest import rpc_calls
from tests.pool_factory import PoolFactory

CPMM_POOL, DAMM_POOL = POOLS["raydium_cpmm"], POOLS["meteora_damm_v2"]
DAMM_PROGRAM = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
SOL, USDC = str(WSOL_MINT), str(USDC_MINT)
REAL_DAMM = shared_path("fixtures", "damm_v2")
REAL_CPMM = Path(__file__).parent.parent / "fixtures" / "raydium_cpmm_mainnet.json"


@pytest.fixture
def chain(counting_chain: LocalChain) -> LocalChain:
    return counting_chain  # seeded, producing blocks, its RPC requests counted


@pytest.fixture
async def client(chain: LocalChain) -> AsyncIterator[Chain]:
    client = Chain("http://local-chain", client_for(chain))
    yield client
    await client.close()


@pytest.fixture
def cfg(database_url: str) -> Settings:
    """Discovery's defaults (no VENUE_POOLS) on an endpoint of this test's own, so the pool cache
    it fills is its own (the cache is per RPC endpoint)."""
    return dataclasses.replace(
        Settings.from_env(),
        solana_rpc_url=f"http://local-chain/{uuid.uuid4().hex}",
        solana_cluster="custom",
        pools=(),
        pool_refresh_seconds=300,
        min_pool_liquidity=Decimal(0),
        pool_deny_list=frozenset(),
        max_pools_per_pair=10,
    )


class Clock:
    """The catalog's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.at = datetime(2026, 11, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


async def execute(store: Store, chain: LocalChain, cfg: Settings, **body: Any) -> Order:
    """One order through a new executor "container" (its own client and pool catalog)."""
    order, _ = store.create_order(parse_order_request({"slippage": 1, **body}))
    client = Chain("http://local-chain", client_for(chain))
    executor = Executor(
        store,
        client,
        Wallet(seed.WALLET_KEYPAIR),
        cfg,
        publish=lambda _e: None,
        timing=Timing(poll_seconds=0.01, resend_seconds=0.05, land_timeout_seconds=20),
    )
    try:
        await executor.run(order.id, 1)
    finally:
        await client.close()
    row = store.get_order(order.id)
    assert row is not None
    return row


def add_pool(
    chain: LocalChain,
    venue: str,
    mint_a: Pubkey,
    mint_b: Pubkey,
    reserve_a: int,
    reserve_b: int,
    config: int = 1,
) -> Pubkey:
    """A new pool on the running chain, created by its program's initialize transaction from
    the market maker (a CPMM pool opens a second later: the chain's clock moves past it)."""
    factory = PoolFactory(chain.ledger)
    if venue == "raydium_cpmm":
        pool = factory.cpmm(mint_a, mint_b, reserve_a, reserve_b)
        chain.ledger.shift_time(1)
    else:
        pool = factory.damm(mint_a, mint_b, reserve_a, reserve_b, config=config)
    chain.confirm()  # the engine reads at `confirmed`
    return pool


def quoted(order: Order) -> list[str]:
    return [q["pool"] for q in order.quotes if "skipped" not in q]


# ------------------------------------------------------------------------------------- finding
async def test_a_pairs_pools_are_found_with_four_filtered_calls(
    chain: LocalChain, client: Chain
) -> None:
    """Both venues, both mint orders: 4 getProgramAccounts, and only the pair's pools come back
    (the node filters: the other pair's pools never travel)."""
    rpc_calls(chain).reset()
    found = await find_pools(client, WSOL_MINT, USDC_MINT, "custom")
    assert rpc_calls(chain).methods == {"getProgramAccounts": 4}
    assert {(p.venue, p.address) for p in found} == {(v, a) for v, a in POOLS.items()}
    # Whichever side is named first (DAMM v2 keeps its mints in the order they were given).
    reverse = await find_pools(client, USDC_MINT, WSOL_MINT, "custom")
    assert {p.address for p in reverse} == set(POOLS.values())
    t22 = await find_pools(client, T22_MINT, USDC_MINT, "custom")
    assert {p.address for p in t22} == set(T22_POOLS.values())
    assert await find_pools(client, WSOL_MINT, T22_MINT, "custom") == []


async def test_the_filters_find_real_mainnet_pool_accounts() -> None:
    """The filters (account size, mint offsets) held against accounts the programs wrote: the
    real DAMM v2 pool dumps and the real CPMM pool (shared/fixtures, tests/fixtures), put on a
    chain under the mainnet program ids, are found by their mints; the mints are read here
    from the raw bytes at the offsets the programs' sources give (state/pool.rs)."""
    chain = LocalChain()
    expected: dict[Pubkey, tuple[Pubkey, Pubkey]] = {}
    for path in sorted(REAL_DAMM.glob("*.bin")):
        data = path.read_bytes()
        if len(data) != 1112:
            continue  # the config account
        address = (
            Pubkey.from_string(path.stem) if path.stem != "pool_account" else Keypair().pubkey()
        )
        chain.ledger.set_account(address, Account(10**9, data, DAMM_PROGRAM, False, 0))
        expected[address] = (Pubkey(data[168:200]), Pubkey(data[200:232]))
    fixture = json.loads(REAL_CPMM.read_text())
    for key, account in fixture["accounts"].items():
        data = base64.b64decode(account["data"])
        owner = Pubkey.from_string(account["owner"])
        chain.ledger.set_account(Pubkey.from_string(key), Account(10**9, data, owner, False, 0))
    assert len(expected) == 3
    chain.ledger.settle_genesis()  # genesis accounts: every commitment sees them
    cpmm_pool = Pubkey.from_string(fixture["pool"])
    cpmm_data = base64.b64decode(fixture["accounts"][fixture["pool"]]["data"])
    cpmm_mints = (Pubkey(cpmm_data[168:200]), Pubkey(cpmm_data[200:232]))

    client = Chain("http://local-chain", client_for(chain))
    try:
        for address, (mint_a, mint_b) in expected.items():
            found = await find_pools(client, mint_b, mint_a, "mainnet-beta")
            assert ("meteora_damm_v2", address) in {(p.venue, p.address) for p in found}, path
        on_mainnet = await find_pools(client, *cpmm_mints, "mainnet-beta")
        assert [(p.venue, p.address) for p in on_mainnet] == [("raydium_cpmm", cpmm_pool)]
        # Raydium's devnet program is another address: a devnet search does not see it.
        assert await find_pools(client, *cpmm_mints, "devnet") == []
        [measured] = await measure(client, on_mainnet, datetime.now(UTC))
    finally:
        await client.close()
    # Depth: each vault's amount (u64 at 64) less the fees owed to protocol, fund and creator
    # (u64s at 341/349, 357/365, 397/405 of PoolState).
    vaults = [Pubkey(cpmm_data[72:104]), Pubkey(cpmm_data[104:136])]
    for side, (vault, mint) in enumerate(zip(vaults, cpmm_mints, strict=True)):
        raw = base64.b64decode(fixture["accounts"][str(vault)]["data"])
        owed = sum(
            int.from_bytes(cpmm_data[o + 8 * side : o + 8 * side + 8], "little")
            for o in (341, 357, 397)
        )
        held = int.from_bytes(raw[64:72], "little") - owed
        assert measured.reserve_of(str(mint)) == held > 0


# ----------------------------------------------------------------------------------- routing
async def test_an_order_for_a_pair_nobody_configured_is_routed_to_the_pool_discovery_finds(
    store: Store, chain: LocalChain, cfg: Settings
) -> None:
    """A new token and its only pool appear on the chain; with no VENUE_POOLS the engine finds
    the pool, quotes it and lands the swap there."""
    mint = PoolFactory(chain.ledger).mint(decimals=6)
    pool = add_pool(chain, "raydium_cpmm", USDC_MINT, mint, 50_000 * 10**6, 100_000 * 10**6)
    row = await execute(store, chain, cfg, tokenIn="USDC", tokenOut=str(mint), amountIn="10")
    assert row.status == "confirmed", row.failure_reason
    assert row.pool == str(pool)
    assert quoted(row) == [str(pool)]
    assert chain.token_balance(WALLET, mint) == int(row.amount_out or 0) > 19 * 10**6


async def test_a_pool_added_to_a_pair_is_found_and_chosen_when_it_pays_more(
    store: Store, chain: LocalChain, cfg: Settings
) -> None:
    better = add_pool(
        chain,
        "meteora_damm_v2",
        WSOL_MINT,
        USDC_MINT,
        reserve_a=1_000 * 10**9,
        reserve_b=160_000 * 10**6,
    )
    row = await execute(store, chain, cfg, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    assert row.status == "confirmed", row.failure_reason
    assert set(quoted(row)) == {str(CPMM_POOL), str(DAMM_POOL), str(better)}
    assert row.pool == str(better)


async def test_a_discovered_pair_costs_one_round_trip_and_is_searched_again_after_the_refresh(
    store: Store, chain: LocalChain, client: Chain, cfg: Settings
) -> None:
    """Discovery: 4 getProgramAccounts + 1 getMultipleAccounts (the CPMM vaults: depth), then
    the quote's one getMultipleAccounts. Once known, from the container's memory or from
    Postgres in a new container: the quote's one call, nothing else. After the refresh
    interval the chain is searched again, and a pool added meanwhile is found."""
    clock = Clock()
    calls = rpc_calls(chain)

    async def route(catalog: PoolCatalog) -> router.Decision:
        pools = await catalog.pools_for(SOL, USDC)
        return await router.quote_all_venues(
            client,
            pools,
            mint_in=SOL,
            mint_out=USDC,
            amount_in=Decimal("0.01"),
            priority_fee=1_000,
        )

    router._dependents.clear()  # a cold container has learnt nothing
    catalog = PoolCatalog(client, PoolCache(store.pool), cfg, now=clock)
    observability.metrics.clear_metrics()
    calls.reset()
    first = await route(catalog)
    assert calls.methods == {"getProgramAccounts": 4, "getMultipleAccounts": 2}
    assert {q.pool for q in first.quotes} == {str(CPMM_POOL), str(DAMM_POOL)}
    assert observability.metrics.metric_set["PoolsDiscovered"]["Value"] == [2.0]
    observability.metrics.clear_metrics()

    calls.reset()
    await route(catalog)
    assert calls.methods == {"getMultipleAccounts": 1}  # warm: memory

    router._dependents.clear()
    fresh_container = PoolCatalog(client, PoolCache(store.pool), cfg, now=clock)
    calls.reset()
    await route(fresh_container)
    assert calls.methods == {"getMultipleAccounts": 1}  # cold, but the pair is in Postgres

    added = add_pool(
        chain, "raydium_cpmm", WSOL_MINT, USDC_MINT, reserve_a=10**12, reserve_b=10**11
    )
    clock.advance(cfg.pool_refresh_seconds - 1)
    calls.reset()
    assert str(added) not in {q.pool for q in (await route(fresh_container)).quotes}
    assert calls.methods == {"getMultipleAccounts": 1}

    clock.advance(2)  # the list is now older than the refresh interval
    calls.reset()
    refreshed = await route(fresh_container)
    assert calls.methods == {"getProgramAccounts": 4, "getMultipleAccounts": 2}
    assert str(added) in {q.pool for q in refreshed.quotes}
    assert PoolCache(store.pool).pair(fresh_container.endpoint, SOL, USDC) is not None


# ------------------------------------------------------------------------------------- policy
async def test_a_pool_below_the_liquidity_floor_is_listed_as_skipped_and_never_chosen(
    store: Store, chain: LocalChain, cfg: Settings
) -> None:
    """MIN_POOL_LIQUIDITY is in output-token units: 130,000 USDC leaves out the DAMM v2 pool
    (120,800 USDC), though it pays the better price."""
    floor = dataclasses.replace(cfg, min_pool_liquidity=Decimal(130_000))
    row = await execute(store, chain, floor, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    assert row.status == "confirmed", row.failure_reason
    assert row.pool == str(CPMM_POOL)
    [skipped] = [q for q in row.quotes if "skipped" in q]
    assert skipped["pool"] == str(DAMM_POOL)
    assert skipped["skipped"] == "below_min_liquidity"
    # What the curve can pay out (its sqrt-price rounding shaves a few base units off 120,800).
    assert Decimal("120799.99") < Decimal(skipped["reserveOut"]) <= 120_800
    assert "MIN_POOL_LIQUIDITY" in skipped["message"]

    none = dataclasses.replace(cfg, min_pool_liquidity=Decimal(1_000_000))
    failed = await execute(store, chain, none, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    assert failed.status == "failed"
    assert failed.failure_code == "no_route"
    assert (failed.failure_reason or "").count("below_min_liquidity") == 2


async def test_a_denied_pool_is_never_quoted(
    store: Store, chain: LocalChain, cfg: Settings
) -> None:
    denied = dataclasses.replace(cfg, pool_deny_list=frozenset({str(DAMM_POOL)}))
    row = await execute(store, chain, denied, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    assert row.status == "confirmed", row.failure_reason
    assert [q["pool"] for q in row.quotes] == [str(CPMM_POOL)]

    both = dataclasses.replace(cfg, pool_deny_list=frozenset(map(str, POOLS.values())))
    failed = await execute(store, chain, both, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    assert (failed.failure_code, failed.quotes) == ("no_route", [])
    assert "POOL_DENY_LIST" in (failed.failure_reason or "")


async def test_the_cap_quotes_the_deepest_pools_first(
    store: Store, chain: LocalChain, cfg: Settings
) -> None:
    """One pool per pair: the deepest in the output token (CPMM, 150,000 USDC), even though the
    shallower DAMM v2 pool (120,800 USDC) pays more per SOL."""
    capped = dataclasses.replace(cfg, max_pools_per_pair=1)
    row = await execute(store, chain, capped, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    assert row.status == "confirmed", row.failure_reason
    assert [q["pool"] for q in row.quotes] == [str(CPMM_POOL)]
    # Deepest in SOL for the other direction: make the DAMM v2 pool the deep one.
    # The market maker sells SOL into it down to 30 USDC/SOL: it then holds ~1,800 SOL.
    chain.set_pool_price(DAMM_POOL, WSOL_MINT, 30)
    fresh = dataclasses.replace(capped, solana_rpc_url=cfg.solana_rpc_url + "/2")
    row = await execute(store, chain, fresh, tokenIn="USDC", tokenOut="SOL", amountIn="10")
    assert [q["pool"] for q in row.quotes] == [str(DAMM_POOL)]


async def test_venue_pools_is_an_allow_list_that_needs_no_program_accounts(
    store: Store, chain: LocalChain, cfg: Settings
) -> None:
    """Only the listed pools of the pair are quoted (a listed pool of another pair is not), and
    getProgramAccounts is never called: what an RPC provider that refuses it needs."""
    listed = (
        PoolConfig("raydium_cpmm", str(CPMM_POOL)),
        PoolConfig("raydium_cpmm", str(T22_POOLS["raydium_cpmm"])),
    )
    allow = dataclasses.replace(cfg, pools=listed)
    chain.faults.update(refuse_methods=["getProgramAccounts"])
    rpc_calls(chain).reset()
    row = await execute(store, chain, allow, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    assert row.status == "confirmed", row.failure_reason
    assert [q["pool"] for q in row.quotes] == [str(CPMM_POOL)]
    assert rpc_calls(chain).methods["getProgramAccounts"] == 0


async def test_a_provider_that_refuses_discovery_is_counted_and_the_order_says_what_to_set(
    store: Store, chain: LocalChain, cfg: Settings
) -> None:
    chain.faults.update(refuse_methods=["getProgramAccounts"])
    observability.metrics.clear_metrics()
    row = await execute(store, chain, cfg, tokenIn="SOL", tokenOut="USDC", amountIn="0.01")
    assert row.status == "failed"
    assert row.failure_code == "no_route"
    assert "VENUE_POOLS" in (row.failure_reason or "")
    assert "getProgramAccounts" in (row.failure_reason or "")
    assert observability.metrics.metric_set["DiscoveryRefused"]["Value"] == [1.0]
    observability.metrics.clear_metrics()


async def test_a_refresh_that_fails_routes_over_the_pairs_older_list(
    store: Store, chain: LocalChain, client: Chain, cfg: Settings
) -> None:
    """Past the refresh interval, a refused or failing search does not stop trading: the list
    found before is used (pools do not vanish in five minutes)."""
    clock = Clock()
    catalog = PoolCatalog(client, PoolCache(store.pool), cfg, now=clock)
    before = await catalog.pools_for(SOL, USDC)
    clock.advance(cfg.pool_refresh_seconds + 1)
    chain.faults.update(rate_limit_next=100)
    try:
        assert await catalog.pools_for(SOL, USDC) == before
    finally:
        chain.faults.clear()
    chain.faults.update(refuse_methods=["getProgramAccounts"])
    clock.advance(cfg.pool_refresh_seconds + 1)
    assert await catalog.pools_for(USDC, SOL) == before
    # A pair never listed has nothing to fall back on.
    with pytest.raises(PermanentChainError) as refused:
        await catalog.pools_for(str(T22_MINT), USDC)
    assert refused.value.code == "no_route"
    chain.faults.clear()
    chain.faults.update(rate_limit_next=100)
    other = PoolCatalog(client, PoolCache(store.pool), cfg, now=clock)
    with pytest.raises(TransientChainError):
        await other.pools_for(str(T22_MINT), USDC)
    chain.faults.clear()


async def test_a_refusal_is_told_from_a_failure_and_not_asked_again(
    chain: LocalChain, client: Chain
) -> None:
    """A node that does not serve the method (-32601, the `refuse_methods` knob) is refused at
    once, with no in-place retry; a rate limit is retried in place, then transient. Every other
    method still works on that node."""
    calls = rpc_calls(chain)
    chain.faults.update(refuse_methods="getProgramAccounts")
    assert chain.faults.snapshot()["refuse_methods"] == ["getProgramAccounts"]
    calls.reset()
    with pytest.raises(RpcMethodRefused, match="Method not found"):
        await client.program_accounts(
            DAMM_PROGRAM, data_size=1112, memcmp=[(168, WSOL_MINT), (200, USDC_MINT)]
        )
    assert calls.methods == {"getProgramAccounts": 1}
    assert (await client.accounts([USDC_MINT]))[USDC_MINT] is not None
    chain.faults.clear()
    chain.faults.update(rate_limit_next=3)
    calls.reset()
    with pytest.raises(TransientChainError):
        await client.program_accounts(DAMM_PROGRAM, data_size=1112, memcmp=[])
    assert calls.requests == 3


def test_the_refusal_knob_is_served_at_admin_faults() -> None:
    import httpx

    from local.chain import serve_in_thread

    chain = LocalChain.seeded()
    url, stop = serve_in_thread(chain)
    try:
        set_ = httpx.post(
            f"{url}/admin/faults",
            json={"refuse_methods": ["getProgramAccounts"]},
            headers=admin_headers(),
        )
        assert set_.json()["refuse_methods"] == ["getProgramAccounts"]
        reply = httpx.post(
            url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "getProgramAccounts",
                "params": [str(DAMM_PROGRAM)],
            },
        ).json()
        assert reply["error"] == {"code": -32601, "message": "Method not found"}
        assert (
            "result"
            in httpx.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "getSlot"}).json()
        )
    finally:
        stop()
        chain.stop()
