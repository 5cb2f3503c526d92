"""DEX venues the router can quote and the builder can swap on.

Each venue decodes a pool account into a state object, names the extra accounts its quote reads,
quotes an exact-input swap with the program's own integer math at a given cluster clock, and
builds the program's swap instruction. The program id always comes from the pool account's
owner, so one code path serves devnet, mainnet and the local chain.

Errors (who raises what):
- `VenueError` and its subclasses: the input is not what the venue expected. `NotAPool` (the
  account is not a pool of this venue), `MintNotInPool` (the order's mint is not one of the
  pool's), `MissingAccount` (an account the quote needs was not read), `BadAccount` (an account
  the quote reads, such as a mint or a vault, cannot be decoded).
- `PoolNotTradable`: the account is a pool of this venue, but the program would refuse this swap
  now (not open yet, disabled, a Token-2022 extension the engine does not model, no output, not
  enough liquidity). `code` is one of `SKIP_CODES` and `detail` says more (`opensAt`,
  `extension`, the program's own error name).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from engine.errors import EngineError

SYSVAR_CLOCK = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
CLOCK_LEN = 40

SkipCode = Literal[
    "not_open", "disabled", "unsupported_token_extension", "no_output", "below_min_liquidity"
]
SKIP_CODES: tuple[SkipCode, ...] = get_args(SkipCode)


class VenueError(EngineError):
    """The venue cannot read what it was given (base of the venue's input errors)."""

    code = "invalid_account"


class NotAPool(VenueError):
    """The account is not a pool of this venue (wrong owner layout, length or discriminator)."""


class MintNotInPool(VenueError):
    """The mint asked for is neither of the pool's mints."""


class MissingAccount(VenueError):
    """An account the quote needs was not among those read."""


class BadAccount(VenueError):
    """An account the quote reads (config, vault, mint, clock) cannot be decoded."""


class InvalidAmount(VenueError):
    """The amount is not one a swap instruction can carry (a u64 greater than zero)."""


class PoolNotTradable(EngineError):
    """The pool exists but its program would refuse this swap now.

    `code`: `not_open` (detail `opensAt`, ISO-8601 UTC), `disabled`,
    `unsupported_token_extension` (detail `extension`, the extension's name), `no_output`,
    `below_min_liquidity`. `detail` may also carry `programError` (the program's own error name
    that the swap would fail with)."""

    def __init__(self, code: SkipCode, message: str, **detail: Any) -> None:
        super().__init__(message, code=code)
        self.code: SkipCode = code
        self.detail: dict[str, Any] = detail


def iso_utc(unix_timestamp: int) -> str:
    """ISO-8601 UTC, seconds precision, `Z` suffix (what `opensAt` carries)."""
    moment = datetime.fromtimestamp(max(unix_timestamp, 0), tz=UTC)
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Clock:
    """The cluster's Clock sysvar (`SysvarC1ock11111111111111111111111111111111`): what
    `Clock::get()` returns to a program in the slot that executes the transaction."""

    slot: int
    epoch_start_timestamp: int
    epoch: int
    leader_schedule_epoch: int
    unix_timestamp: int

    @classmethod
    def from_account_data(cls, data: bytes) -> Clock:
        """Decode the sysvar account's 40 bytes: u64 slot, i64 epoch_start_timestamp, u64 epoch,
        u64 leader_schedule_epoch, i64 unix_timestamp (solana-clock's `Clock`, bincode)."""
        if len(data) < CLOCK_LEN:
            raise BadAccount(f"the Clock sysvar holds {len(data)} bytes, not {CLOCK_LEN}")
        slot, start, epoch, leader_epoch, now = struct.unpack_from("<QqQQq", data, 0)
        return cls(slot, start, epoch, leader_epoch, now)


@dataclass(frozen=True)
class Quote:
    amount_out: int  # what the user's output account receives (output transfer fee deducted)
    fee_amount: int  # the pool's trade fee (creator fee included), in input-token base units
    price_impact_pct: float  # curve impact against the spot price, fees excluded, in percent
    # Token-2022 transfer fees withheld by the mints, in each side's own units.
    transfer_fee_in: int = 0
    transfer_fee_out: int = 0
    notes: dict[str, Any] = field(default_factory=dict)  # e.g. the fee numerator applied


@dataclass(frozen=True)
class ExactOutQuote:
    """What an exact-out swap (CPMM `swap_base_output`, DAMM v2 `swap2` ExactOut) takes and
    pays."""

    amount_in: int  # what leaves the user's input account (its transfer fee included)
    amount_out: int  # what reaches the user's output account: exactly the amount asked
    fee_amount: int  # the pool's trade fee in input units
    transfer_fee_in: int = 0
    transfer_fee_out: int = 0


class Venue(Protocol):
    compute_units: int

    def decode_pool(self, data: bytes, owner: Pubkey, address: Pubkey) -> Any: ...

    def dependent_accounts(self, state: Any) -> list[Pubkey]: ...

    def pool_mints(self, state: Any) -> tuple[Pubkey, Pubkey]: ...

    def quote(
        self,
        state: Any,
        data_by_pubkey: dict[Pubkey, bytes],
        mint_in: Pubkey,
        amount_in: int,
        clock: Clock,
    ) -> Quote: ...

    def quote_exact_out(
        self,
        state: Any,
        data_by_pubkey: dict[Pubkey, bytes],
        mint_in: Pubkey,
        amount_out: int,
        clock: Clock,
    ) -> ExactOutQuote: ...

    def swap_instruction(
        self,
        state: Any,
        user: Pubkey,
        ata_in: Pubkey,
        ata_out: Pubkey,
        mint_in: Pubkey,
        amount_in: int,
        min_out: int,
    ) -> Instruction: ...

    def swap_exact_out_instruction(
        self,
        state: Any,
        user: Pubkey,
        ata_in: Pubkey,
        ata_out: Pubkey,
        mint_in: Pubkey,
        amount_out: int,
        max_amount_in: int,
    ) -> Instruction: ...


# The venue modules import the names above from this package, so they come after them.
from execution.venues import meteora_damm_v2, raydium_cpmm  # noqa: E402

VENUES: dict[str, Venue] = {
    "raydium_cpmm": raydium_cpmm.VENUE,
    "meteora_damm_v2": meteora_damm_v2.VENUE,
}


__all__ = [
    "SKIP_CODES",
    "SYSVAR_CLOCK",
    "VENUES",
    "BadAccount",
    "Clock",
    "ExactOutQuote",
    "InvalidAmount",
    "MintNotInPool",
    "MissingAccount",
    "NotAPool",
    "PoolNotTradable",
    "Quote",
    "SkipCode",
    "Venue",
    "VenueError",
    "iso_utc",
]
