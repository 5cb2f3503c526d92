"""Split routes: how much of an exact-input order each pool of the pair gets.

Given each candidate pool's exact quote (`amount_in -> amount_out` as its program computes it,
the venue's own integer math), `best_split` chooses, for every pair of distinct pools, the
integer allocation of the order's amount that maximises the total output: a greedy marginal
allocation in `steps` equal chunks (each chunk to the pool that pays most for it), then refined
with the exact quotes by moving units between the two legs, halving the step down to one unit
while a move pays more. A leg the program would refuse (too small to pay anything, past a price
range) is infeasible and never kept: the allocation falls back to the other pool for it.

MAX_SPLIT_LEGS is 2: two swap instructions (a CPMM and a DAMM v2 swap) fit one v0 transaction
without an address lookup table (about 1,030 of 1,232 bytes); three need a lookup table, which
the engine does not create yet. Two legs are never on one pool (DAMM v2's rate limiter refuses
a second instruction naming the same pool, and one pool's curve pays the same for the sum).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# amount_in (base units, > 0) -> amount_out (base units); None when the program would refuse it.
QuoteFn = Callable[[int], int | None]

MAX_SPLIT_LEGS = 2  # without an address lookup table (see the module's docstring)
MIN_SPLIT_GAIN_BPS = 1.0
GREEDY_STEPS = 32
SPLIT_CANDIDATES = 4  # a split's two pools are among the 4 best for the whole amount


@dataclass(frozen=True)
class Allocation:
    """Two pools' shares of the order (indexes into the candidates) and what each pays."""

    first: int
    second: int
    amount_first: int
    amount_second: int
    out_first: int
    out_second: int

    @property
    def total_out(self) -> int:
        return self.out_first + self.out_second


class _Memo:
    """A pool's exact quote, asked once per amount (the refinement revisits amounts)."""

    def __init__(self, fn: QuoteFn) -> None:
        self.fn = fn
        self.seen: dict[int, int | None] = {0: 0}

    def __call__(self, amount: int) -> int | None:
        if amount not in self.seen:
            self.seen[amount] = self.fn(amount)
        return self.seen[amount]


def _total(f: _Memo, g: _Memo, x: int, total: int) -> int | None:
    a, b = f(x), g(total - x)
    if a is None or b is None:
        return None
    return a + b


def allocate_pair(f: QuoteFn, g: QuoteFn, total: int, steps: int = GREEDY_STEPS) -> tuple[int, int]:
    """The amount for `f` (the rest to `g`) that maximises f(x) + g(total - x), and that total;
    (0, g(total)) or (total, f(total)) when one pool alone pays most. Raises ValueError when
    neither pool can take the whole amount alone nor any split is feasible."""
    fm, gm = _Memo(f), _Memo(g)
    chunk = max(1, total // steps)
    best_x = _greedy(fm, gm, total, chunk)
    best = _total(fm, gm, best_x, total)
    for edge in (0, total):  # one pool alone is always a candidate
        alone = _total(fm, gm, edge, total)
        if alone is not None and (best is None or alone > best):
            best_x, best = edge, alone
    best_x, best = _refine(fm, gm, total, best_x, best, max(1, chunk // 2))
    if best is None:
        raise ValueError("no allocation of the amount is feasible on these pools")
    return best_x, best


def _greedy(fm: _Memo, gm: _Memo, total: int, chunk: int) -> int:
    """Greedy marginal allocation: each chunk to the pool whose next chunk pays more."""
    x, y = 0, 0
    while x + y < total:
        size = min(chunk, total - x - y)
        here, there = fm(x + size), gm(y + size)
        gain_f = None if here is None else here - (fm(x) or 0)
        gain_g = None if there is None else there - (gm(y) or 0)
        if gain_g is None or (gain_f is not None and gain_f >= gain_g):
            x += size
        else:
            y += size
    return x


def _refine(
    fm: _Memo, gm: _Memo, total: int, x: int, value: int | None, step: int
) -> tuple[int, int | None]:
    """Move `step` units either way while the exact quotes pay more; halve it down to 1."""
    while True:
        moved = False
        for candidate in (x + step, x - step):
            if 0 <= candidate <= total:
                found = _total(fm, gm, candidate, total)
                if found is not None and (value is None or found > value):
                    x, value, moved = candidate, found, True
                    break
        if not moved:
            if step == 1:
                return x, value
            step //= 2


def best_split(
    quotes: Sequence[QuoteFn], total: int, steps: int = GREEDY_STEPS
) -> Allocation | None:
    """The two-pool allocation of `total` with the highest output over every pair of distinct
    candidates, both legs non-zero; None when no pair has a feasible split with two legs (one
    pool alone pays most for every pair, or fewer than two candidates)."""
    best: Allocation | None = None
    for i in range(len(quotes)):
        for j in range(i + 1, len(quotes)):
            fi, fj = _Memo(quotes[i]), _Memo(quotes[j])
            try:
                x, _ = allocate_pair(fi, fj, total, steps)
            except ValueError:
                continue
            if x in (0, total):
                continue
            out_i, out_j = fi(x), fj(total - x)
            if out_i is None or out_j is None or out_i == 0 or out_j == 0:
                continue
            found = Allocation(i, j, x, total - x, out_i, out_j)
            if best is None or found.total_out > best.total_out:
                best = found
    return best


def gain_bps(split_net: int, single_net: int) -> float:
    """The split's gain over the best single pool, net of both transactions' costs, in bps."""
    if single_net <= 0:
        return 0.0
    return round((split_net - single_net) * 10_000 / single_net, 4)


def leg_minimums(quoted: Sequence[int], floor: int) -> list[int]:
    """Each leg's minimum output for an order whose total must be at least `floor` (a limit
    order's amountIn x limitPrice): the floor shared in proportion to the legs' quotes, rounded
    up, so the minimums sum to at least `floor` and none exceeds its quote when the quotes'
    sum meets the floor."""
    total = sum(quoted)
    if total <= 0:
        return [max(floor, 1), *([1] * (len(quoted) - 1))]
    return [max(1, -(-floor * q // total)) for q in quoted]


# -- exact out ------------------------------------------------------------------------------------
# An exact-out order asks for an output, not an input: each leg is its own exact-out swap
# (`swap_base_output`, `swap2` ExactOut), so the allocation chooses the OUTPUT each pool pays,
# summing exactly to the order's amountOut, that minimises the total INPUT, over each pool's
# exact-out quote (`amount_out -> amount_in` as its program computes it, None when the program
# would refuse it: past the pool's reserve, a price range, a rate limit). Same method as exact
# in: greedy marginal allocation in chunks (each chunk to the pool whose next chunk costs least),
# then refined with the exact quotes down to one unit.

# amount_out (base units, > 0) -> amount_in (base units); None when the program would refuse it.
InputFn = Callable[[int], int | None]


@dataclass(frozen=True)
class ExactOutAllocation:
    """Two pools' shares of an exact-out order's output (indexes into the candidates) and the
    input each takes for its share."""

    first: int
    second: int
    out_first: int
    out_second: int
    in_first: int
    in_second: int

    @property
    def total_in(self) -> int:
        return self.in_first + self.in_second


def _input_total(f: _Memo, g: _Memo, x: int, total: int) -> int | None:
    a, b = f(x), g(total - x)
    if a is None or b is None:
        return None
    return a + b


def allocate_pair_exact_out(
    f: InputFn, g: InputFn, total: int, steps: int = GREEDY_STEPS
) -> tuple[int, int]:
    """The output for `f` (the rest from `g`) that minimises f(x) + g(total - x), and that
    total input; (0, g(total)) or (total, f(total)) when one pool alone costs least. Raises
    ValueError when neither pool can pay the whole amount alone nor any split is feasible."""
    fm, gm = _Memo(f), _Memo(g)
    chunk = max(1, total // steps)
    best_x = _greedy_exact_out(fm, gm, total, chunk)
    best = _input_total(fm, gm, best_x, total)
    for edge in (0, total):  # one pool alone is always a candidate
        alone = _input_total(fm, gm, edge, total)
        if alone is not None and (best is None or alone < best):
            best_x, best = edge, alone
    best_x, best = _refine_exact_out(fm, gm, total, best_x, best, max(1, chunk // 2))
    if best is None:
        raise ValueError("no allocation of the output is feasible on these pools")
    return best_x, best


def _greedy_exact_out(fm: _Memo, gm: _Memo, total: int, chunk: int) -> int:
    """Greedy marginal allocation: each chunk of output from the pool whose next chunk costs
    less input (a pool that cannot pay it is never given it while the other can)."""
    x, y = 0, 0
    while x + y < total:
        size = min(chunk, total - x - y)
        here, there = fm(x + size), gm(y + size)
        cost_f = None if here is None else here - (fm(x) or 0)
        cost_g = None if there is None else there - (gm(y) or 0)
        if cost_g is None or (cost_f is not None and cost_f <= cost_g):
            x += size
        else:
            y += size
    return x


def _refine_exact_out(
    fm: _Memo, gm: _Memo, total: int, x: int, value: int | None, step: int
) -> tuple[int, int | None]:
    """Move `step` units of output either way while the exact quotes cost less; halve it to 1."""
    while True:
        moved = False
        for candidate in (x + step, x - step):
            if 0 <= candidate <= total:
                found = _input_total(fm, gm, candidate, total)
                if found is not None and (value is None or found < value):
                    x, value, moved = candidate, found, True
                    break
        if not moved:
            if step == 1:
                return x, value
            step //= 2


def best_split_exact_out(
    inputs: Sequence[InputFn], total: int, steps: int = GREEDY_STEPS
) -> ExactOutAllocation | None:
    """The two-pool allocation of the output `total` needing the least input over every pair of
    distinct candidates, both legs non-zero; None when no pair has a feasible split with two
    legs (one pool alone costs least for every pair, or fewer than two candidates)."""
    best: ExactOutAllocation | None = None
    for i in range(len(inputs)):
        for j in range(i + 1, len(inputs)):
            fi, fj = _Memo(inputs[i]), _Memo(inputs[j])
            try:
                x, _ = allocate_pair_exact_out(fi, fj, total, steps)
            except ValueError:
                continue
            if x in (0, total):
                continue
            in_i, in_j = fi(x), fj(total - x)
            if in_i is None or in_j is None or in_i == 0 or in_j == 0:
                continue
            found = ExactOutAllocation(i, j, x, total - x, in_i, in_j)
            if best is None or found.total_in < best.total_in:
                best = found
    return best


def saving_bps(split_net_in: int, single_net_in: int) -> float:
    """An exact-out split's gain over the best single pool in bps: the input it saves, net of
    both transactions' costs, over the single pool's input."""
    if single_net_in <= 0:
        return 0.0
    return round((single_net_in - split_net_in) * 10_000 / single_net_in, 4)


def leg_maximums(quoted: Sequence[int], cap: int) -> list[int]:
    """Each exact-out leg's maximum input for an order that may spend at most `cap` in all (a
    limit order's amountOut / limitPrice): the cap shared in proportion to the legs' quoted
    inputs, rounded down, so the maximums sum to at most `cap`, and none is below its quote
    when the quotes' sum is within the cap."""
    total = sum(quoted)
    if total <= 0:
        return [cap // max(1, len(quoted))] * len(quoted)
    return [cap * q // total for q in quoted]
