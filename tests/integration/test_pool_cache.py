"""The pool cache on real Postgres (migration 004_pools.sql): per endpoint, a pair's list as last
discovered, what is known of single addresses, and the submit path's check of a pinned pool."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from solders.keypair import Keypair

from engine.errors import UnknownPool
from engine.pools import CachedPool, NotAPool, PoolCache, endpoint_id, pair_key
from engine.store import Store

SOL = "So11111111111111111111111111111111111111112"
USDC = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
T22 = str(Keypair().pubkey())
AT = datetime(2026, 11, 30, 12, tzinfo=UTC)


def address() -> str:
    return str(Keypair().pubkey())


def pool(
    mint_a: str = SOL, mint_b: str = USDC, reserve_a: int = 0, reserve_b: int = 0
) -> CachedPool:
    return CachedPool(address(), "raydium_cpmm", mint_a, mint_b, reserve_a, reserve_b, ("v",))


@pytest.fixture
def cache(store: Store) -> PoolCache:
    return PoolCache(store.pool)


@pytest.fixture
def endpoint() -> str:
    return endpoint_id(f"https://rpc.example/{uuid.uuid4().hex}?api-key=secret")


def test_a_pairs_list_is_what_the_last_discovery_found(cache: PoolCache, endpoint: str) -> None:
    assert cache.pair(endpoint, SOL, USDC) is None
    first, second = pool(reserve_a=5, reserve_b=7), pool(USDC, SOL)
    cache.save_pair(endpoint, USDC, SOL, [first, second], AT)
    listed = cache.pair(endpoint, SOL, USDC)
    assert listed is not None
    assert listed.refreshed_at == AT
    assert {p.address for p in listed.pools} == {first.address, second.address}
    stored = next(p for p in listed.pools if p.address == first.address)
    assert (stored.reserve_of(SOL), stored.reserve_of(USDC), stored.depends_on) == (5, 7, ("v",))

    later = AT + timedelta(minutes=5)
    third = pool()
    cache.save_pair(endpoint, SOL, USDC, [second, third], later)
    relisted = cache.pair(endpoint, USDC, SOL)
    assert relisted is not None
    assert relisted.refreshed_at == later
    assert {p.address for p in relisted.pools} == {second.address, third.address}


def test_endpoints_never_share_entries(cache: PoolCache, endpoint: str) -> None:
    """A database that served a local chain and then devnet keeps their pools apart."""
    found = pool()
    cache.save_pair(endpoint, SOL, USDC, [found], AT)
    other = endpoint_id("https://api.devnet.solana.com")
    assert cache.known(other, [found.address]) == {}
    assert endpoint_id("https://rpc.example/x?api-key=secret") != "https://rpc.example/x"
    assert "secret" not in endpoint_id("https://rpc.example/x?api-key=secret")


def test_a_pair_saved_with_a_pool_of_another_pair_is_refused(
    cache: PoolCache, endpoint: str
) -> None:
    with pytest.raises(ValueError, match="trade that pair"):
        cache.save_pair(endpoint, SOL, USDC, [pool(SOL, T22)], AT)


def test_single_addresses_are_remembered_as_pools_or_not(cache: PoolCache, endpoint: str) -> None:
    a_pool, not_one = pool(T22, USDC), NotAPool(address(), "owned by the Token program")
    cache.remember(endpoint, [a_pool, not_one], AT)
    known = cache.known(endpoint, [a_pool.address, not_one.address, address()])
    stored = dataclasses.replace(a_pool, refreshed_at=AT)
    assert known == {a_pool.address: stored, not_one.address: not_one}


def test_the_submit_check_refuses_only_what_the_cache_knows_is_wrong(
    cache: PoolCache, endpoint: str
) -> None:
    sol_usdc, t22_usdc, not_one = pool(), pool(T22, USDC), NotAPool(address(), "a mint")
    cache.remember(endpoint, [sol_usdc, t22_usdc, not_one], AT)
    cache.check_pin(sol_usdc.address, USDC, SOL)  # either side sold
    cache.check_pin(address(), SOL, USDC)  # unknown: routing will read it
    with pytest.raises(UnknownPool) as wrong_pair:
        cache.check_pin(t22_usdc.address, SOL, USDC)
    assert (wrong_pair.value.code, wrong_pair.value.field, wrong_pair.value.status) == (
        "unknown_pool",
        "poolId",
        400,
    )
    assert t22_usdc.mint_a in wrong_pair.value.message
    with pytest.raises(UnknownPool, match="not a pool of a supported venue: a mint"):
        cache.check_pin(not_one.address, SOL, USDC)


def test_pair_keys_do_not_depend_on_the_side_sold() -> None:
    assert pair_key(SOL, USDC) == pair_key(USDC, SOL)
    assert pool(SOL, USDC).trades(USDC, SOL)
    assert not pool(SOL, USDC).trades(SOL, T22)
