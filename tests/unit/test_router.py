"""The router: one getMultipleAccounts for pools, vaults, configs, mints and the Clock sysvar;
every pool quoted at that clock; pools their program would refuse are listed, never chosen."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

import pytest
from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from engine.config import PoolConfig
from engine.errors import PermanentChainError
from execution import router
from execution.chain import Chain
from execution.venues import SYSVAR_CLOCK, Clock
from local.chain.programs import create_pool
from local.chain.programs.token import MINT_LEN, NATIVE_MINT, Mint, rent_exempt_lamports

USDC = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
SYSVAR_OWNER = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
NOW = 1_800_000_000
CLOCK = Clock(400_000_000, 0, 900, 901, NOW)


class FakeChain:
    """Chain.accounts over a dict, counting round trips."""

    def __init__(self) -> None:
        self.accounts_by_key: dict[Pubkey, Account] = {}
        self.calls: list[list[Pubkey]] = []

    def get(self, key: Pubkey) -> Account | None:
        return self.accounts_by_key.get(key)

    def set(self, key: Pubkey, account: Account) -> None:
        self.accounts_by_key[key] = account

    async def accounts(self, keys: Sequence[Pubkey]) -> dict[Pubkey, Account | None]:
        self.calls.append(list(keys))
        return {k: self.accounts_by_key.get(k) for k in keys}


def _chain(pools: dict[str, dict[str, Any]]) -> tuple[FakeChain, list[PoolConfig]]:
    chain = FakeChain()
    for mint, decimals in ((NATIVE_MINT, 9), (USDC, 6)):
        data = Mint(decimals).pack()
        chain.set(mint, Account(rent_exempt_lamports(MINT_LEN), data, TOKEN_PROGRAM_ID, False, 0))
    chain.set(SYSVAR_CLOCK, Account(1, CLOCK.to_account_data(), SYSVAR_OWNER, False, 0))
    configs = []
    for name, options in pools.items():
        venue = options.pop("venue")
        address = Keypair.from_seed(name.encode().ljust(32, b"\0")).pubkey()
        reserves = options.pop("reserves", (1_000 * 10**9, 150_000 * 10**6))
        create_pool(
            chain,
            venue,
            pool=address,
            mint_a=NATIVE_MINT,
            mint_b=USDC,
            decimals_a=9,
            decimals_b=6,
            reserve_a=reserves[0],
            reserve_b=reserves[1],
            fee_rate_ppm=2_500,
            **options,
        )
        configs.append(PoolConfig(venue, str(address)))
    return chain, configs


async def _quote(chain: FakeChain, pools: list[PoolConfig], amount: str = "1") -> router.Decision:
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
    chain, pools = _chain({"cpmm": {"venue": "raydium_cpmm"}, "damm": {"venue": "meteora_damm_v2"}})
    await _quote(chain, pools)  # cold: learns the CPMM pool's config and vaults
    chain.calls.clear()
    decision = await _quote(chain, pools)
    assert len(chain.calls) == 1
    [keys] = chain.calls
    assert SYSVAR_CLOCK in keys
    assert NATIVE_MINT in keys
    assert USDC in keys
    assert {Pubkey.from_string(p.address) for p in pools} <= set(keys)
    assert decision.clock == CLOCK
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
            "off": {
                "venue": "meteora_damm_v2",
                "pool_status": 1,
                "reserves": (1_000 * 10**9, 200_000 * 10**6),
            },
        }
    )
    decision = await _quote(chain, pools)
    assert decision.best.pool == pools[0].address  # the only open pool, though the worst price
    quotes = decision.quotes_json()
    assert [q.get("chosen") for q in quotes] == [True, None, None]
    later, off = quotes[1], quotes[2]
    assert later == {
        "venue": "raydium_cpmm",
        "pool": pools[1].address,
        "skipped": "not_open",
        "message": f"pool {pools[1].address} opens at 2027-01-15T09:00:00Z",
        "opensAt": "2027-01-15T09:00:00Z",
        "programError": "NotApproved",
    }
    assert off["skipped"] == "disabled"
    assert off["programError"] == "PoolDisabled"
    assert "amountOutUnits" not in later
    assert "netOutUnits" not in off


async def test_nothing_tradable_is_no_route_with_every_reason() -> None:
    chain, pools = _chain(
        {
            "later": {"venue": "raydium_cpmm", "open_time": NOW + 60},
            "off": {"venue": "meteora_damm_v2", "pool_status": 1},
        }
    )
    with pytest.raises(PermanentChainError) as failed:
        await _quote(chain, pools)
    assert failed.value.code == "no_route"
    assert "not_open" in failed.value.message
    assert "disabled" in failed.value.message
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
    del chain.accounts_by_key[SYSVAR_CLOCK]
    with pytest.raises(PermanentChainError) as failed:
        await _quote(chain, pools)
    assert failed.value.code == "invalid_account"
