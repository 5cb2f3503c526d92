"""The watcher's shortcut held against the venue math it skips (execution/pricing.py): for every
kind of pool the local chain runs (Raydium CPMM; Meteora DAMM v2 concentrated with the dynamic
fee, compounding, and with a Token-2022 transfer-fee mint and the rate limiter), at any price
and amount, the exact quote never exceeds `PoolBook.upper_bound`. A bound below a real quote
would hide a limit order that is met: this is what may never happen."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from fractions import Fraction
from math import isqrt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from engine.config import PoolConfig
from execution.chain import Chain
from execution.discovery import read_pools
from execution.pricing import PoolBook
from execution.venues import SYSVAR_CLOCK
from local import pools as local_pools
from local.chain import (
    POOLS,
    T22_MINT,
    T22_POOLS,
    USDC_MINT,
    LocalChain,
    client_for,
    market,
    seed,
)

WSOL = Pubkey.from_string("So11111111111111111111111111111111111111112")


@pytest.fixture(scope="module")
def world() -> tuple[LocalChain, list[tuple[PoolConfig, Pubkey, Pubkey]]]:
    """The seeded pools, plus a compounding DAMM v2 pool of a new token: (pool, mint a, mint b)."""
    chain = LocalChain.seeded()
    chain.start_ticker(0.01)

    async def setup() -> Pubkey:
        client = client_for(chain)
        mint, _ = await local_pools.mint_new_token(client, seed.WALLET_KEYPAIR, 6, 10**15)
        a, b = 10**12, 4 * 10**9
        nft = Keypair()
        ix, damm = local_pools.damm_initialize_customizable_pool(
            seed.WALLET,
            nft.pubkey(),
            (mint, TOKEN_PROGRAM_ID),
            (USDC_MINT, TOKEN_PROGRAM_ID),
            isqrt(a * b << 128) - (1 << 64),
            isqrt((b << 128) // a),
            fees=local_pools.CustomizableFees(collect_fee_mode=2, compounding_fee_bps=5_000),
        )
        await local_pools.send_and_confirm(client, seed.WALLET_KEYPAIR, [ix], [nft])
        return damm.pool

    compounding = asyncio.run(setup())
    chain.stop()
    pools = [(PoolConfig(v, str(a)), WSOL, USDC_MINT) for v, a in POOLS.items()]
    pools += [(PoolConfig(v, str(a)), T22_MINT, USDC_MINT) for v, a in T22_POOLS.items()]
    pools.append((PoolConfig("meteora_damm_v2", str(compounding)), Pubkey.default(), USDC_MINT))
    return chain, pools


async def book_of(chain: LocalChain, pool: PoolConfig, mints: list[Pubkey]) -> PoolBook:
    client = Chain("http://local-chain", client_for(chain))
    [found], _, _ = await read_pools(client, [pool.address])
    keys = [Pubkey.from_string(pool.address), *found.depends_on, *found.mints, SYSVAR_CLOCK]
    return PoolBook(await client.accounts(list(dict.fromkeys([*keys, *mints]))))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    which=st.integers(0, 4),
    selling_a=st.booleans(),
    price=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10_000), places=3),
    amount=st.integers(1, 10**13),
)
def test_no_exact_quote_exceeds_the_upper_bound(
    world: tuple[LocalChain, list[tuple[PoolConfig, Pubkey, Pubkey]]],
    which: int,
    selling_a: bool,
    price: Decimal,
    amount: int,
) -> None:
    chain, pools = world
    pool, mint_a, _ = pools[which]
    if which < 4:  # move the price (real swaps) to `price` / 1000 units of b per unit of a
        market.move_price(
            chain.ledger,
            seed.MARKET_MAKER_KEYPAIR,
            Pubkey.from_string(pool.address),
            mint_a,
            Fraction(price) / 1_000,
        )
    book = asyncio.run(book_of(chain, pool, []))
    state = book.state(pool)
    assert state is not None
    mints = (
        [str(m) for m in (state.token_0_mint, state.token_1_mint)]
        if pool.venue == "raydium_cpmm"
        else [str(state.token_a_mint), str(state.token_b_mint)]
    )
    mint_in = mints[0] if selling_a else mints[1]
    bound = book.upper_bound(pool, mint_in, amount)
    quote = book.quote(pool, mint_in, amount)
    assert bound is not None
    if quote is not None:
        assert quote.amount_out <= bound, (pool.venue, quote.amount_out, bound)


def test_the_bound_is_close_for_small_trades(
    world: tuple[LocalChain, list[tuple[PoolConfig, Pubkey, Pubkey]]],
) -> None:
    """Not a vacuous bound: a small trade gets within its fees of it, so every order whose
    limit is near the price is quoted exactly and only those far from it are skipped."""
    chain, pools = world
    for pool, mint_a, _ in pools[:4]:
        market.move_price(
            chain.ledger,
            seed.MARKET_MAKER_KEYPAIR,
            Pubkey.from_string(pool.address),
            mint_a,
            Fraction(1),
        )
        book = asyncio.run(book_of(chain, pool, []))
        quote = book.quote(pool, str(mint_a), 10**7)
        bound = book.upper_bound(pool, str(mint_a), 10**7)
        assert quote is not None
        assert bound is not None
        assert 0.97 * bound < quote.amount_out <= bound
