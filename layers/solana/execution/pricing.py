"""Pricing watched orders against pools read once per tick: the venue math (`execution.venues`)
at one clock, each pool decoded once, each mint read once.

Most watched limit orders wait for a better price than the pools pay now. Before the exact
venue quote, `PoolBook.upper_bound` gives what a pool could pay at most for an amount: the amount
at the pool's spot price, fees, price impact and transfer fees left out. Every one of those only
lowers the output (x*y=k and a concentrated range pay less than the spot rate for any positive
amount: Δout/Δin = √P0·√P1 <= P0 as the price moves against the trade), so an order whose
minimum output is above the bound cannot be met by that pool now and needs no exact quote. The
bound is checked against the exact quotes (tests/unit/test_pricing.py); it only ever saves work,
the decision to trigger is always an exact quote's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey

from engine.config import PoolConfig
from execution.discovery import pool_reserves
from execution.venues import (
    SYSVAR_CLOCK,
    VENUES,
    BadAccount,
    Clock,
    PoolNotTradable,
    Quote,
    VenueError,
    iso_utc,
)
from execution.venues import meteora_damm_v2 as damm
from execution.venues import token_2022 as t22

# Whether a pool can trade at all now does not depend on the amount: remember the answer.
STANDING_REFUSALS = frozenset({"not_open", "disabled", "unsupported_token_extension"})
Q128 = 1 << 128


class PoolBook:
    """The accounts of one tick's read, decoded on demand and kept for the tick."""

    def __init__(self, accounts: dict[Pubkey, Account | None]) -> None:
        self.data = {k: bytes(a.data) for k, a in accounts.items() if a is not None}
        self.owners = {k: a.owner for k, a in accounts.items() if a is not None}
        clock = self.data.get(SYSVAR_CLOCK)
        if clock is None:
            raise BadAccount("the cluster returned no Clock sysvar")
        self.clock = Clock.from_account_data(clock)
        self._states: dict[str, Any | None] = {}
        self._decimals: dict[str, int | None] = {}
        self._refused: dict[tuple[str, str], PoolNotTradable] = {}
        self._rates: dict[tuple[str, str], tuple[int, int] | None] = {}
        self._quotes: dict[tuple[str, str, int], Quote | None] = {}
        self.quotes = 0  # exact venue quotes computed this tick

    def state(self, pool: PoolConfig) -> Any | None:
        """The pool's decoded state; None when it was not read or is no pool of its venue."""
        if pool.address not in self._states:
            key = Pubkey.from_string(pool.address)
            data, owner = self.data.get(key), self.owners.get(key)
            state = None
            if data is not None and owner is not None:
                try:
                    state = VENUES[pool.venue].decode_pool(data, owner, key)
                except VenueError:
                    state = None
            self._states[pool.address] = state
        return self._states[pool.address]

    def decimals(self, mint: str) -> int | None:
        """A mint's decimals as read this tick (None: not read, or not a mint)."""
        if mint not in self._decimals:
            key = Pubkey.from_string(mint)
            data, owner = self.data.get(key), self.owners.get(key)
            decimals = None
            if data is not None and owner is not None:
                try:
                    decimals = t22.read_mint(str(owner), data).decimals
                except BadAccount:
                    decimals = None
            self._decimals[mint] = decimals
        return self._decimals[mint]

    def units(self, mint: str, amount: Decimal) -> int | None:
        """`amount` of `mint` in base units (None: unknown mint, or finer than its decimals)."""
        decimals = self.decimals(mint)
        if decimals is None:
            return None
        scaled = Decimal(amount).scaleb(decimals)
        return int(scaled) if scaled == scaled.to_integral_value() and scaled > 0 else None

    def quote(self, pool: PoolConfig, mint_in: str, units_in: int) -> Quote | None:
        """The venue's exact quote (None: the pool cannot pay anything for it now)."""
        key = (pool.address, mint_in, units_in)
        if key in self._quotes:
            return self._quotes[key]
        quote = None
        state = self.state(pool)
        if state is not None and (pool.address, mint_in) not in self._refused:
            self.quotes += 1
            try:
                quote = VENUES[pool.venue].quote(
                    state, self.data, Pubkey.from_string(mint_in), units_in, self.clock
                )
            except PoolNotTradable as refused:
                if refused.code in STANDING_REFUSALS:
                    self._refused[(pool.address, mint_in)] = refused
            except VenueError:
                quote = None
        self._quotes[key] = quote
        return quote

    def input_for(self, pool: PoolConfig, mint_in: str, units_out: int) -> int | None:
        """The input the venue's exact-out quote takes for exactly `units_out` now (None: the
        pool cannot pay it now)."""
        state = self.state(pool)
        if state is None or (pool.address, mint_in) in self._refused:
            return None
        self.quotes += 1
        try:
            return (
                VENUES[pool.venue]
                .quote_exact_out(
                    state, self.data, Pubkey.from_string(mint_in), units_out, self.clock
                )
                .amount_in
            )
        except (PoolNotTradable, VenueError):
            return None

    def upper_bound(self, pool: PoolConfig, mint_in: str, units_in: int) -> int | None:
        """At most what the pool pays for `units_in` now (the spot rate, nothing taken off);
        None when no bound is known (then only the exact quote can tell)."""
        rate = self._rate(pool, mint_in)
        if rate is None:
            return None
        numerator, denominator = rate
        # Rounded up, plus a unit: the bound may be loose, never low.
        return -(-units_in * numerator // denominator) + 1

    def _rate(self, pool: PoolConfig, mint_in: str) -> tuple[int, int] | None:
        key = (pool.address, mint_in)
        if key not in self._rates:
            self._rates[key] = self._spot(pool, mint_in)
        return self._rates[key]

    def _spot(self, pool: PoolConfig, mint_in: str) -> tuple[int, int] | None:
        """The pool's spot rate for selling `mint_in`, out per in, as (numerator, denominator)."""
        state = self.state(pool)
        if state is None:
            return None
        if (
            pool.venue == "meteora_damm_v2"
            and state.collect_fee_mode != damm.COLLECT_FEE_COMPOUNDING
        ):
            # Concentrated liquidity: the price (token b per token a) is sqrt_price^2 / 2^128.
            squared = state.sqrt_price * state.sqrt_price
            if squared == 0:
                return None
            a_to_b = Pubkey.from_string(mint_in) == state.token_a_mint
            return (squared, Q128) if a_to_b else (Q128, squared)
        try:
            reserves = (
                dict(
                    zip(
                        VENUES[pool.venue].pool_mints(state),
                        damm.reserves_for_layout(state),
                        strict=True,
                    )
                )
                if pool.venue == "meteora_damm_v2"
                else pool_reserves(pool.venue, state, self.data)
            )
        except damm.ProgramFailure:
            return None
        mints = VENUES[pool.venue].pool_mints(state)
        key_in = Pubkey.from_string(mint_in)
        if key_in not in mints:
            return None
        key_out = mints[1] if mints[0] == key_in else mints[0]
        reserve_in, reserve_out = reserves.get(key_in, 0), reserves.get(key_out, 0)
        return (reserve_out, reserve_in) if reserve_in > 0 else None

    def reserve(self, pool: PoolConfig, mint: str) -> int:
        """What the pool holds of `mint` (base units) for its curve; 0 when unknown."""
        state = self.state(pool)
        if state is None:
            return 0
        if pool.venue == "meteora_damm_v2":
            try:
                amounts = damm.reserves_for_layout(state)
            except damm.ProgramFailure:
                return 0
            held = dict(zip(VENUES[pool.venue].pool_mints(state), amounts, strict=True))
        else:
            held = pool_reserves(pool.venue, state, self.data)
        return held.get(Pubkey.from_string(mint), 0)


def opens_at(venue: str, state: Any) -> dict[str, Any]:
    """When the pool opens(ed) for swaps, as its program decides: `opensAt` (a time) or
    `opensAtSlot` (DAMM v2 activation by slot); {} when it was open from the start."""
    if venue == "raydium_cpmm":
        return {"opensAt": iso_utc(state.open_time)} if state.open_time > 0 else {}
    if state.activation_point <= 0:
        return {}
    if state.activation_type == damm.ACTIVATION_BY_TIMESTAMP:
        return {"opensAt": iso_utc(state.activation_point)}
    return {"opensAtSlot": state.activation_point}
