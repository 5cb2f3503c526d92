"""Split routes: what the allocation costs per order and what it gains, per order size.

Two kinds of pool pairs, each quoted with the engine's exact venue quotes (the functions the
router hands to `execution.split.best_split`):
- the seeded SOL/USDC pools (a Raydium CPMM and a Meteora DAMM v2 pool, on the local chain's
  ledger, made by the programs' own initialize instructions);
- each of the three real mainnet DAMM v2 pools (../shared/fixtures/damm_v2/, read at the
  clock of the rust-sdk's own quote tests) with a CPMM pool of equal depth (0.25 % fee, created
  on a seeded ledger with the DAMM pool's virtual reserves, L / sqrt(P) and L x sqrt(P)).

Order sizes are 0.1 %, 1 % and 5 % of the smaller pool's input reserve (for pools of one price,
that share of its output reserve). The gain is the split's output over the best single pool's,
in basis points, before the second swap's compute units (about 25k CU: at the engine's floor
price of 1,000 micro-lamports per CU, 25 lamports); the cost is the wall time of
`best_split` with its exact quotes, per order.

Exact out, on the seeded SOL/USDC pools: an order for 0.1 %, 1 % and 5 % of the smaller pool's
USDC reserve, paid in SOL; the gain is the input the best exact-out split
(`best_split_exact_out` over the venues' exact-out quotes) saves against the cheapest single
pool, in basis points, before the second swap's compute units.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from bench.stats import percentiles

BUCKETS = (0.001, 0.01, 0.05)
MIN_SPLIT_GAIN_BPS = 1.0  # the engine's default: a split gaining less is not taken
DAMM_FIXTURES = (
    "3u2BK3ykdjv1hAeGQwAkZMxjb4otV5yvW7g72uviCaZZ",  # MACK/USDC (rust-sdk fixtures)
    "CGPxT5d1uf9a8cKVJuZaJAU76t2EfLGbTmRbfvLLZp5j",  # SOL/USDC (rust-sdk fixtures)
    "pool_account",  # cp-amm's test_layout.rs pool
)
SDK_TIMESTAMP, SDK_SLOT = 1_753_751_761, 356_410_171  # rust-sdk test_quote_exact_in.rs
MAX_RESERVE = 10**16  # the maker holds 10^17 of every mint it makes here

QuoteFn = Any
T = TypeVar("T")


def _ledger_quote(ledger: Any, pool: Pubkey, mint_in: Pubkey, exact_out: bool = False) -> QuoteFn:
    """The pool's quote from the ledger's accounts: input -> output, or with `exact_out` its
    exact-out quote, output -> input."""
    from execution.venues import SYSVAR_CLOCK, VENUES, Clock, PoolNotTradable, VenueError
    from local.chain import market

    found = market.read_pool(ledger, pool)
    keys = [*found.depends_on, *found.mints]
    data = {k: bytes(a.data) for k in keys if (a := ledger.get_account(k)) is not None}
    clock_account = ledger.get_account(SYSVAR_CLOCK)
    clock = Clock.from_account_data(bytes(clock_account.data))
    venue = VENUES[found.venue]

    def fn(amount: int) -> int | None:
        try:
            if exact_out:
                return venue.quote_exact_out(found.state, data, mint_in, amount, clock).amount_in
            return venue.quote(found.state, data, mint_in, amount, clock).amount_out
        except (PoolNotTradable, VenueError):
            return None

    return fn


def _timed(allocate: Callable[[], T], repeats: int) -> tuple[T, list[float]]:
    """`allocate()` run `repeats` times: its last answer and each run's milliseconds."""
    times: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = allocate()
        times.append((time.perf_counter() - started) * 1000)
    return answer, times


def _case_exact_out(
    label: str, fns: list[QuoteFn], reserve_out: int, repeats: int
) -> dict[str, Any]:
    from execution import split

    rows: dict[str, Any] = {}
    for share in BUCKETS:
        amount = max(1, int(reserve_out * share))
        singles = [inp for fn in fns if (inp := fn(amount)) is not None]
        allocation, times = _timed(
            functools.partial(split.best_split_exact_out, fns, amount), repeats
        )
        best = min(singles) if singles else 0
        total = allocation.total_in if allocation is not None else best
        rows[f"{share * 100:g}%"] = {
            "amountOut": amount,
            "bestSingleIn": best,
            "splitIn": total,
            "legs": 2 if allocation is not None else 1,
            "gainBps": round((best - total) * 10_000 / best, 2) if best else 0.0,
            "ms": percentiles(times),
        }
    return {"pair": label, "exactOut": True, "buckets": rows}


def _make_mint(ledger: Any, maker: Keypair, label: str) -> Pubkey:
    from local.chain import seed

    mint = Keypair.from_seed(bytes(f"bench-split-{label}".ljust(32, "_")[:32], "utf-8")).pubkey()
    owner = maker.pubkey()
    for address, data in (
        (mint, seed.pack_mint(6, supply=10**17, authority=owner)),
        (
            get_associated_token_address(owner, mint, TOKEN_PROGRAM_ID),
            seed.pack_token_account(mint, owner, 10**17),
        ),
    ):
        rent = ledger.rent_exempt_minimum(len(data))
        ledger.set_account(address, Account(rent, data, TOKEN_PROGRAM_ID, False, 0))
    return mint


def _equal_cpmm(ledger: Any, label: str, reserve_in: int, reserve_out: int) -> tuple[Any, Pubkey]:
    """A CPMM pool (0.25 %) holding `reserve_in` / `reserve_out`, and its input mint."""
    from solders.compute_budget import set_compute_unit_limit

    from local import pools as builders
    from local.chain import seed

    maker = seed.MARKET_MAKER_KEYPAIR
    mint_in, mint_out = _make_mint(ledger, maker, f"{label}-in"), _make_mint(ledger, maker, label)
    pool_keypair = Keypair.from_seed(bytes(f"bench-pool-{label}".ljust(32, "_")[:32], "utf-8"))
    ix, created = builders.cpmm_initialize(
        maker.pubkey(),
        seed.CPMM_CONFIG_ADDRESSES[0],
        (mint_in, TOKEN_PROGRAM_ID, reserve_in),
        (mint_out, TOKEN_PROGRAM_ID, reserve_out),
        pool_keypair=pool_keypair.pubkey(),
    )
    seed.run(ledger, maker, [set_compute_unit_limit(400_000), ix], pool_keypair)
    ledger.shift_time(2)  # open
    return _ledger_quote(ledger, created.pool, mint_in), mint_in


def _damm_fixture(name: str) -> tuple[QuoteFn, int, int]:
    """The real pool's exact quote selling token A, and its virtual reserves (A, B)."""
    from execution.venues import Clock, PoolNotTradable, VenueError
    from execution.venues import meteora_damm_v2 as damm
    from local.chain.seed import pack_mint
    from local.shared import shared_path

    raw = (shared_path("fixtures", "damm_v2") / f"{name}.bin").read_bytes()
    program = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
    address = (
        Pubkey.from_string("E8zRkDw3UdzRc8qVWmqyQ9MLj7jhgZDHSroYud5t25A7")
        if name == "pool_account"
        else Pubkey.from_string(name)
    )
    state = damm.decode(raw, program, address)
    data = {state.token_a_mint: pack_mint(6), state.token_b_mint: pack_mint(6)}
    clock = Clock(SDK_SLOT, 0, 820, 821, SDK_TIMESTAMP)

    def fn(amount: int) -> int | None:
        try:
            return damm.VENUE.quote(state, data, state.token_a_mint, amount, clock).amount_out
        except (PoolNotTradable, VenueError):
            return None

    reserve_a = state.liquidity // state.sqrt_price
    reserve_b = (state.liquidity * state.sqrt_price) >> 128
    return fn, reserve_a, reserve_b


def _case(label: str, fns: list[QuoteFn], reserve_in: int, repeats: int) -> dict[str, Any]:
    from execution import split

    rows: dict[str, Any] = {}
    for share in BUCKETS:
        amount = max(1, int(reserve_in * share))
        singles = [out for fn in fns if (out := fn(amount)) is not None]
        allocation, times = _timed(functools.partial(split.best_split, fns, amount), repeats)
        best = max(singles) if singles else 0
        total = allocation.total_out if allocation is not None else best
        rows[f"{share * 100:g}%"] = {
            "amountIn": amount,
            "bestSingleOut": best,
            "splitOut": total,
            "legs": 2 if allocation is not None else 1,
            "shareFirst": (
                round(allocation.amount_first / amount, 4) if allocation is not None else None
            ),
            "gainBps": round((total - best) * 10_000 / best, 2) if best else 0.0,
            "ms": percentiles(times),
        }
    return {"pair": label, "buckets": rows}


def measure(repeats: int = 20) -> list[dict[str, Any]]:
    from local.chain import seed
    from local.chain.ledger import Ledger

    ledger = Ledger()
    seed.apply(ledger)
    wsol = Pubkey.from_string("So11111111111111111111111111111111111111112")
    seeded = [_ledger_quote(ledger, seed.POOLS[v], wsol) for v in sorted(seed.POOLS)]
    sol_reserve = min(deposit[0] for deposit in seed.POOL_RESERVES.values())
    cases = [_case("seeded SOL/USDC (CPMM + DAMM v2)", seeded, sol_reserve, repeats)]
    inputs = [
        _ledger_quote(ledger, seed.POOLS[v], wsol, exact_out=True) for v in sorted(seed.POOLS)
    ]
    usdc_reserve = min(deposit[1] for deposit in seed.POOL_RESERVES.values())
    label = "exact out, seeded SOL/USDC (CPMM + DAMM v2)"
    cases.append(_case_exact_out(label, inputs, usdc_reserve, repeats))
    for name in DAMM_FIXTURES:
        fn, reserve_a, reserve_b = _damm_fixture(name)
        scale = max(1, max(reserve_a, reserve_b) // MAX_RESERVE + 1)
        if scale > 1:  # the fixture pool is deeper than the maker holds: compare at its share
            cases.append({"pair": f"DAMM v2 {name[:8]}", "skipped": "deeper than 10^16 units"})
            continue
        cpmm_fn, _ = _equal_cpmm(ledger, name[:8], reserve_a, reserve_b)
        label = f"real DAMM v2 {name[:8]} + CPMM of equal depth"
        cases.append(_case(label, [fn, cpmm_fn], reserve_a, repeats))
    return cases


def rows(cases: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """The bench table's rows: per pair and bucket, the gain and the allocation's cost."""
    out: list[tuple[str, str, str, str]] = []
    for case in cases:
        if "skipped" in case:
            out.append((f"split: {case['pair']}", f"skipped ({case['skipped']})", "", ""))
            continue
        out.append((f"split: {case['pair']}", "", "", ""))
        for bucket, row in case["buckets"].items():
            out.append(
                (
                    f"  order {bucket} of the smaller pool"
                    + (" (output)" if case.get("exactOut") else ""),
                    f"best split +{row['gainBps']} bps"
                    + (" less input than" if case.get("exactOut") else " over")
                    + " the best pool"
                    f" ({'split' if row['gainBps'] > MIN_SPLIT_GAIN_BPS else 'one pool'});"
                    f" allocation p50 {row['ms']['p50']:.2f} ms, p99 {row['ms']['p99']:.2f} ms",
                    "",
                    "",
                )
            )
    return out


if __name__ == "__main__":
    results = measure()
    print(json.dumps(results, indent=1))
    for row in rows(results):
        print(" | ".join(part for part in row if part))
