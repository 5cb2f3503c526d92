"""Exact-out quotes against the real Raydium CPMM program (the mainnet binary the local chain
runs): `swap_base_output` with the engine's quoted input as its maximum receives exactly the
amount asked and spends exactly the quoted input, on random pools of every CPMM fee rate (with
and without protocol and fund shares) with Token-2022 transfer fees on either side, in both
directions; a pool the engine says cannot pay the amount is one the program refuses.

Only the venue-level quote and instruction exist: orders do not take `amountOut` yet, and
DAMM v2's exact-out (`swap2` ExactOut) is not ported.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from solders.compute_budget import set_compute_unit_limit
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams

from execution.venues import SYSVAR_CLOCK, Clock, PoolNotTradable, VenueError
from execution.venues import raydium_cpmm as cpmm
from local.chain import market, seed
from local.chain.ledger import Ledger
from tests.pool_factory import MAKER, PoolFactory

USDC = seed.USDC_MINT


def build_world() -> tuple[PoolFactory, list[tuple[str, Pubkey]]]:
    factory = PoolFactory()
    x = factory.mint(6)
    t1 = factory.mint(6, transfer_fee_bps=100)
    t2 = factory.mint(9, transfer_fee_bps=250)
    m = 10**6
    pools = [
        ("cpmm 0.25% protocol+fund T22/USDC (seeded)", seed.T22_POOLS["raydium_cpmm"]),
        ("cpmm 0.25% X/USDC", factory.cpmm(x, USDC, m * 10**6, 2 * m * 10**6, config=0)),
        ("cpmm 1% X/USDC", factory.cpmm(x, USDC, m * 10**5, 3 * m * 10**5, config=2)),
        ("cpmm 0.01% T1/USDC", factory.cpmm(t1, USDC, m * 10**6, m * 10**6, config=3)),
        ("cpmm 0.25% X/T2", factory.cpmm(x, t2, m * 10**6, m * 10**9, config=0)),
        ("cpmm 1% T1/T2", factory.cpmm(t1, t2, m * 10**6, 3 * m * 10**9, config=2)),
        ("cpmm config 1 X/USDC", factory.cpmm(x, USDC, 5 * m * 10**5, m * 10**6, config=1)),
    ]
    factory.ledger.shift_time(2)  # every pool is open
    return factory, pools


@pytest.fixture(scope="module")
def world() -> tuple[PoolFactory, list[tuple[str, Pubkey]]]:
    return build_world()


def held(ledger: Ledger, mint: Pubkey) -> int:
    account = ledger.get_account(market.token_account(ledger, MAKER.pubkey(), mint))
    return int.from_bytes(bytes(account.data)[64:72], "little") if account else 0


def exact_out_transaction(
    ledger: Ledger, pool: Pubkey, mint_in: Pubkey, amount_out: int, max_in: int
) -> VersionedTransaction:
    found = market.read_pool(ledger, pool)
    mint_out = next(m for m in found.mints if m != mint_in)
    owner = MAKER.pubkey()
    ix = cpmm.VENUE.swap_exact_out_instruction(
        found.state,
        owner,
        market.token_account(ledger, owner, mint_in),
        market.token_account(ledger, owner, mint_out),
        mint_in,
        amount_out,
        max_in,
    )
    memo = create_memo(
        MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner, message=str(uuid.uuid4()).encode())
    )
    blockhash, _ = ledger.latest_blockhash()
    message = MessageV0.try_compile(
        owner, [set_compute_unit_limit(400_000), memo, ix], [], blockhash
    )
    return VersionedTransaction(message, [MAKER])


TALLY: Counter[str] = Counter()


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    which=st.integers(0, 10**6),
    a_to_b=st.booleans(),
    share=st.one_of(st.integers(1, 10**6), st.integers(1, 10**9)),
    seconds=st.sampled_from([0, 0, 1, 3_600]),
    land=st.booleans(),
)
def test_swap_base_output_receives_exactly_the_amount_and_spends_exactly_the_quote(
    world: tuple[PoolFactory, list[tuple[str, Pubkey]]],
    which: int,
    a_to_b: bool,
    share: int,
    seconds: int,
    land: bool,
) -> None:
    factory, pools = world
    ledger = factory.ledger
    if seconds:
        ledger.shift_time(seconds)
    label, pool = pools[which % len(pools)]
    found = market.read_pool(ledger, pool)
    mint_in = found.mints[0] if a_to_b else found.mints[1]
    mint_out = found.mints[1] if a_to_b else found.mints[0]
    vault_out = found.state.token_1_vault if a_to_b else found.state.token_0_vault
    reserve_out = cpmm.token_account_amount(bytes(ledger.get_account(vault_out).data))  # type: ignore[union-attr]
    # From one base unit to the whole reserve (past what the pool can pay), log-spread.
    amount_out = max(1, reserve_out * share // 10**9)
    TALLY["cases"] += 1
    keys = [*found.depends_on, *found.mints, SYSVAR_CLOCK]
    data = {k: bytes(a.data) for k in keys if (a := ledger.get_account(k)) is not None}
    clock = Clock.from_account_data(data[SYSVAR_CLOCK])
    refused: str | None = None
    try:
        quote = cpmm.VENUE.quote_exact_out(found.state, data, mint_in, amount_out, clock)
    except (PoolNotTradable, VenueError) as exc:
        refused = str(exc)
    if refused is not None:
        tx = exact_out_transaction(ledger, pool, mint_in, amount_out, 2**64 - 1)
        outcome = ledger.simulate(tx)
        assert outcome.err is not None, (label, amount_out, refused)
        event("refused by both")
        return
    tx = exact_out_transaction(ledger, pool, mint_in, amount_out, quote.amount_in)
    in_before, out_before = held(ledger, mint_in), held(ledger, mint_out)
    if land:
        record = ledger.land_now(tx)
        assert record.err is None, (label, amount_out, quote, record.logs[-4:])
        spent = in_before - held(ledger, mint_in)
        received = held(ledger, mint_out) - out_before
    else:
        accounts = [market.token_account(ledger, MAKER.pubkey(), m) for m in (mint_in, mint_out)]
        outcome = ledger.simulate(tx, addresses=accounts)
        assert outcome.err is None, (label, amount_out, quote, outcome.logs[-4:])
        after_in, after_out = (
            int.from_bytes(bytes(a.data)[64:72], "little") if a else 0 for a in outcome.accounts
        )
        spent, received = in_before - after_in, after_out - out_before
    assert received == amount_out, (label, amount_out, quote)
    assert spent == quote.amount_in, (label, amount_out, quote)
    # One unit less than the quote as the maximum: the program refuses (the quote is the least).
    short = exact_out_transaction(ledger, pool, mint_in, amount_out, quote.amount_in - 1)
    assert ledger.simulate(short).err is not None
    event(f"exact: {label}")
    TALLY["exact"] += 1


def test_the_exact_out_property_paid_most_cases(
    world: tuple[PoolFactory, list[tuple[str, Pubkey]]],
) -> None:
    assert TALLY["exact"] > TALLY["cases"] // 2
