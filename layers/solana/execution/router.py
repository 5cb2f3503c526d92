"""Routing: quote every pool of the pair (as `execution.discovery` lists them) and pick the
best net output.

All pools, their vaults and fee configs, both mints and the Clock sysvar are read in ONE
getMultipleAccounts call, so every pool is quoted at the same slot, timestamp and epoch (open
times, activation points, fee schedulers, volatility decay and Token-2022 transfer fees all read
the clock). The addresses a pool depends on (vaults, config) never change for a pool: the pool
cache hands them over with the pool (`PoolConfig.depends_on`), else they are learnt once per
container, which costs that first quote a second call.

A pool its program would refuse right now (not open yet, disabled, an unmodelled Token-2022
extension, no output, too little liquidity) is never chosen: it appears in the decision's quotes
as `{"venue", "pool", "skipped": code, "message", ...detail}` instead of numbers. So does a pool
holding less of the output token than the operator's floor (MIN_POOL_LIQUIDITY):
`below_min_liquidity`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from solders.account import Account
from solders.pubkey import Pubkey

from engine import observability
from engine.config import PoolConfig
from engine.errors import PermanentChainError
from engine.metrics import Metric
from engine.tokens import WSOL_MINT
from execution import lookup, split
from execution.chain import Chain
from execution.discovery import pool_reserves
from execution.fees import BASE_FEE_LAMPORTS_PER_SIGNATURE, PriorityFees, priority_lamports
from execution.venues import (
    SYSVAR_CLOCK,
    VENUES,
    BadAccount,
    Clock,
    PoolNotTradable,
    SkipCode,
    VenueError,
)
from execution.venues import token_2022 as t22

logger = Logger(child=True)
_dependents: dict[Pubkey, list[Pubkey]] = {}


@dataclass(frozen=True)
class VenueQuote:
    venue: str
    pool: str
    mint_in: str
    mint_out: str
    token_program_in: str
    token_program_out: str
    amount_in_units: int
    amount_out_units: int
    fee_units: int
    price_impact_pct: float
    tx_cost_lamports: int
    net_out_units: int
    decimals_in: int
    decimals_out: int
    transfer_fee_in_units: int = 0  # Token-2022 fees the mints withhold, in each side's units
    transfer_fee_out_units: int = 0
    # Exact out: amount_out_units is the amount asked, amount_in_units the input it takes, and
    # net_in_units that input plus the transaction's cost in input units (the least wins).
    exact_out: bool = False
    net_in_units: int = 0

    def to_json(self, chosen: bool) -> dict[str, Any]:
        if self.exact_out:
            return {
                **self._json(chosen),
                "exactOut": True,
                "quotedAmountIn": _units(self.amount_in_units, self.decimals_in),
                "netInUnits": str(self.net_in_units),
            }
        return self._json(chosen)

    def _json(self, chosen: bool) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "pool": self.pool,
            "mintIn": self.mint_in,
            "mintOut": self.mint_out,
            "tokenProgramIn": self.token_program_in,
            "tokenProgramOut": self.token_program_out,
            "amountInUnits": str(self.amount_in_units),
            "amountOutUnits": str(self.amount_out_units),
            "amountIn": _units(self.amount_in_units, self.decimals_in),
            "amountOut": _units(self.amount_out_units, self.decimals_out),
            "decimalsIn": self.decimals_in,
            "decimalsOut": self.decimals_out,
            "feeUnits": str(self.fee_units),
            "priceImpactPct": round(self.price_impact_pct, 6),
            "txCostLamports": self.tx_cost_lamports,
            "netOutUnits": str(self.net_out_units),
            "transferFeeInUnits": str(self.transfer_fee_in_units),
            "transferFeeOutUnits": str(self.transfer_fee_out_units),
            "chosen": chosen,
        }


def _units(value: int, decimals: int) -> str:
    return format(Decimal(value).scaleb(-decimals).normalize(), "f")


@dataclass(frozen=True)
class SkippedPool:
    """A configured pool of the pair that its program would refuse now (never chosen)."""

    venue: str
    pool: str
    code: SkipCode
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.detail,
            "venue": self.venue,
            "pool": self.pool,
            "skipped": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class Route:
    """What the order executes: one leg (the best single pool) or a split over two pools, each
    leg a swap instruction in one transaction, quoted at its own amount. `net_out_units` is the
    total output net of the transaction's cost (its compute units at the order's priority
    price); `gain_bps` the split's net gain over the best single pool (0 for one leg)."""

    legs: tuple[VenueQuote, ...]
    net_out_units: int
    gain_bps: float = 0.0
    vaults_out: tuple[str, ...] = ()  # each leg's pool vault of the output token
    # Exact out: each leg's pool vault of the input token (a leg's realized input is what
    # entered it) and the total input net of the transaction's cost in input units.
    vaults_in: tuple[str, ...] = ()
    net_in_units: int = 0
    lookup_table: str | None = None  # the wallet's table a route of more than two legs uses

    @property
    def amount_out_units(self) -> int:
        return sum(leg.amount_out_units for leg in self.legs)

    @property
    def price_impact_pct(self) -> float:
        total = sum(leg.amount_in_units for leg in self.legs)
        if total == 0:
            return 0.0
        return sum(leg.price_impact_pct * leg.amount_in_units for leg in self.legs) / total

    def to_json(self, min_outs: Sequence[int] | None = None) -> dict[str, Any]:
        """The `route` object: `{legs: [{venue, pool, amountIn, quotedAmountOut, minAmountOut,
        feeAmount, priceImpactPct, ...}], amountOut, otherAmountThreshold, priceImpactPct,
        gainBps}` (amounts in token units; `...Units` in base units)."""
        first = self.legs[0]
        legs: list[dict[str, Any]] = []
        for index, leg in enumerate(self.legs):
            item = {
                "venue": leg.venue,
                "pool": leg.pool,
                "mintIn": leg.mint_in,
                "mintOut": leg.mint_out,
                "tokenProgramIn": leg.token_program_in,
                "tokenProgramOut": leg.token_program_out,
                "amountIn": _units(leg.amount_in_units, leg.decimals_in),
                "amountInUnits": str(leg.amount_in_units),
                "quotedAmountOut": _units(leg.amount_out_units, leg.decimals_out),
                "quotedAmountOutUnits": str(leg.amount_out_units),
                "feeAmount": _units(leg.fee_units, leg.decimals_in),
                "priceImpactPct": round(leg.price_impact_pct, 6),
            }
            if leg.exact_out:
                item["exactOut"] = True
                item["quotedAmountIn"] = item["amountIn"]
                item["quotedAmountInUnits"] = item["amountInUnits"]
            if index < len(self.vaults_out):
                item["vaultOut"] = self.vaults_out[index]
            if leg.exact_out and index < len(self.vaults_in):
                item["vaultIn"] = self.vaults_in[index]
            if min_outs is not None:
                item["minAmountOut"] = _units(min_outs[index], leg.decimals_out)
                item["minAmountOutUnits"] = str(min_outs[index])
            legs.append(item)
        out: dict[str, Any] = {
            "legs": legs,
            "amountOut": _units(self.amount_out_units, first.decimals_out),
            "amountOutUnits": str(self.amount_out_units),
            "priceImpactPct": round(self.price_impact_pct, 6),
            "gainBps": self.gain_bps,
            "decimalsIn": first.decimals_in,
            "decimalsOut": first.decimals_out,
        }
        if min_outs is not None:
            out["otherAmountThreshold"] = _units(sum(min_outs), first.decimals_out)
        if self.lookup_table is not None:
            out["lookupTable"] = self.lookup_table
        if first.exact_out:
            quoted_in = sum(leg.amount_in_units for leg in self.legs)
            out["exactOut"] = True
            out["quotedAmountIn"] = _units(quoted_in, first.decimals_in)
            out["quotedAmountInUnits"] = str(quoted_in)
        return out


@dataclass(frozen=True)
class Decision:
    quotes: list[VenueQuote]
    best: VenueQuote
    skipped: list[SkippedPool] = field(default_factory=list)
    clock: Clock | None = None
    # The decoded pool states the quotes were computed from (pool address -> state), so the
    # swap can be built from the very state that was quoted without reading the pool again.
    states: dict[str, Any] = field(default_factory=dict)
    # The compute-unit price the costs were ranked with (and the swap will pay).
    priority_fee_micro_lamports: int = 0
    # The best split over two pools (whether or not it beat the best single pool) and the
    # route the order executes: the split when it gains more than MIN_SPLIT_GAIN_BPS, else
    # the best single pool.
    split: Route | None = None
    chosen_route: Route | None = None
    # The wallet's lookup table as the quotes read it (None: no table, or MAX_SPLIT_LEGS 2),
    # and the addresses it lacks for a longer route that would have paid more than the one
    # chosen (the engine extends the table with them: execution/lookup.py).
    lookup_table: lookup.Table | None = None
    lookup_missing: tuple[Pubkey, ...] = ()

    @property
    def route(self) -> Route:
        if self.chosen_route is not None:
            return self.chosen_route
        return Route(
            (self.best,),
            self.best.net_out_units,
            0.0,
            self._vaults((self.best,)),
            self._vaults((self.best,), inputs=True) if self.best.exact_out else (),
            self.best.net_in_units,
        )

    def _vaults(self, legs: Sequence[VenueQuote], inputs: bool = False) -> tuple[str, ...]:
        found = [
            vault_out(self.states.get(leg.pool), leg.mint_in if inputs else leg.mint_out)
            for leg in legs
        ]
        return tuple(v for v in found if v is not None)

    def quotes_json(self) -> list[dict[str, Any]]:
        """Every pool of the pair: the quoted ones with numbers, then the skipped ones."""
        return [q.to_json(q is self.best) for q in self.quotes] + [
            s.to_json() for s in self.skipped
        ]


def tx_cost_lamports(compute_units: int, priority_fee_micro_lamports: int) -> int:
    return BASE_FEE_LAMPORTS_PER_SIGNATURE + priority_lamports(
        compute_units, priority_fee_micro_lamports
    )


def _cost_in_out_token(
    lamports: int, mint_in: str, mint_out: str, amount_in: int, amount_out: int
) -> int:
    """The transaction's cost in units of the output token, so venues compare net of it."""
    if mint_out == WSOL_MINT:
        return lamports
    if mint_in == WSOL_MINT and amount_in > 0:
        return lamports * amount_out // amount_in
    return 0  # neither side is SOL: the cost is not in either token; it only breaks ties


async def _read(
    chain: Chain, pools: Sequence[PoolConfig], mints: list[Pubkey], extra: Sequence[Pubkey] = ()
) -> dict[Pubkey, Account | None]:
    pool_keys = [Pubkey.from_string(p.address) for p in pools]
    for cfg, pk in zip(pools, pool_keys, strict=True):
        if pk not in _dependents and cfg.depends_on:
            _dependents[pk] = [Pubkey.from_string(k) for k in cfg.depends_on]
    deps = [k for pk in pool_keys for k in _dependents.get(pk, [])]
    keys = list(dict.fromkeys([*pool_keys, *deps, *mints, SYSVAR_CLOCK, *extra]))
    accounts = await chain.accounts(keys)
    missing: list[Pubkey] = []
    for cfg, pk in zip(pools, pool_keys, strict=True):
        account = accounts.get(pk)
        if account is None:
            continue
        venue = VENUES[cfg.venue]
        try:
            state = venue.decode_pool(bytes(account.data), account.owner, pk)
        except VenueError:
            continue  # not a pool of this venue: quote_all_venues says so
        needed = venue.dependent_accounts(state)
        if _dependents.get(pk) != needed:
            _dependents[pk] = needed
            missing.extend(k for k in needed if k not in accounts)
    if missing:  # cold start (or a pool changed its vaults): learn them with one more call
        accounts.update(await chain.accounts(list(dict.fromkeys(missing))))
    return accounts


async def quote_all_venues(
    chain: Chain,
    pools: Sequence[PoolConfig],
    *,
    mint_in: str,
    mint_out: str,
    amount_in: Decimal,
    priority_fee: int | PriorityFees,
    min_liquidity: Decimal = Decimal(0),
    max_split_legs: int = split.MAX_SPLIT_LEGS,
    min_split_gain_bps: float = split.MIN_SPLIT_GAIN_BPS,
    lookup_table: Pubkey | None = None,
) -> Decision:
    """Quote `amount_in` of `mint_in` on every pool of `pools` that trades the pair, at the
    cluster's current clock, in one getMultipleAccounts round trip once the pools' accounts are
    known, net of the transaction's cost at `priority_fee` (a price in micro-lamports per CU,
    or the oracle that prices it over every candidate pool's accounts: at most one more call,
    none while its answer is cached). A pool holding less than `min_liquidity` of the output
    token (in token units) is skipped as `below_min_liquidity`.

    Raises PermanentChainError: `unknown_mint` (a mint does not exist), `invalid_amount` (more
    decimals than the mint has), `invalid_account` (no Clock sysvar), `amount_too_small`
    (every pool of the pair would pay nothing), `no_route` (no pool of the pair can trade now;
    the message lists each pool's reason).

    With `max_split_legs` 2, the best split of the amount over two of the quoted pools
    (execution/split.py) is the route when its output net of the transaction's cost beats the
    best single pool's by more than `min_split_gain_bps`.

    With `max_split_legs` 3 or 4 and the wallet's `lookup_table` (read in the same call), a
    route of k legs is the route when it beats the best route of fewer legs by more than
    `min_split_gain_bps` net of the extra swaps' cost, and only when the table holds every pool
    account of the route and the clock's slot is past its last extension; otherwise the route
    has at most two legs and `Decision.lookup_missing` names what the table lacks."""
    mints = [Pubkey.from_string(mint_in), Pubkey.from_string(mint_out)]
    extra = [lookup_table] if lookup_table is not None and max_split_legs > 2 else []
    accounts = await _read(chain, pools, mints, extra)
    pair = _Pair.read(accounts, mints, amount_in)
    price = (
        priority_fee
        if isinstance(priority_fee, int)
        else await priority_fee.price(fee_accounts(pools))
    )
    data = {k: bytes(a.data) for k, a in accounts.items() if a is not None}

    def quote(cfg: PoolConfig, account: Account) -> tuple[VenueQuote, Any] | None:
        return _quote_pool(cfg, account, data, pair, price)

    quotes, states, skipped = _quote_each(pools, accounts, data, pair, min_liquidity, quote)
    best = max(quotes, key=lambda q: q.net_out_units)
    found = None
    if max_split_legs >= 2 and len(quotes) >= 2:
        found = _best_split(pools, accounts, data, pair, price, quotes, best)
    chosen = found if found is not None and found.gain_bps > min_split_gain_bps else None
    table = None
    missing: list[Pubkey] = []
    if extra and (table_account := accounts.get(extra[0])) is not None:
        table = lookup.Table.decode(extra[0], bytes(table_account.data))
    for legs in range(3, min(max_split_legs, len(quotes)) + 1):
        longer = _best_split(pools, accounts, data, pair, price, quotes, best, legs)
        shorter = max(r.net_out_units for r in (best, found, chosen) if r is not None)
        if longer is None or split.gain_bps(longer.net_out_units, shorter) <= min_split_gain_bps:
            continue
        needed = lookup.route_addresses(
            (leg.venue, states[leg.pool], pair.mint_in) for leg in longer.legs
        )
        lacking = table.missing(needed) if table is not None else needed
        if table is None or lacking or not table.usable_at(pair.clock.slot):
            missing.extend(lacking)
            break  # this time at most the legs the table allows
        chosen = dataclasses.replace(longer, lookup_table=str(table.address))
    return Decision(
        quotes,
        best,
        skipped,
        pair.clock,
        states,
        price,
        found,
        chosen,
        table,
        tuple(dict.fromkeys(missing)),
    )


QuotePool = Callable[[PoolConfig, Account], "tuple[VenueQuote, Any] | None"]


def _quote_each(
    pools: Sequence[PoolConfig],
    accounts: dict[Pubkey, Account | None],
    data: dict[Pubkey, bytes],
    pair: _Pair,
    min_liquidity: Decimal,
    quote_pool: QuotePool,
) -> tuple[list[VenueQuote], dict[str, Any], list[SkippedPool]]:
    """Every pool's quote (`quote_pool`) and decoded state, the pools its program would refuse
    now as skipped; PermanentChainError (`no_route`, `amount_too_small`) when none quotes."""
    quotes: list[VenueQuote] = []
    states: dict[str, Any] = {}
    skipped: list[SkippedPool] = []
    unusable: list[str] = []  # listed for the pair but not readable as a pool
    for cfg in pools:
        account = accounts.get(Pubkey.from_string(cfg.address))
        if account is None:  # closed since it was found, or listed for another cluster
            unusable.append(f"{cfg.address}: no account on this cluster")
            continue
        try:
            quote = quote_pool(cfg, account)
            if quote is not None:
                _check_floor(cfg, account, data, pair, min_liquidity)
        except PoolNotTradable as exc:
            logger.info(
                "pool skipped", extra={"pool": cfg.address, "code": exc.code, "reason": str(exc)}
            )
            observability.count_by(Metric.QUOTES_SKIPPED, "reason", exc.code)
            skipped.append(SkippedPool(cfg.venue, cfg.address, exc.code, exc.message, exc.detail))
        except VenueError as exc:  # configured as this venue but not readable as its pool
            logger.warning("pool unusable", extra={"pool": cfg.address, "reason": str(exc)})
            observability.count_by(Metric.QUOTES_SKIPPED, "reason", "unusable")
            unusable.append(f"{cfg.address}: {exc}")
        else:
            if quote is not None:
                quotes.append(quote[0])
                states[cfg.address] = quote[1]
    if not quotes:
        raise _no_route(skipped, unusable)
    return quotes, states, skipped


async def quote_exact_out_all(
    chain: Chain,
    pools: Sequence[PoolConfig],
    *,
    mint_in: str,
    mint_out: str,
    amount_out: Decimal,
    priority_fee: int | PriorityFees,
    min_liquidity: Decimal = Decimal(0),
    max_split_legs: int = split.MAX_SPLIT_LEGS,
    min_split_gain_bps: float = split.MIN_SPLIT_GAIN_BPS,
) -> Decision:
    """Exact out: the input each pool of `pools` takes for exactly `amount_out` of `mint_out`
    (the programs' inverse math: `swap_base_output`, `swap2` ExactOut), read as
    quote_all_venues reads, and the pool needing the least input net of the transaction's
    cost; the best split of the output over two pools (each leg its own exact-out swap), chosen
    when it needs less input than that pool by more than `min_split_gain_bps` net of the
    second swap's cost. Raises as quote_all_venues does; `invalid_amount` when amountOut has
    more decimal places than the output mint."""
    mints = [Pubkey.from_string(mint_in), Pubkey.from_string(mint_out)]
    accounts = await _read(chain, pools, mints)
    pair = _Pair.read(accounts, mints, Decimal(0))
    scaled = Decimal(amount_out).scaleb(pair.decimals_out)
    if scaled != scaled.to_integral_value():
        raise PermanentChainError(
            f"amountOut has more decimal places than the mint's {pair.decimals_out}",
            "invalid_amount",
        )
    price = (
        priority_fee
        if isinstance(priority_fee, int)
        else await priority_fee.price(fee_accounts(pools))
    )
    data = {k: bytes(a.data) for k, a in accounts.items() if a is not None}

    def quote(cfg: PoolConfig, account: Account) -> tuple[VenueQuote, Any] | None:
        return _quote_pool_exact_out(cfg, account, data, pair, price, int(scaled))

    quotes, states, skipped = _quote_each(pools, accounts, data, pair, min_liquidity, quote)
    best = min(quotes, key=lambda q: q.net_in_units)
    found = None
    if max_split_legs >= 2 and len(quotes) >= 2:
        found = _best_split_exact_out(pools, accounts, data, pair, price, quotes, best)
    chosen = found if found is not None and found.gain_bps > min_split_gain_bps else None
    return Decision(quotes, best, skipped, pair.clock, states, price, found, chosen)


def _quote_pool_exact_out(
    cfg: PoolConfig,
    account: Account,
    data: dict[Pubkey, bytes],
    pair: _Pair,
    priority_fee_micro_lamports: int,
    units_out: int,
) -> tuple[VenueQuote, Any] | None:
    """The pool's exact-out quote for `units_out`, with the transaction's cost in input units
    (`net_in_units`), and its decoded state; None when it is not a pool of the pair."""
    venue = VENUES[cfg.venue]
    state = venue.decode_pool(bytes(account.data), account.owner, Pubkey.from_string(cfg.address))
    if set(venue.pool_mints(state)) != {pair.mint_in, pair.mint_out}:
        return None
    q = venue.quote_exact_out(state, data, pair.mint_in, units_out, pair.clock)
    try:  # the curve's impact for that input, as its exact-in quote states it
        impact = venue.quote(state, data, pair.mint_in, q.amount_in, pair.clock).price_impact_pct
    except (PoolNotTradable, VenueError):
        impact = 0.0
    mint_in, mint_out = str(pair.mint_in), str(pair.mint_out)
    cost = tx_cost_lamports(venue.compute_units, priority_fee_micro_lamports)
    cost_in = _cost_in_in_token(cost, mint_in, mint_out, q.amount_in, units_out)
    quote = VenueQuote(
        cfg.venue,
        cfg.address,
        mint_in,
        mint_out,
        pair.program_in,
        pair.program_out,
        q.amount_in,
        units_out,
        q.fee_amount,
        float(impact),
        cost,
        units_out,
        pair.decimals_in,
        pair.decimals_out,
        q.transfer_fee_in,
        q.transfer_fee_out,
        exact_out=True,
        net_in_units=q.amount_in + cost_in,
    )
    return quote, state


def vault_out(state: Any, mint_out: str) -> str | None:
    """The pool's vault of `mint_out` (a leg's realized output is what left it; given the
    input mint, an exact-out leg's realized input is what entered that vault)."""
    for mint_field, vault_field in (
        ("token_0_mint", "token_0_vault"),
        ("token_1_mint", "token_1_vault"),
        ("token_a_mint", "token_a_vault"),
        ("token_b_mint", "token_b_vault"),
    ):
        if str(getattr(state, mint_field, "")) == mint_out:
            return str(getattr(state, vault_field))
    return None


def _best_split(
    pools: Sequence[PoolConfig],
    accounts: dict[Pubkey, Account | None],
    data: dict[Pubkey, bytes],
    pair: _Pair,
    price: int,
    quotes: list[VenueQuote],
    best: VenueQuote,
    legs_wanted: int = 2,
) -> Route | None:
    """The best route of `legs_wanted` legs over the quoted pools, net of the one transaction's
    cost (every swap's compute units at `price`), with its gain over `best` in bps; None when
    no split with that many non-empty, paying legs is feasible."""
    by_pool = {cfg.address: cfg for cfg in pools}
    # The pools paying most for the whole amount: every pair of them is allocated (6 pairs of
    # 4), not every pair of up to MAX_POOLS_PER_PAIR pools (45 of 10).
    ranked = sorted(quotes, key=lambda q: q.net_out_units, reverse=True)
    candidates = [q for q in ranked if q.pool in by_pool][: split.SPLIT_CANDIDATES]

    def quote_fn(q: VenueQuote) -> split.QuoteFn:
        cfg = by_pool[q.pool]
        account = accounts[Pubkey.from_string(cfg.address)]
        assert account is not None
        venue = VENUES[cfg.venue]
        state = venue.decode_pool(bytes(account.data), account.owner, Pubkey.from_string(q.pool))

        def fn(amount: int) -> int | None:
            try:
                return venue.quote(state, data, pair.mint_in, amount, pair.clock).amount_out
            except (PoolNotTradable, VenueError):
                return None

        return fn

    allocation = split.best_split_legs(
        [quote_fn(q) for q in candidates], pair.units_in, legs_wanted
    )
    if allocation is None:
        return None
    legs: list[VenueQuote] = []
    states: list[Any] = []
    for index, amount in zip(allocation.pools, allocation.amounts, strict=True):
        cfg = by_pool[candidates[index].pool]
        account = accounts[Pubkey.from_string(cfg.address)]
        assert account is not None
        quoted = _quote_pool(cfg, account, data, pair, price, amount)
        assert quoted is not None
        legs.append(quoted[0])
        states.append(quoted[1])
    by_address = {leg.pool: st for leg, st in zip(legs, states, strict=True)}
    legs.sort(key=lambda leg: leg.amount_in_units, reverse=True)
    units = sum(VENUES[leg.venue].compute_units for leg in legs)
    cost = tx_cost_lamports(units, price)
    total_out = sum(leg.amount_out_units for leg in legs)
    net = total_out - _cost_in_out_token(
        cost, str(pair.mint_in), str(pair.mint_out), pair.units_in, total_out
    )
    vaults = tuple(
        v for leg in legs if (v := vault_out(by_address.get(leg.pool), leg.mint_out)) is not None
    )
    return Route(tuple(legs), net, split.gain_bps(net, best.net_out_units), vaults)


def _best_split_exact_out(
    pools: Sequence[PoolConfig],
    accounts: dict[Pubkey, Account | None],
    data: dict[Pubkey, bytes],
    pair: _Pair,
    price: int,
    quotes: list[VenueQuote],
    best: VenueQuote,
) -> Route | None:
    """The best two-leg exact-out route over the quoted pools: the output shared so the total
    input, plus the one transaction's cost (both swaps' compute units at `price`) in input
    units, is least; its gain is the input saved against `best` in bps. None when no split
    with two non-empty legs is feasible."""
    by_pool = {cfg.address: cfg for cfg in pools}
    ranked = sorted(quotes, key=lambda q: q.net_in_units)
    candidates = [q for q in ranked if q.pool in by_pool][: split.SPLIT_CANDIDATES]
    units_out = best.amount_out_units

    def input_fn(q: VenueQuote) -> split.InputFn:
        cfg = by_pool[q.pool]
        account = accounts[Pubkey.from_string(cfg.address)]
        assert account is not None
        venue = VENUES[cfg.venue]
        state = venue.decode_pool(bytes(account.data), account.owner, Pubkey.from_string(q.pool))

        def fn(amount: int) -> int | None:
            try:
                return venue.quote_exact_out(
                    state, data, pair.mint_in, amount, pair.clock
                ).amount_in
            except (PoolNotTradable, VenueError):
                return None

        return fn

    allocation = split.best_split_exact_out([input_fn(q) for q in candidates], units_out)
    if allocation is None:
        return None
    legs: list[VenueQuote] = []
    states: list[Any] = []
    for index, amount in (
        (allocation.first, allocation.out_first),
        (allocation.second, allocation.out_second),
    ):
        cfg = by_pool[candidates[index].pool]
        account = accounts[Pubkey.from_string(cfg.address)]
        assert account is not None
        quoted = _quote_pool_exact_out(cfg, account, data, pair, price, amount)
        assert quoted is not None
        legs.append(quoted[0])
        states.append(quoted[1])
    legs.sort(key=lambda leg: leg.amount_in_units, reverse=True)
    units = sum(VENUES[leg.venue].compute_units for leg in legs)
    cost = tx_cost_lamports(units, price)
    total_in = sum(leg.amount_in_units for leg in legs)
    net_in = total_in + _cost_in_in_token(
        cost, str(pair.mint_in), str(pair.mint_out), total_in, units_out
    )
    by_address = {leg.pool: st for leg, st in zip(legs, states, strict=False)}
    vaults_out = tuple(
        v for leg in legs if (v := vault_out(by_address.get(leg.pool), leg.mint_out)) is not None
    )
    vaults_in = tuple(
        v for leg in legs if (v := vault_out(by_address.get(leg.pool), leg.mint_in)) is not None
    )
    gain = split.saving_bps(net_in, best.net_in_units)
    return Route(tuple(legs), units_out, gain, vaults_out, vaults_in, net_in)


def _cost_in_in_token(
    lamports: int, mint_in: str, mint_out: str, amount_in: int, amount_out: int
) -> int:
    """The transaction's cost in units of the input token (exact out: the least input wins)."""
    if mint_in == WSOL_MINT:
        return lamports
    if mint_out == WSOL_MINT and amount_out > 0:
        return lamports * amount_in // amount_out
    return 0  # neither side is SOL: the cost is not in either token; it only breaks ties


def fee_accounts(pools: Sequence[PoolConfig]) -> list[Pubkey]:
    """The accounts whose recent fees price a swap on any of `pools`: each pool and the
    accounts it depends on (vaults, config), as learnt by the read."""
    keys = [Pubkey.from_string(cfg.address) for cfg in pools]
    return list(dict.fromkeys([*keys, *(k for pk in keys for k in _dependents.get(pk, []))]))


@dataclass(frozen=True)
class _Pair:
    """What every pool's quote shares: the two mints as the chain has them, the clock, and the
    amount in base units."""

    mint_in: Pubkey
    mint_out: Pubkey
    decimals_in: int
    decimals_out: int
    program_in: str
    program_out: str
    units_in: int
    clock: Clock

    @classmethod
    def read(
        cls, accounts: dict[Pubkey, Account | None], mints: list[Pubkey], amount_in: Decimal
    ) -> _Pair:
        (dec_in, program_in), (dec_out, program_out) = (
            _read_mint(side, mint, accounts.get(mint))
            for side, mint in zip(("tokenIn", "tokenOut"), mints, strict=True)
        )
        clock_account = accounts.get(SYSVAR_CLOCK)
        if clock_account is None:
            raise PermanentChainError("the cluster returned no Clock sysvar", "invalid_account")
        scaled = Decimal(amount_in).scaleb(dec_in)
        if scaled != scaled.to_integral_value():
            raise PermanentChainError(
                f"amountIn has more decimal places than the mint's {dec_in}", "invalid_amount"
            )
        return cls(
            mints[0],
            mints[1],
            dec_in,
            dec_out,
            program_in,
            program_out,
            int(scaled),
            Clock.from_account_data(bytes(clock_account.data)),
        )


def _read_mint(side: str, mint: Pubkey, account: Account | None) -> tuple[int, str]:
    """A mint's decimals and token program, checked as a mint first: `unknown_mint` when no
    account is there, `invalid_account` when the account is something else (never read as a
    mint)."""
    if account is None:
        raise PermanentChainError(
            f"{side} {mint} does not exist on this cluster (no account)", "unknown_mint"
        )
    try:
        info = t22.read_mint(str(account.owner), bytes(account.data))
    except BadAccount as exc:
        raise PermanentChainError(
            f"{side} {mint} is not a token mint: {exc}", "invalid_account"
        ) from None
    return info.decimals, str(account.owner)


def _quote_pool(
    cfg: PoolConfig,
    account: Account,
    data: dict[Pubkey, bytes],
    pair: _Pair,
    priority_fee_micro_lamports: int,
    units_in: int | None = None,
) -> tuple[VenueQuote, Any] | None:
    """The pool's quote for the order's amount (or `units_in`, a split's leg), net of the
    transaction's cost, and its decoded state; None when it is not a pool of the pair. Raises
    PoolNotTradable or VenueError."""
    amount = pair.units_in if units_in is None else units_in
    venue = VENUES[cfg.venue]
    state = venue.decode_pool(bytes(account.data), account.owner, Pubkey.from_string(cfg.address))
    if set(venue.pool_mints(state)) != {pair.mint_in, pair.mint_out}:
        return None
    q = venue.quote(state, data, pair.mint_in, amount, pair.clock)
    mint_in, mint_out = str(pair.mint_in), str(pair.mint_out)
    cost = tx_cost_lamports(venue.compute_units, priority_fee_micro_lamports)
    net = q.amount_out - _cost_in_out_token(cost, mint_in, mint_out, amount, q.amount_out)
    quote = VenueQuote(
        cfg.venue,
        cfg.address,
        mint_in,
        mint_out,
        pair.program_in,
        pair.program_out,
        amount,
        q.amount_out,
        q.fee_amount,
        float(q.price_impact_pct),
        cost,
        net,
        pair.decimals_in,
        pair.decimals_out,
        q.transfer_fee_in,
        q.transfer_fee_out,
    )
    return quote, state


def _check_floor(
    cfg: PoolConfig, account: Account, data: dict[Pubkey, bytes], pair: _Pair, floor: Decimal
) -> None:
    """PoolNotTradable(`below_min_liquidity`) when the pool holds less than `floor` (token
    units) of the output token now: anyone can create a pool, and a thin one is a trap."""
    if floor <= 0:
        return
    venue = VENUES[cfg.venue]
    state = venue.decode_pool(bytes(account.data), account.owner, Pubkey.from_string(cfg.address))
    held = pool_reserves(cfg.venue, state, data).get(pair.mint_out, 0)
    if held < floor.scaleb(pair.decimals_out):
        shown = _units(held, pair.decimals_out)
        raise PoolNotTradable(
            "below_min_liquidity",
            f"pool {cfg.address} holds {shown} of the output token, below the engine's"
            f" MIN_POOL_LIQUIDITY of {format(floor.normalize(), 'f')}",
            reserveOut=shown,
            minLiquidity=format(floor.normalize(), "f"),
        )


def _no_route(skipped: list[SkippedPool], unusable: list[str]) -> PermanentChainError:
    """Why no pool could quote: every pool too small to pay anything, or each pool's reason."""
    if skipped and all(s.code == "no_output" for s in skipped):
        return PermanentChainError("the order is too small to buy anything", "amount_too_small")
    reasons = [f"{s.venue} {s.pool}: {s.code} ({s.message})" for s in skipped] + unusable
    if reasons:
        return PermanentChainError(
            "no pool can trade this pair now: " + "; ".join(reasons), "no_route"
        )
    venues = " or ".join(VENUES)
    return PermanentChainError(f"no pool of {venues} trades this pair here", "no_route")
