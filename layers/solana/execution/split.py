"""Split routes: how much of an exact-input order each pool of the pair gets.

Given each candidate pool's exact quote (`amount_in -> amount_out` as its program computes it,
the venue's own integer math), `best_split` chooses, for every pair of distinct pools, the
integer allocation of the order's amount that maximises the total output: a greedy marginal
allocation in `steps` equal chunks (each chunk to the pool that pays most for it), then refined
with the exact quotes by moving units between the two legs, halving the step down to one unit
while a move pays more. A leg the program would refuse (too small to pay anything, past a price
range) is infeasible and never kept: the allocation falls back to the other pool for it.

More legs (`best_split_legs`, k of the candidates for k = 3..MAX_SPLIT_LEGS): the same greedy
marginal allocation over the k pools (each chunk to the pool whose next chunk pays most), then
refined with the exact quotes by pairwise moves (`step` units from one leg to another while the
total pays more, halving the step down to one unit). An allocation that leaves a leg empty or
paying nothing is not a k-leg split (the smaller split covers it): a leg is kept only if it pays.
The router uses a k-leg split only when it beats the best single pool and the best smaller
split by more than MIN_SPLIT_GAIN_BPS net of each extra leg's compute units.

MAX_SPLIT_LEGS defaults to 2: two swap instructions (a CPMM and a DAMM v2 swap) fit one v0
transaction without an address lookup table (about 1,030 of 1,232 bytes); three are 1,167-1,230
and over with a Token-2022 side, so more than two legs are used only with the wallet's address
lookup table (execution/lookup.py) holding every account of the route, once its extension slot
has passed. Two legs are never on one pool (DAMM v2's rate limiter refuses a second instruction
naming the same pool, and one pool's curve pays the same for the sum).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations, permutations

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


@dataclass(frozen=True)
class Legs:
    """A k-leg allocation: the pools' indexes into the candidates, each one's amount and what it
    pays (every amount and output > 0)."""

    pools: tuple[int, ...]
    amounts: tuple[int, ...]
    outs: tuple[int, ...]

    @property
    def total_out(self) -> int:
        return sum(self.outs)


def _sum(memos: Sequence[_Memo], amounts: Sequence[int]) -> int | None:
    total = 0
    for memo, amount in zip(memos, amounts, strict=True):
        out = memo(amount)
        if out is None:
            return None
        total += out
    return total


def allocate(
    quotes: Sequence[QuoteFn], total: int, steps: int = GREEDY_STEPS
) -> tuple[list[int], int | None]:
    """The amounts for `quotes` (summing to `total`) that maximise the sum of their outputs:
    greedy marginal allocation in `steps` chunks (each to the pool whose next chunk pays most),
    then pairwise moves of `step` units from one pool to another while the exact total pays
    more, the step halved down to one unit. Amounts may be 0 (that pool is not a leg); the
    total is None when no allocation found is feasible."""
    memos = [q if isinstance(q, _Memo) else _Memo(q) for q in quotes]
    chunk = max(1, total // steps)
    amounts = _greedy_k(memos, total, chunk)
    value = _sum(memos, amounts)
    for alone in range(len(memos)):  # one pool alone is always a candidate
        edge = [total if i == alone else 0 for i in range(len(memos))]
        found = _sum(memos, edge)
        if found is not None and (value is None or found > value):
            amounts, value = edge, found
    return _refine_k(memos, amounts, value, max(1, chunk // 2))


def _greedy_k(memos: Sequence[_Memo], total: int, chunk: int) -> list[int]:
    """Each chunk to the pool whose next chunk pays most (the first when none can take it:
    the refinement moves it)."""
    amounts = [0] * len(memos)
    left = total
    while left > 0:
        size = min(chunk, left)
        best_gain: int | None = None
        chosen = 0
        for index, memo in enumerate(memos):
            more = memo(amounts[index] + size)
            if more is None:
                continue
            gain = more - (memo(amounts[index]) or 0)
            if best_gain is None or gain > best_gain:
                best_gain, chosen = gain, index
        amounts[chosen] += size
        left -= size
    return amounts


def _refine_k(
    memos: Sequence[_Memo], amounts: list[int], value: int | None, step: int
) -> tuple[list[int], int | None]:
    """Move `step` units from one leg to another while the exact quotes pay more; halve it
    down to 1."""
    while True:
        moved = False
        for giver, taker in permutations(range(len(memos)), 2):
            if amounts[giver] < step:
                continue
            trial = list(amounts)
            trial[giver] -= step
            trial[taker] += step
            found = _sum(memos, trial)
            if found is not None and (value is None or found > value):
                amounts, value, moved = trial, found, True
        if not moved:
            if step == 1:
                return amounts, value
            step //= 2


def best_split_legs(
    quotes: Sequence[QuoteFn], total: int, legs: int, steps: int = GREEDY_STEPS
) -> Legs | None:
    """The `legs`-leg allocation of `total` with the highest output over every set of `legs`
    distinct candidates, every leg non-empty and paying; None when no set has one. Two legs
    are `best_split` (as the router and the watcher have always used them)."""
    if legs == 2:
        pair = best_split(quotes, total, steps)
        if pair is None:
            return None
        return Legs(
            (pair.first, pair.second),
            (pair.amount_first, pair.amount_second),
            (pair.out_first, pair.out_second),
        )
    memos = [_Memo(q) for q in quotes]
    best: Legs | None = None
    for chosen in combinations(range(len(memos)), legs):
        amounts, value = allocate([memos[i] for i in chosen], total, steps)
        if value is None or any(a == 0 for a in amounts):
            continue
        outs = [memos[i](a) for i, a in zip(chosen, amounts, strict=True)]
        if any(not out for out in outs):
            continue  # a leg paying nothing is not kept: the smaller split covers it
        found = Legs(chosen, tuple(amounts), tuple(int(o or 0) for o in outs))
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


def allocate_pair_exact_out(
    f: InputFn, g: InputFn, total: int, steps: int = GREEDY_STEPS
) -> tuple[int, int]:
    """The output for `f` (the rest from `g`) that minimises f(x) + g(total - x), and that
    total input; (0, g(total)) or (total, f(total)) when one pool alone costs least. Raises
    ValueError when neither pool can pay the whole amount alone nor any split is feasible.

    Least input is most negated input: `allocate_pair` on the negated quotes makes the same
    greedy choices and the same refining moves, each comparison mirrored."""
    x, best = allocate_pair(_negated(f), _negated(g), total, steps)
    return x, -best


def _negated(fn: InputFn) -> QuoteFn:
    def negated(amount: int) -> int | None:
        value = fn(amount)
        return None if value is None else -value

    return negated


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
