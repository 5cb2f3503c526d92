"""SPL Token and Token-2022 account and mint layouts, as the token programs store them, and the
Token-2022 transfer fee (the program side: written from solana-program/token-2022, independent
of the engine's quoting code).

- `state.rs`: Account (165 bytes), Mint (82 bytes). COption fields are a u32 tag (0 = None,
  1 = Some) followed by the value, always full width.
- `extension/mod.rs`: an account with extensions keeps its base state, is padded to 165 bytes
  (a mint) and carries an AccountType byte at 165 (1 mint, 2 account), then TLV entries (u16
  type, u16 length, value) until a zero type.
- `extension/transfer_fee/mod.rs`: TransferFeeConfig (authorities, withheld amount, older and
  newer TransferFee {epoch u64, maximum_fee u64, basis points u16}); `calculate_fee` is
  ceil(amount * bps / 10_000) capped at maximum_fee; TransferFeeAmount (u64 withheld) on every
  account of a mint with the fee.
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

ACCOUNT_TYPE_MINT = 1
ACCOUNT_TYPE_ACCOUNT = 2

# token-2022 ExtensionType numbers this module reads or writes.
EXT_TRANSFER_FEE_CONFIG = 1
EXT_TRANSFER_FEE_AMOUNT = 2
EXT_IMMUTABLE_OWNER = 7
EXT_NON_TRANSFERABLE = 9
EXT_NON_TRANSFERABLE_ACCOUNT = 13
EXT_TRANSFER_HOOK = 14
EXT_TRANSFER_HOOK_ACCOUNT = 15
EXT_PAUSABLE = 26
EXT_PAUSABLE_ACCOUNT = 27

# spl-token TokenError discriminants, returned as custom program errors.
INSUFFICIENT_FUNDS = 1
MINT_MISMATCH = 3
OWNER_MISMATCH = 4
UNINITIALIZED_STATE = 9
INVALID_STATE = 13
ACCOUNT_FROZEN = 17
MINT_DECIMALS_MISMATCH = 18
NON_TRANSFERABLE = 37
MINT_PAUSED = 67

MAX_FEE_BASIS_POINTS = 10_000

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


def tlv_entries(data: bytes) -> list[tuple[int, int, int]]:
    """(type, value offset, length) of each extension after the AccountType byte at 165."""
    entries: list[tuple[int, int, int]] = []
    at = TOKEN_ACCOUNT_LEN + 1
    while at + 4 <= len(data):
        kind, length = struct.unpack_from("<HH", data, at)
        if kind == 0:
            break
        entries.append((kind, at + 4, length))
        at += 4 + length
    return entries


def extension(data: bytes, kind: int) -> bytes | None:
    for found, offset, length in tlv_entries(data):
        if found == kind:
            return data[offset : offset + length]
    return None


def pack_tlv(account_type: int, entries: list[tuple[int, bytes]]) -> bytes:
    out = bytes([account_type])
    for kind, value in entries:
        out += struct.pack("<HH", kind, len(value)) + value
    return out


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
        if len(data) != TOKEN_ACCOUNT_LEN:
            raise RuntimeError("a token account packs to 165 bytes")
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
class TransferFee:
    epoch: int
    maximum_fee: int
    basis_points: int

    def calculate_fee(self, amount: int) -> int:
        if self.basis_points == 0 or amount == 0:
            return 0
        numerator = amount * self.basis_points
        raw = (numerator + MAX_FEE_BASIS_POINTS - 1) // MAX_FEE_BASIS_POINTS
        return min(raw, self.maximum_fee)


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
        if len(data) != MINT_LEN:
            raise RuntimeError("a mint packs to 82 bytes")
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


def transfer_fee_config_value(
    older: TransferFee, newer: TransferFee, withheld: int = 0, authority: Pubkey | None = None
) -> bytes:
    """A TransferFeeConfig extension's 108 bytes."""
    key = bytes(authority) if authority is not None else _ZERO_KEY
    return (
        key
        + key
        + struct.pack("<Q", withheld)
        + struct.pack("<QQH", older.epoch, older.maximum_fee, older.basis_points)
        + struct.pack("<QQH", newer.epoch, newer.maximum_fee, newer.basis_points)
    )


def mint_2022(mint: Mint, extensions: list[tuple[int, bytes]]) -> bytes:
    """A Token-2022 mint: the base, padding to 165, the Mint account type, the extensions."""
    if not extensions:
        return mint.pack()
    return (
        mint.pack() + bytes(TOKEN_ACCOUNT_LEN - MINT_LEN) + pack_tlv(ACCOUNT_TYPE_MINT, extensions)
    )


def epoch_transfer_fee(mint_data: bytes, epoch: int) -> TransferFee | None:
    """TransferFeeConfig::get_epoch_fee, or None when the mint has no transfer fee."""
    if len(mint_data) <= MINT_LEN:
        return None
    value = extension(mint_data, EXT_TRANSFER_FEE_CONFIG)
    if value is None:
        return None
    older = TransferFee(*struct.unpack_from("<QQH", value, 72))
    newer = TransferFee(*struct.unpack_from("<QQH", value, 90))
    return newer if epoch >= newer.epoch else older


# ExtensionType::get_required_init_account_extensions: the account extension (and its zeroed
# value) each mint extension requires of every token account of the mint.
REQUIRED_ACCOUNT_EXTENSIONS = {
    EXT_TRANSFER_FEE_CONFIG: (EXT_TRANSFER_FEE_AMOUNT, bytes(8)),
    EXT_NON_TRANSFERABLE: (EXT_NON_TRANSFERABLE_ACCOUNT, b""),
    EXT_TRANSFER_HOOK: (EXT_TRANSFER_HOOK_ACCOUNT, bytes(1)),
    EXT_PAUSABLE: (EXT_PAUSABLE_ACCOUNT, b""),
}


def account_extensions_for_mint(mint_data: bytes) -> list[tuple[int, bytes]]:
    """ExtensionType::get_required_init_account_extensions for the mint's extensions, in the
    mint's order (a transfer fee needs TransferFeeAmount, a transfer hook TransferHookAccount,
    non-transferable NonTransferableAccount, pausable PausableAccount)."""
    if len(mint_data) <= MINT_LEN:
        return []
    kinds = [kind for kind, _, _ in tlv_entries(mint_data)]
    return [REQUIRED_ACCOUNT_EXTENSIONS[k] for k in kinds if k in REQUIRED_ACCOUNT_EXTENSIONS]


def token_account(
    mint: Pubkey,
    owner: Pubkey,
    amount: int,
    program_id: Pubkey = TOKEN_PROGRAM_ID,
    extensions: list[tuple[int, bytes]] | None = None,
) -> Account:
    """A new initialized token account; for the native mint, a wrapped-SOL account whose
    lamports are the rent reserve plus the amount, as SyncNative would leave it. A Token-2022
    account with `extensions` carries them after its AccountType byte."""
    tail = pack_tlv(ACCOUNT_TYPE_ACCOUNT, extensions) if extensions else b""
    rent = rent_exempt_lamports(TOKEN_ACCOUNT_LEN + len(tail))
    if mint == NATIVE_MINT:
        state = TokenAccount(mint, owner, amount, is_native=rent)
        lamports = rent + amount
    else:
        state = TokenAccount(mint, owner, amount)
        lamports = rent
    return Account(lamports=lamports, data=state.pack() + tail, owner=program_id)


def with_amount(account: Account, amount: int, withheld_delta: int = 0) -> Account:
    """The token account with a new balance (and `withheld_delta` more withheld in its
    TransferFeeAmount extension); a wrapped-SOL account's lamports follow the amount, since the
    token program moves lamports along with it for native accounts."""
    data = bytearray(bytes(account.data))
    state = TokenAccount.unpack(bytes(data))
    lamports = account.lamports
    if state.is_native is not None:
        lamports += amount - state.amount
    data[:TOKEN_ACCOUNT_LEN] = replace(state, amount=amount).pack()
    if withheld_delta:
        for kind, offset, length in tlv_entries(bytes(data)):
            if kind == EXT_TRANSFER_FEE_AMOUNT and length >= 8:
                withheld = int.from_bytes(data[offset : offset + 8], "little") + withheld_delta
                data[offset : offset + 8] = withheld.to_bytes(8, "little")
                break
        else:
            raise ValueError("the account has no TransferFeeAmount extension")
    return Account(
        lamports=lamports,
        data=bytes(data),
        owner=account.owner,
        executable=account.executable,
        rent_epoch=account.rent_epoch,
    )


def withheld_amount(data: bytes) -> int:
    value = extension(data, EXT_TRANSFER_FEE_AMOUNT)
    return int.from_bytes(value[:8], "little") if value is not None else 0
