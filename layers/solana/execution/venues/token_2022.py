"""Token-2022 mints as the swap programs see them: the TLV extensions after the base mint, the
transfer fee in force for an epoch, and which extensions a venue can be quoted with.

Sources (solana-program/token-2022, interface/src): `state.rs` (Mint: 82 bytes), `extension/
mod.rs` (an extended mint is padded to the 165-byte account length, then one AccountType byte,
then TLV entries of u16 type, u16 length, value; a zero type ends the list; `ExtensionType`
numbering), `extension/transfer_fee/mod.rs` (`TransferFeeConfig`, `TransferFee::calculate_fee`:
ceil(amount * bps / 10_000) capped at maximum_fee; the newer fee applies from its epoch on).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Collection
from dataclasses import dataclass

from solders.pubkey import Pubkey

from execution.venues import BadAccount, PoolNotTradable

MINT_LEN = 82
BASE_ACCOUNT_LEN = 165
ACCOUNT_TYPE_MINT = 1
MINT_DECIMALS_OFFSET = 44
MAX_FEE_BASIS_POINTS = 10_000

# ExtensionType, numbered in declaration order (interface/src/extension/mod.rs).
EXTENSION_NAMES: tuple[str, ...] = (
    "Uninitialized",
    "TransferFeeConfig",
    "TransferFeeAmount",
    "MintCloseAuthority",
    "ConfidentialTransferMint",
    "ConfidentialTransferAccount",
    "DefaultAccountState",
    "ImmutableOwner",
    "MemoTransfer",
    "NonTransferable",
    "InterestBearingConfig",
    "CpiGuard",
    "PermanentDelegate",
    "NonTransferableAccount",
    "TransferHook",
    "TransferHookAccount",
    "ConfidentialTransferFeeConfig",
    "ConfidentialTransferFeeAmount",
    "MetadataPointer",
    "TokenMetadata",
    "GroupPointer",
    "TokenGroup",
    "GroupMemberPointer",
    "TokenGroupMember",
    "ConfidentialMintBurn",
    "ScaledUiAmount",
    "Pausable",
    "PausableAccount",
    "PermissionedBurn",
)
EXTENSION: dict[str, int] = {name: number for number, name in enumerate(EXTENSION_NAMES)}
TRANSFER_FEE_CONFIG = EXTENSION["TransferFeeConfig"]
TRANSFER_HOOK = EXTENSION["TransferHook"]
TRANSFER_FEE_CONFIG_LEN = 108  # 2 x 32-byte authorities, u64 withheld, 2 x TransferFee (18)


def extension_name(number: int) -> str:
    return EXTENSION_NAMES[number] if number < len(EXTENSION_NAMES) else f"Unknown({number})"


@dataclass(frozen=True)
class TransferFee:
    epoch: int
    maximum_fee: int
    basis_points: int

    def fee(self, pre_fee_amount: int) -> int:
        """`TransferFee::calculate_fee`."""
        if self.basis_points == 0 or pre_fee_amount == 0:
            return 0
        raw = -(-pre_fee_amount * self.basis_points // MAX_FEE_BASIS_POINTS)
        return min(raw, self.maximum_fee)

    def pre_fee_amount(self, post_fee_amount: int) -> int:
        """`TransferFee::calculate_pre_fee_amount`: the least amount that arrives as
        `post_fee_amount` once the fee is withheld (rounded up; capped by the maximum fee)."""
        if self.basis_points == 0:
            return post_fee_amount
        if post_fee_amount == 0:
            return 0
        if self.basis_points == MAX_FEE_BASIS_POINTS:
            return post_fee_amount + self.maximum_fee
        numerator = post_fee_amount * MAX_FEE_BASIS_POINTS
        raw = -(-numerator // (MAX_FEE_BASIS_POINTS - self.basis_points))
        if raw - post_fee_amount >= self.maximum_fee:
            return post_fee_amount + self.maximum_fee
        return raw

    def inverse_fee(self, post_fee_amount: int) -> int:
        """`TransferFee::calculate_inverse_fee`: the fee on `pre_fee_amount(post)`."""
        return self.fee(self.pre_fee_amount(post_fee_amount))


@dataclass(frozen=True)
class TransferFeeConfig:
    withheld_amount: int
    older: TransferFee
    newer: TransferFee

    def epoch_fee(self, epoch: int) -> TransferFee:
        """`get_epoch_fee`: the newer fee from its epoch on, the older one before."""
        return self.newer if epoch >= self.newer.epoch else self.older


@dataclass(frozen=True)
class MintInfo:
    decimals: int
    extensions: tuple[tuple[int, bytes], ...]  # (type, value) in TLV order
    transfer_fee: TransferFeeConfig | None

    @property
    def extension_types(self) -> tuple[int, ...]:
        return tuple(kind for kind, _ in self.extensions)

    def transfer_fee_for(self, epoch: int, amount: int) -> int:
        """The fee the token program withholds when `amount` moves in `epoch` (0 without
        the extension; an SPL Token mint never has it)."""
        if self.transfer_fee is None:
            return 0
        return self.transfer_fee.epoch_fee(epoch).fee(amount)

    def inverse_transfer_fee_for(self, epoch: int, post_fee_amount: int) -> int | None:
        """Raydium CPMM's `get_transfer_inverse_fee`: the fee to add to `post_fee_amount` so
        that it arrives whole (the maximum fee at 100 %); None where the program fails
        `TransferFeeCalculateNotMatch` (the inverse and the forward fee disagree)."""
        if self.transfer_fee is None:
            return 0
        fee = self.transfer_fee.epoch_fee(epoch)
        if fee.basis_points == MAX_FEE_BASIS_POINTS:
            return fee.maximum_fee
        inverse = fee.inverse_fee(post_fee_amount)
        if inverse != fee.fee(post_fee_amount + inverse):
            return None
        return inverse

    def transfer_hook_is_inert(self) -> bool:
        """A TransferHook extension with neither a program nor an authority calls nothing."""
        for kind, value in self.extensions:
            if kind == TRANSFER_HOOK:
                return value[:64] == bytes(64)
        return True


def _transfer_fee(value: bytes, offset: int) -> TransferFee:
    epoch, maximum_fee, basis_points = struct.unpack_from("<QQH", value, offset)
    return TransferFee(epoch, maximum_fee, basis_points)


SPL_TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
MINT_INITIALIZED_OFFSET = 45


def read_mint(owner: str, data: bytes) -> MintInfo:
    """An account that must be a mint, checked as the token programs check one before any
    field is read: owned by SPL Token or Token-2022, a mint's size and layout (SPL Token: 82
    bytes; Token-2022: 82, or the Mint account type at 165), initialized. BadAccount says what
    it is instead (a sysvar, a program, a token account, a pool...)."""
    if owner not in (SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM):
        raise BadAccount(f"it is owned by {owner}, not by a token program")
    if owner == SPL_TOKEN_PROGRAM and len(data) != MINT_LEN:
        kind = "a token account" if len(data) == BASE_ACCOUNT_LEN else f"{len(data)} bytes"
        raise BadAccount(f"it is {kind}, not an SPL Token mint ({MINT_LEN} bytes)")
    if len(data) == BASE_ACCOUNT_LEN or (
        len(data) > BASE_ACCOUNT_LEN and data[BASE_ACCOUNT_LEN] != ACCOUNT_TYPE_MINT
    ):
        raise BadAccount("it is a token account, not a mint")
    if len(data) < MINT_LEN or data[MINT_INITIALIZED_OFFSET] != 1:
        raise BadAccount("it is not an initialized mint")
    return parse_mint(data)


def parse_mint(data: bytes) -> MintInfo:
    """An SPL Token or Token-2022 mint account's data."""
    if len(data) < MINT_LEN:
        raise BadAccount(f"a mint holds at least {MINT_LEN} bytes, this one {len(data)}")
    decimals = data[MINT_DECIMALS_OFFSET]
    if len(data) == MINT_LEN:
        return MintInfo(decimals, (), None)
    if len(data) <= BASE_ACCOUNT_LEN or data[BASE_ACCOUNT_LEN] != ACCOUNT_TYPE_MINT:
        raise BadAccount("an extended Token-2022 mint must carry the Mint account type at 165")
    extensions: list[tuple[int, bytes]] = []
    fee_config: TransferFeeConfig | None = None
    at = BASE_ACCOUNT_LEN + 1
    while at + 4 <= len(data):
        kind, length = struct.unpack_from("<HH", data, at)
        if kind == 0:  # the rest is zero padding
            break
        value = data[at + 4 : at + 4 + length]
        if len(value) != length:
            raise BadAccount(f"the mint's {extension_name(kind)} extension is truncated")
        extensions.append((kind, value))
        if kind == TRANSFER_FEE_CONFIG:
            if length < TRANSFER_FEE_CONFIG_LEN:
                raise BadAccount("the mint's TransferFeeConfig is too short")
            withheld = struct.unpack_from("<Q", value, 64)[0]
            fee_config = TransferFeeConfig(
                withheld, _transfer_fee(value, 72), _transfer_fee(value, 90)
            )
        at += 4 + length
    return MintInfo(decimals, tuple(extensions), fee_config)


@functools.lru_cache(maxsize=1024)
def accepted_mint(
    mint: Pubkey,
    data: bytes,
    accepted: frozenset[int],
    venue: str,
    inert_transfer_hook: bool = False,
) -> MintInfo:
    """The mint's data parsed, once `require_supported` passed it for `venue`. Kept for the
    mints seen last (a pure function of its arguments; a refusal is raised again each time):
    the watcher quotes thousands of orders a tick against the same two mints."""
    info = parse_mint(data)
    require_supported(mint, info, accepted, venue, inert_transfer_hook)
    return info


def require_supported(
    mint: Pubkey,
    info: MintInfo,
    accepted: Collection[int],
    venue: str,
    inert_transfer_hook: bool = False,
) -> None:
    """Raise PoolNotTradable(`unsupported_token_extension`) for the first extension of `mint`
    outside `accepted` (an inert TransferHook passes when `inert_transfer_hook`)."""
    for kind in info.extension_types:
        if kind in accepted:
            continue
        if kind == TRANSFER_HOOK and inert_transfer_hook and info.transfer_hook_is_inert():
            continue
        name = extension_name(kind)
        raise PoolNotTradable(
            "unsupported_token_extension",
            f"mint {mint} has the Token-2022 extension {name}, which {venue} quotes do not model",
            extension=name,
            mint=str(mint),
        )
