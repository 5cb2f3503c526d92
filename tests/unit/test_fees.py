"""The priority-fee arithmetic (execution/fees.py)."""

from __future__ import annotations

import pytest

from execution.fees import capped_price, percentile, priority_lamports


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([1_000, 5_000, 20_000, 80_000], 75, 20_000),
        ([1_000, 5_000, 20_000, 80_000], 100, 80_000),
        ([1_000, 5_000, 20_000, 80_000], 0, 1_000),
        ([1_000, 5_000, 20_000, 80_000], 50, 5_000),
        ([7], 75, 7),
        ([3, 1, 2], 67, 3),
    ],
)
def test_the_percentile_is_nearest_rank(values: list[int], pct: float, expected: int) -> None:
    assert percentile(values, pct) == expected


def test_the_priority_fee_is_the_limit_times_the_price_rounded_up() -> None:
    assert priority_lamports(200_000, 1_000) == 200
    assert priority_lamports(33_001, 1_000) == 34  # 33.001 lamports: the runtime rounds up


@pytest.mark.parametrize(
    ("price", "limit", "cap", "expected"),
    [
        (250_000, 40_000, 10_000, 250_000),  # 10,000 lamports exactly: within the cap
        (250_000, 40_000, 2_000, 50_000),
        (250_000, 40_000, 0, 0),
        (1_000, 0, 5, 1_000),
    ],
)
def test_the_cap_lowers_the_price_so_the_total_stays_within_it(
    price: int, limit: int, cap: int, expected: int
) -> None:
    capped = capped_price(price, limit, cap)
    assert capped == expected
    if limit:
        assert priority_lamports(limit, capped) <= cap
