"""Numbers from the programs' own Rust tests, ported: each test names the repository, the file
and the test it comes from, and holds the engine's quoting code to them (the local chain runs
the real programs, so there is no second implementation to check here).

Not ported because the upstream tests assert no number: damm-v2 test_dynamic_fee.rs
(`test_from_price_to_bin_id` only prints its model's fees) and the Raydium creator fee (no Rust
test on master); tests/unit/test_venue_fixtures.py pins those against real accounts instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from execution.venues import meteora_damm_v2 as damm
from execution.venues import raydium_cpmm as cpmm
from execution.venues import token_2022 as t22

FEE_DENOMINATOR = 1_000_000_000
U64_MAX = 2**64 - 1


def to_bps(numerator: int) -> int:
    """damm-v2 params/fee_parameters.rs to_bps."""
    return numerator * 10_000 // FEE_DENOMINATOR


def to_numerator(bps: int) -> int:
    return bps * FEE_DENOMINATOR // 10_000


# ------------------------------------------------------------------ MeteoraAg/damm-v2 (0.2.1)
RATE_LIMITER = damm.BaseFee(
    mode=damm.RATE_LIMITER,
    cliff_fee_numerator=to_numerator(100),  # 1 %
    fee_increment_bps=100,  # 1 %
    max_limiter_duration=60,
    max_fee_bps=5_000,  # 50 %
    reference_amount=1_000_000_000,  # 1 SOL
)


@pytest.mark.parametrize(
    ("multiple", "bps"),
    [((1, 1), 100), ((3, 2), 133), ((2, 1), 150), ((3, 1), 200), ((4, 1), 250)],
)
def test_rate_limiter_behavior(multiple: tuple[int, int], bps: int) -> None:
    """damm-v2 programs/cp-amm/src/tests/test_rate_limiter.rs test_rate_limiter_behavior."""
    amount = RATE_LIMITER.reference_amount * multiple[0] // multiple[1]
    assert to_bps(damm.rate_limiter_fee(RATE_LIMITER, amount)) == bps


def test_rate_limiter_behavior_caps_at_max_fee_bps() -> None:
    """test_rate_limiter.rs test_rate_limiter_behavior: u64::MAX pays max_fee_bps."""
    assert to_bps(damm.rate_limiter_fee(RATE_LIMITER, U64_MAX)) == 5_000


def test_rate_limiter_routing_friendly() -> None:
    """test_rate_limiter.rs test_rate_limiter_routing_friendly: more in, more out."""

    def output(amount: int) -> int:
        numerator = damm.rate_limiter_fee(RATE_LIMITER, amount)
        return amount - -(-amount * numerator // FEE_DENOMINATOR)

    amount = RATE_LIMITER.reference_amount - 10
    current = output(amount)
    for _ in range(500):
        amount += RATE_LIMITER.reference_amount // 2
        assert output(amount) > current
        current = output(amount)


def test_rate_limiter_base_fee_numerator() -> None:
    """test_rate_limiter.rs test_rate_limiter_base_fee_numerator: A -> B pays the cliff; past
    the last effective point the cliff; at it, more."""
    cliff = RATE_LIMITER.cliff_fee_numerator
    duration = RATE_LIMITER.max_limiter_duration
    pool = _engine_pool(RATE_LIMITER)
    assert damm.base_fee_numerator(pool, 0, True, 2_000_000_000) == cliff
    assert damm.base_fee_numerator(pool, duration + 1, False, 2_000_000_000) == cliff
    assert damm.base_fee_numerator(pool, duration, False, 2_000_000_000) > cliff


def _engine_pool(base_fee: damm.BaseFee, **fields: Any) -> damm.PoolState:
    zero = Pubkey.default()
    dynamic = damm.DynamicFee(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    pool = damm.PoolState(
        zero,
        zero,
        base_fee,
        0,
        0,
        0,
        dynamic,
        0,
        zero,
        zero,
        zero,
        zero,
        zero,
        0,
        0,
        0,
        damm.MIN_SQRT_PRICE,
        damm.MAX_SQRT_PRICE,
        0,
        0,
        1,
        0,
        0,
        0,
        1,
        1,
        1,
        zero,
        0,
        0,
        1,
    )
    return dataclasses.replace(pool, **fields)


@settings(max_examples=100, deadline=None)
@given(passed_period=st.integers(1, 2**16 - 1))
def test_fee_scheduler_exponential(passed_period: int) -> None:
    """damm-v2 tests/test_fee_scheduler.rs fee_scheduler_exponential: a zero reduction factor
    keeps the cliff fee (100_000) in every period."""
    assert damm.fee_in_period(100_000, 0, passed_period) == 100_000


def test_bin_step_bps_u128() -> None:
    """tests/test_volatility_accumulate.rs test_bin_step_bps_u128."""
    assert (1 << 64) * 1 // 10_000 == 1_844_674_407_370_955


@pytest.mark.parametrize(
    ("mode", "a_to_b", "on_input", "on_token_a"),
    [
        (damm.COLLECT_FEE_BOTH_TOKEN, True, False, False),  # test_fee_mode_output_token_a_to_b
        (damm.COLLECT_FEE_BOTH_TOKEN, False, False, True),  # test_fee_mode_output_token_b_to_a
        (damm.COLLECT_FEE_ONLY_B, True, False, False),  # test_fee_mode_quote_token_a_to_b
        (damm.COLLECT_FEE_ONLY_B, False, True, False),  # test_fee_mode_quote_token_b_to_a
        (damm.COLLECT_FEE_COMPOUNDING, True, False, False),  # state/fee.rs get_fee_mode
        (damm.COLLECT_FEE_COMPOUNDING, False, True, False),
    ],
)
def test_fee_mode(mode: int, a_to_b: bool, on_input: bool, on_token_a: bool) -> None:
    """damm-v2 tests/test_collect_fee_mode.rs (and FeeMode::get_fee_mode for compounding)."""
    assert damm.fee_mode(mode, a_to_b) == (on_input, on_token_a)


def _concentrated_pool(sqrt_price: int, liquidity: int) -> damm.PoolState:
    base = damm.BaseFee(mode=damm.FEE_TIME_SCHEDULER_LINEAR, cliff_fee_numerator=0)
    pool = _engine_pool(base, sqrt_price=sqrt_price, liquidity=liquidity, collect_fee_mode=0)
    a, b = damm.reserves_for_layout(dataclasses.replace(pool, layout_version=0))
    return dataclasses.replace(pool, token_a_amount=a, token_b_amount=b)


@settings(max_examples=300, deadline=None)
@given(
    sqrt_price=st.integers(damm.MIN_SQRT_PRICE, damm.MAX_SQRT_PRICE),
    liquidity=st.integers(1, 34_028_236_692_093_846_346_337_460_743),  # tests LIQUIDITY_MAX
    amount_in=st.integers(1, U64_MAX),
    a_to_b=st.booleans(),
)
def test_reserve_wont_lost_when_swap(
    sqrt_price: int, liquidity: int, amount_in: int, a_to_b: bool
) -> None:
    """damm-v2 tests/test_swap.rs test_reserve_wont_lost_when_swap_from_a_to_b / _b_to_a: a
    swap and its swap back return less than went in (a default pool: no fee)."""
    pool = _concentrated_pool(sqrt_price, liquidity)
    try:
        first = damm.swap_exact_in(pool, amount_in, a_to_b, 0)
    except damm.ProgramFailure:
        return  # beyond get_max_amount_in: the Rust test skips these amounts too
    moved = dataclasses.replace(pool, sqrt_price=first.next_sqrt_price)
    if first.output_amount == 0:
        return
    try:
        back = damm.swap_exact_in(moved, first.output_amount, not a_to_b, 0)
    except damm.ProgramFailure:
        return
    assert back.output_amount < amount_in


def test_reserve_wont_lost_when_swap_from_b_to_a_single() -> None:
    """test_swap.rs test_reserve_wont_lost_when_swap_from_b_to_a_single."""
    pool = _concentrated_pool(
        19_163_436_944_492_510_497_018_124_036, 34_028_236_692_093_846_346_337_460_743
    )
    first = damm.swap_exact_in(pool, 10_000_000, False, 0)
    moved = dataclasses.replace(pool, sqrt_price=first.next_sqrt_price)
    assert damm.swap_exact_in(moved, first.output_amount, True, 0).output_amount < 10_000_000


# ------------------------------------------------------------ raydium-io/raydium-cp-swap (master)
@pytest.mark.parametrize(
    ("source", "swap_source", "swap_destination", "expected"),
    [
        (10, 4_000_000, 70_000_000_000, 174_999),
        (20, 30_000 - 20, 10_000, 6),
        (19, 30_000 - 20, 10_000, 6),
        (18, 30_000 - 20, 10_000, 6),
        (10, 20_000, 30_000, 14),
        (10, 20_000 - 9, 30_000, 14),
        (10, 20_000 - 10, 30_000, 15),
        (100, 60_000, 30_000, 49),
        (99, 60_000, 30_000, 49),
        (98, 60_000, 30_000, 48),
    ],
)
def test_constant_product_swap_rounding(
    source: int, swap_source: int, swap_destination: int, expected: int
) -> None:
    """raydium-cp-swap programs/cp-swap/src/curve/constant_product.rs
    constant_product_swap_rounding (no fee: the curve alone)."""
    config = cpmm.AmmConfig(0, 0, 0, 0)
    engine = cpmm.swap_base_input(source, swap_source, swap_destination, config, 0, False)
    assert engine is not None
    assert engine.output_amount_swapped == expected
    # test_truncation: the invariant never decreases.
    assert (swap_source + source) * (swap_destination - expected) >= swap_source * swap_destination


@pytest.mark.parametrize(
    ("status", "swap_enabled"), [(4, False), (5, False), (7, False), (3, True)]
)
def test_get_set_status_by_bit(status: int, swap_enabled: bool) -> None:
    """raydium-cp-swap states/pool.rs pool_status_test::get_set_status_by_bit (the Swap bit)."""
    raw = bytearray(cpmm.POOL_STATE_LEN)
    raw[:8] = cpmm.POOL_STATE_DISCRIMINATOR
    raw[cpmm.STATUS_OFFSET] = status
    state = cpmm.decode(bytes(raw), Pubkey.default(), Pubkey.default())
    assert state.swap_enabled is swap_enabled


def test_pool_state_size() -> None:
    """raydium-cp-swap states/pool.rs pool_state_size_test (PoolState::LEN, with the
    discriminator), and config.rs AmmConfig::LEN."""
    assert cpmm.POOL_STATE_LEN == 8 + 10 * 32 + 5 + 8 * 7 + 2 + 6 + 16 + 8 * 28
    assert cpmm.AMM_CONFIG_LEN == 8 + 1 + 1 + 2 + 4 * 8 + 32 * 2 + 8 + 8 * 15


# ------------------------------------------------------- solana-program/token-2022 (interface)
def test_epoch_fee() -> None:
    """token-2022 interface/src/extension/transfer_fee/mod.rs epoch_fee: the newer fee from its
    epoch (100) on, the older one before."""
    older, newer = t22.TransferFee(1, 10, 100), t22.TransferFee(100, 5_000, 1)
    config = t22.TransferFeeConfig(2**64 - 1, older, newer)
    for epoch, expected in ((100, 100), (101, 100), (2**64 - 1, 100), (99, 1), (1, 1), (2, 1)):
        assert config.epoch_fee(epoch).epoch == expected


def test_calculate_fee_max() -> None:
    """transfer_fee/mod.rs calculate_fee_max: 1 bp capped at 5,000."""
    engine = t22.TransferFee(0, 5_000, 1)
    for amount in (2**64 - 1, 5_000 * 10_000, 5_000 * 10_000 + 1, 5_000 * 10_000 - 1):
        assert engine.fee(amount) == 5_000


def test_calculate_fee_min() -> None:
    """transfer_fee/mod.rs calculate_fee_min: 1 bp rounds up to 1 from 1 token on, 2 at
    10,001, and 0 stays 0."""
    engine = t22.TransferFee(0, 5_000, 1)
    for amount, expected in ((1, 1), (2, 1), (10_000, 1), (10_001, 2), (0, 0)):
        assert engine.fee(amount) == expected


def test_calculate_fee_zero() -> None:
    """transfer_fee/mod.rs calculate_fee_zero: 0 bps, or a zero maximum at 100 %, is no fee."""
    for maximum, bps in ((2**64 - 1, 0), (0, 10_000)):
        engine = t22.TransferFee(0, maximum, bps)
        for amount in (0, 2**64 - 1, 1, 10_000):
            assert engine.fee(amount) == 0
