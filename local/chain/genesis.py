"""The admin-owned accounts the DEX programs need before anyone can create a pool, written as
genesis accounts (as `solana-test-validator --account` does), since only each program's admin
key can create them on a cluster:

- Raydium CPMM: `AmmConfig`s at their PDAs (`create_amm_config`'s layout, states/config.rs) and
  the create-pool-fee receiver the mainnet build names (a WSOL token account);
- Meteora DAMM v2: static `Config`s at their PDAs (`create_config`'s layout, state/config.rs).

These are account layouts, not program logic: pools, swaps and every state transition are the
programs' own (local.pools' initialize transactions, then swaps).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from solders.account import Account
from solders.pubkey import Pubkey

CPMM_PROGRAM = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
DAMM_PROGRAM = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
WSOL_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")
# raydium-cp-swap lib.rs create_pool_fee_reveiver (mainnet build) and admin.
CPMM_CREATE_POOL_FEE_RECEIVER = Pubkey.from_string("DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8")
CPMM_ADMIN = Pubkey.from_string("GThUX1Atko4tqhN2NaiTazWSeFWMuiUvfFnyJyUghFMJ")
DAMM_MIN_SQRT_PRICE = 4295048016
DAMM_MAX_SQRT_PRICE = 79226673521066979257578248091
AMM_CONFIG_LEN = 236  # 8 + bump, disable_create_pool, index u16, 4 x u64, 2 keys, [u64; 16]
DAMM_CONFIG_LEN = 8 + 320
# constants.rs fee: the shares of a static config's fees that go to the protocol and referrer.
DAMM_PROTOCOL_FEE_PERCENT = 20
DAMM_REFERRAL_FEE_PERCENT = 20
DAMM_BIN_STEP_BPS = 1
DAMM_MAX_BASIS_POINT = 10_000


class _Writer(Protocol):
    """What `write` needs of the ledger (local.chain.ledger.Ledger)."""

    def set_account(self, key: Pubkey, account: Account) -> None: ...

    def rent_exempt_minimum(self, size: int) -> int: ...


def _disc(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def cpmm_config_address(index: int, program: Pubkey = CPMM_PROGRAM) -> tuple[Pubkey, int]:
    """The AmmConfig PDA of `index`: seeds ["amm_config", index u16 big-endian]."""
    return Pubkey.find_program_address([b"amm_config", index.to_bytes(2, "big")], program)


@dataclass(frozen=True)
class CpmmConfig:
    """One AmmConfig's rates (parts per million of the amount or of the trade fee)."""

    trade_fee_rate: int
    protocol_fee_rate: int = 0
    fund_fee_rate: int = 0
    create_pool_fee: int = 0  # lamports

    def pack(self, index: int, bump: int) -> bytes:
        data = _disc("account:AmmConfig") + bytes([bump, 0]) + _u(index, 2)
        for value in (
            self.trade_fee_rate,
            self.protocol_fee_rate,
            self.fund_fee_rate,
            self.create_pool_fee,
        ):
            data += _u(value, 8)
        data += bytes(CPMM_ADMIN) + bytes(CPMM_ADMIN)  # protocol and fund owner
        return data + bytes(AMM_CONFIG_LEN - len(data))


def damm_config_address(index: int, program: Pubkey = DAMM_PROGRAM) -> Pubkey:
    """The static Config PDA of `index`: seeds ["config", index u64 little-endian]."""
    return Pubkey.find_program_address([b"config", index.to_bytes(8, "little")], program)[0]


@dataclass(frozen=True)
class DammConfig:
    """A static DAMM v2 Config. `base_fee` is BaseFeeConfig's 32 bytes (state/config.rs):
    cliff_fee_numerator u64 @0, base_fee_mode u8 @8, first_factor u16 @14, second_factor
    [u8; 8] @16, third_factor u64 @24 (`damm_base_fee` packs it)."""

    base_fee: bytes
    dynamic_fee: Mapping[str, int] | None = None
    collect_fee_mode: int = 1
    activation_type: int = 1
    compounding_fee_bps: int = 0

    def pack(self, index: int) -> bytes:
        data = bytearray(DAMM_CONFIG_LEN)
        data[:8] = _disc("account:Config")
        data[72:104] = self.base_fee
        if self.dynamic_fee is not None:
            d = self.dynamic_fee
            bin_step = d.get("bin_step", DAMM_BIN_STEP_BPS)
            data[104] = 1
            data[112:116] = _u(d["max_volatility_accumulator"], 4)
            data[116:120] = _u(d["variable_fee_control"], 4)
            data[120:122] = _u(bin_step, 2)
            data[122:124] = _u(d["filter_period"], 2)
            data[124:126] = _u(d["decay_period"], 2)
            data[126:128] = _u(d["reduction_factor"], 2)
            data[136:152] = _u((bin_step << 64) // DAMM_MAX_BASIS_POINT, 16)
        data[152] = DAMM_PROTOCOL_FEE_PERCENT
        data[154] = DAMM_REFERRAL_FEE_PERCENT
        data[158:160] = _u(self.compounding_fee_bps, 2)
        data[200] = self.activation_type
        data[201] = self.collect_fee_mode
        data[202] = 0  # ConfigType::Static
        data[208:216] = _u(index, 8)
        data[216:232] = _u(DAMM_MIN_SQRT_PRICE, 16)
        data[232:248] = _u(DAMM_MAX_SQRT_PRICE, 16)
        return bytes(data)


def damm_base_fee(
    cliff_fee_numerator: int,
    base_fee_mode: int = 0,
    first_factor: int = 0,
    second_factor: bytes = bytes(8),
    third_factor: int = 0,
) -> bytes:
    """BaseFeeConfig's bytes. Time scheduler (modes 0, 1): first = number_of_period, second =
    period_frequency u64, third = reduction_factor; rate limiter (2): first =
    fee_increment_bps, second = max_limiter_duration u32 + max_fee_bps u32, third =
    reference_amount; market-cap scheduler (3, 4): first = number_of_period, second =
    sqrt_price_step_bps u32 + scheduler_expiration_duration u32, third = reduction_factor."""
    return (
        _u(cliff_fee_numerator, 8)
        + bytes([base_fee_mode])
        + bytes(5)
        + _u(first_factor, 2)
        + second_factor
        + _u(third_factor, 8)
    )


def write(
    ledger: _Writer,
    rent: int,
    cpmm_configs: Mapping[int, CpmmConfig],
    damm_configs: Mapping[int, DammConfig],
    fee_receiver_owner: Pubkey,
) -> None:
    """Write the configs at their PDAs and CPMM's create-pool-fee receiver."""
    for index, cpmm in cpmm_configs.items():
        address, bump = cpmm_config_address(index)
        data = cpmm.pack(index, bump)
        ledger.set_account(
            address, Account(ledger.rent_exempt_minimum(len(data)), data, CPMM_PROGRAM, False, 0)
        )
    for index, damm in damm_configs.items():
        data = damm.pack(index)
        ledger.set_account(
            damm_config_address(index),
            Account(ledger.rent_exempt_minimum(len(data)), data, DAMM_PROGRAM, False, 0),
        )
    receiver = bytearray(165)
    receiver[0:32] = bytes(WSOL_MINT)
    receiver[32:64] = bytes(fee_receiver_owner)
    receiver[108] = 1  # Initialized
    receiver[109:113] = _u(1, 4)  # is_native: Some(rent-exempt reserve)
    receiver[113:121] = _u(rent, 8)
    ledger.set_account(
        CPMM_CREATE_POOL_FEE_RECEIVER, Account(rent, bytes(receiver), TOKEN_PROGRAM, False, 0)
    )
