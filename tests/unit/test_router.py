"""The router: one getMultipleAccounts for pools, vaults, configs, mints and the Clock sysvar;
every pool quoted at that clock; pools their program would refuse are listed, never chosen.
The pools are the real programs' (created by their initialize transactions in a ledger)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

import pytest
from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import WRAPPED_SOL_MINT as NATIVE_MINT

from engine.config import PoolConfig
from engine.errors import PermanentChainError
from execution import router
from execution.chain import Chain
from execution.venues import SYSVAR_CLOCK, Clock
from local.chain.seed import USDC_MINT as USDC
from tests.pool_factory import PoolFactory

NOW = 1_800_000_000


class LedgerChain:
    """Chain.accounts over a ledger with the real programs, counting round trips."""

    def __init__(self, factory: PoolFactory) -> None:
        self.ledger = factory.ledger
        self.hidden: set[Pubkey] = set()
        self.calls: list[list[Pubkey]] = []

    async def accounts(self, keys: Sequence[Pubkey]) -> dict[Pubkey, Account | None]:
        self.calls.append(list(keys))
        return {k: None if k in self.hidden else self.ledger.get_account(k) for k in keys}

    @property
    def clock(self) -> Clock:
        account = self.ledger.get_account(SYSVAR_CLOCK)
        assert account is not None
        return Clock.from_account_data(bytes(account.data))


def _chain(pools: dict[str, dict[str, Any]]) -> tuple[LedgerChain, list[PoolConfig]]:
    """SOL/USDC pools made by the programs at NOW - 2 s (so CPMM's are open at NOW)."""
    factory = PoolFactory(now=NOW - 2)
    configs = []
    for options in pools.values():
        venue = options.pop("venue")
        sol, usdc = options.pop("reserves", (1_000 * 10**9, 150_000 * 10**6))
        if venue == "raydium_cpmm":
            address = factory.cpmm(NATIVE_MINT, USDC, sol, usdc, **options)
        else:
            # initialize_pool with a static config (one pool per config and pair).
            address = factory.damm(NATIVE_MINT, USDC, sol, usdc, **options)
        configs.append(PoolConfig(venue, str(address)))
    factory.ledger.shift_time(2)
    return LedgerChain(factory), configs


async def _quote(chain: LedgerChain, pools: list[PoolConfig], amount: str = "1") -> router.Decision:
    return await router.quote_all_venues(
        cast(Chain, chain),
        pools,
        mint_in=str(NATIVE_MINT),
        mint_out=str(USDC),
        amount_in=Decimal(amount),
        priority_fee=1_000,
    )


@pytest.fixture(autouse=True)
def _cold_container() -> None:
    router._dependents.clear()


async def test_one_round_trip_once_warm_with_the_clock_and_mints_in_it() -> None:
    chain, pools = _chain(
        {"cpmm": {"venue": "raydium_cpmm"}, "damm": {"venue": "meteora_damm_v2", "config": 1}}
    )
    await _quote(chain, pools)  # cold: learns the CPMM pool's config and vaults
    chain.calls.clear()
    decision = await _quote(chain, pools)
    assert len(chain.calls) == 1
    [keys] = chain.calls
    assert SYSVAR_CLOCK in keys
    assert NATIVE_MINT in keys
    assert USDC in keys
    assert {Pubkey.from_string(p.address) for p in pools} <= set(keys)
    assert decision.clock == chain.clock
    assert decision.clock.unix_timestamp == NOW
    assert {q.venue for q in decision.quotes} == {"raydium_cpmm", "meteora_damm_v2"}
    assert decision.skipped == []


async def test_pools_that_cannot_trade_are_listed_with_their_reason_and_never_chosen() -> None:
    chain, pools = _chain(
        {
            "open": {"venue": "raydium_cpmm", "reserves": (1_000 * 10**9, 140_000 * 10**6)},
            "later": {
                "venue": "raydium_cpmm",
                "open_time": NOW + 3_600,
                "reserves": (1_000 * 10**9, 200_000 * 10**6),
            },
            "soon": {
                "venue": "meteora_damm_v2",
                "config": 0,
                "activation_point": NOW + 600,
                "reserves": (1_000 * 10**9, 200_000 * 10**6),
            },
        }
    )
    decision = await _quote(chain, pools)
    assert decision.best.pool == pools[0].address  # the only open pool, though the worst price
    quotes = decision.quotes_json()
    assert [q.get("chosen") for q in quotes] == [True, None, None]
    later, soon = quotes[1], quotes[2]
    assert later == {
        "venue": "raydium_cpmm",
        "pool": pools[1].address,
        "skipped": "not_open",
        "message": f"pool {pools[1].address} opens at 2027-01-15T09:00:00Z",
        "opensAt": "2027-01-15T09:00:00Z",
        "programError": "NotApproved",
    }
    assert soon["skipped"] == "not_open"
    assert soon["opensAt"] == "2027-01-15T08:10:00Z"
    assert "amountOutUnits" not in later
    assert "netOutUnits" not in soon


async def test_nothing_tradable_is_no_route_with_every_reason() -> None:
    chain, pools = _chain(
        {
            "later": {"venue": "raydium_cpmm", "open_time": NOW + 60},
            "soon": {"venue": "meteora_damm_v2", "config": 0, "activation_point": NOW + 60},
        }
    )
    with pytest.raises(PermanentChainError) as failed:
        await _quote(chain, pools)
    assert failed.value.code == "no_route"
    assert "not_open" in failed.value.message
    assert pools[0].address in failed.value.message
    assert pools[1].address in failed.value.message


async def test_an_order_too_small_for_every_pool_is_amount_too_small() -> None:
    chain, pools = _chain({"cpmm": {"venue": "raydium_cpmm"}})
    with pytest.raises(PermanentChainError) as failed:
        await _quote(chain, pools, "0.000000001")  # one lamport: all of it is fee
    assert failed.value.code == "amount_too_small"


async def test_no_pool_of_the_pair_is_no_route() -> None:
    chain, _ = _chain({})
    with pytest.raises(PermanentChainError) as failed:
        await _quote(chain, [])
    assert failed.value.code == "no_route"


async def test_a_cluster_without_a_clock_is_refused() -> None:
    chain, pools = _chain({"cpmm": {"venue": "raydium_cpmm"}})
    chain.hidden.add(SYSVAR_CLOCK)
    with pytest.raises(PermanentChainError) as failed:
        await _quote(chain, pools)
    assert failed.value.code == "invalid_account"
