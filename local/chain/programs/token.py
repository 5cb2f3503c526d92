"""SPL Token account and mint layouts (spl-token state.rs), and the token moves a swap makes.

COption fields are a u32 tag (0 = None, 1 = Some) followed by the value, always full width.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, WRAPPED_SOL_MINT

TOKEN_ACCOUNT_LEN = 165
MINT_LEN = 82
NATIVE_MINT = WRAPPED_SOL_MINT
TOKEN_PROGRAMS = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID)

STATE_UNINITIALIZED = 0
STATE_INITIALIZED = 1
STATE_FROZEN = 2

# spl-token TokenError discriminants, returned as custom program errors.
INSUFFICIENT_FUNDS = 1
MINT_MISMATCH = 3
OWNER_MISMATCH = 4
UNINITIALIZED_STATE = 9
ACCOUNT_FROZEN = 17

_ZERO_KEY = bytes(32)


def rent_exempt_lamports(data_len: int) -> int:
    """Rent-exempt minimum: (128 bytes of account overhead + data) * 3480 lamports/byte-year * 2."""
    return (128 + data_len) * 3480 * 2


TOKEN_ACCOUNT_RENT = rent_exempt_lamports(TOKEN_ACCOUNT_LEN)  # 2_039_280


def _pack_option_key(key: Pubkey | None) -> bytes:
    return struct.pack("<I", 0) + _ZERO_KEY if key is None else struct.pack("<I", 1) + bytes(key)


def _unpack_option_key(data: bytes, offset: int) -> Pubkey | None:
    (tag,) = struct.unpack_from("<I", data, offset)
    return Pubkey.from_bytes(data[offset + 4 : offset + 36]) if tag else None


@dataclass(frozen=True)
class TokenAccount:
    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None = None
    state: int = STATE_INITIALIZED
    is_native: int | None = None  # the rent-exempt reserve of a wrapped-SOL account
    delegated_amount: int = 0
    close_authority: Pubkey | None = None

    def pack(self) -> bytes:
        native = (
            struct.pack("<IQ", 0, 0)
            if self.is_native is None
            else struct.pack("<IQ", 1, self.is_native)
        )
        data = (
            bytes(self.mint)
            + bytes(self.owner)
            + struct.pack("<Q", self.amount)
            + _pack_option_key(self.delegate)
            + bytes([self.state])
            + native
            + struct.pack("<Q", self.delegated_amount)
            + _pack_option_key(self.close_authority)
        )
        assert len(data) == TOKEN_ACCOUNT_LEN
        return data

    @classmethod
    def unpack(cls, data: bytes) -> TokenAccount:
        if len(data) < TOKEN_ACCOUNT_LEN:
            raise ValueError("not an SPL token account")
        native_tag, native_reserve = struct.unpack_from("<IQ", data, 109)
        return cls(
            mint=Pubkey.from_bytes(data[0:32]),
            owner=Pubkey.from_bytes(data[32:64]),
            amount=struct.unpack_from("<Q", data, 64)[0],
            delegate=_unpack_option_key(data, 72),
            state=data[108],
            is_native=native_reserve if native_tag else None,
            delegated_amount=struct.unpack_from("<Q", data, 121)[0],
            close_authority=_unpack_option_key(data, 129),
        )


@dataclass(frozen=True)
class Mint:
    decimals: int
    supply: int = 0
    mint_authority: Pubkey | None = None
    is_initialized: bool = True
    freeze_authority: Pubkey | None = None

    def pack(self) -> bytes:
        data = (
            _pack_option_key(self.mint_authority)
            + struct.pack("<QBB", self.supply, self.decimals, int(self.is_initialized))
            + _pack_option_key(self.freeze_authority)
        )
        assert len(data) == MINT_LEN
        return data

    @classmethod
    def unpack(cls, data: bytes) -> Mint:
        if len(data) < MINT_LEN:
            raise ValueError("not an SPL mint")
        supply, decimals, initialized = struct.unpack_from("<QBB", data, 36)
        return cls(
            decimals=decimals,
            supply=supply,
            mint_authority=_unpack_option_key(data, 0),
            is_initialized=bool(initialized),
            freeze_authority=_unpack_option_key(data, 46),
        )


def token_account(
    mint: Pubkey, owner: Pubkey, amount: int, program_id: Pubkey = TOKEN_PROGRAM_ID
) -> Account:
    """A new initialized token account; for the native mint, a wrapped-SOL account whose
    lamports are the rent reserve plus the amount, as SyncNative would leave it."""
    if mint == NATIVE_MINT:
        state = TokenAccount(mint, owner, amount, is_native=TOKEN_ACCOUNT_RENT)
        lamports = TOKEN_ACCOUNT_RENT + amount
    else:
        state = TokenAccount(mint, owner, amount)
        lamports = TOKEN_ACCOUNT_RENT
    return Account(lamports=lamports, data=state.pack(), owner=program_id)


def with_amount(account: Account, amount: int) -> Account:
    """The token account with a new balance; a wrapped-SOL account's lamports follow it, since
    the token program moves lamports along with the amount for native accounts."""
    state = TokenAccount.unpack(bytes(account.data))
    lamports = account.lamports
    if state.is_native is not None:
        lamports += amount - state.amount
    return Account(
        lamports=lamports,
        data=replace(state, amount=amount).pack() + bytes(account.data)[TOKEN_ACCOUNT_LEN:],
        owner=account.owner,
        executable=account.executable,
        rent_epoch=account.rent_epoch,
    )
