"""The priority fee: priced from the cluster, clamped, cached for a few seconds.

What every landing guide (Solana docs, Helius, Jupiter) does: ask `getRecentPrioritizationFees`
what transactions that lock the same accounts paid in the last 150 slots, pay a percentile of
the non-zero figures (`PRIORITY_FEE_PERCENTILE`, default 75), never less than
`PRIORITY_FEE_MIN_MICRO_LAMPORTS` and never more, in total, than the order's cap
(`PRIORITY_FEE_MAX_LAMPORTS`, or an order's lower `maxPriorityFeeLamports`). One call covers every
candidate pool of an order; its answer is kept `PRIORITY_FEE_CACHE_SECONDS` per set of accounts,
so a warm container prices an order with no extra round trip.

The total a transaction pays for priority is its compute-unit limit x its price (micro-lamports
per CU) / 10^6: the limit, not the units used, so the limit comes from a simulation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from solders.pubkey import Pubkey

from engine.config import Settings
from execution.chain import MAX_FEE_ACCOUNTS, Chain

MICRO_LAMPORTS_PER_LAMPORT = 1_000_000
# What the runtime charges per signature, priority aside (the engine's transactions have one).
BASE_FEE_LAMPORTS_PER_SIGNATURE = 5_000


def percentile(values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of `values` (not empty): the smallest value at or above which
    `pct` % of them lie."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def priority_lamports(unit_limit: int, micro_lamports: int) -> int:
    """What a transaction pays for priority: its CU limit x price, rounded up (as the runtime)."""
    return -(-unit_limit * micro_lamports // MICRO_LAMPORTS_PER_LAMPORT)


def capped_price(micro_lamports: int, unit_limit: int, max_lamports: int) -> int:
    """The highest price <= `micro_lamports` whose total at `unit_limit` stays within
    `max_lamports` (the cap wins over the floor: it is the user's money)."""
    if unit_limit <= 0:
        return micro_lamports
    return min(micro_lamports, max_lamports * MICRO_LAMPORTS_PER_LAMPORT // unit_limit)


class PriorityFees:
    """One container's priority-fee oracle over one RPC endpoint."""

    def __init__(
        self, chain: Chain, cfg: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.chain = chain
        self.cfg = cfg
        self.clock = clock
        self._cache: dict[frozenset[Pubkey], tuple[float, int]] = {}

    async def price(self, accounts: Sequence[Pubkey]) -> int:
        """Micro-lamports per CU for a transaction locking `accounts` (the first 128 count)."""
        keys = frozenset(list(dict.fromkeys(accounts))[:MAX_FEE_ACCOUNTS])
        now = self.clock()
        cached = self._cache.get(keys)
        if cached is not None and cached[0] > now:
            return cached[1]
        recent = [fee for fee in await self.chain.recent_prioritization_fees(list(keys)) if fee]
        priced = percentile(recent, self.cfg.priority_fee_percentile) if recent else 0
        price = max(priced, self.cfg.priority_fee_min_micro_lamports)
        if len(self._cache) > 1_000:  # bounded: pairs come and go
            self._cache.clear()
        self._cache[keys] = (now + self.cfg.priority_fee_cache_seconds, price)
        return price
