"""Raydium CPMM (CP-Swap): pool decoding, exact-input quotes and the `swap_base_input` instruction.

Layouts and math follow raydium-io/raydium-cp-swap: programs/cp-swap/src/states/pool.rs
(PoolState, packed, 637 bytes with its discriminator), states/config.rs (AmmConfig),
curve/fees.rs (trade fee rounded up, protocol and fund fees rounded down, denominator 1e6),
curve/constant_product.rs and instructions/swap_base_input.rs.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from execution.venues import Quote


def _anchor_discriminator(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


POOL_STATE_DISCRIMINATOR = _anchor_discriminator("account:PoolState")
AMM_CONFIG_DISCRIMINATOR = _anchor_discriminator("account:AmmConfig")
OBSERVATION_STATE_DISCRIMINATOR = _anchor_discriminator("account:ObservationState")
SWAP_BASE_INPUT_DISCRIMINATOR = _anchor_discriminator("global:swap_base_input")

# PoolState byte offsets, discriminator included (states/pool.rs; the struct is repr(packed)).
POOL_STATE_LEN = 637
AMM_CONFIG_OFFSET = 8
POOL_CREATOR_OFFSET = 40
TOKEN_0_VAULT_OFFSET = 72
TOKEN_1_VAULT_OFFSET = 104
LP_MINT_OFFSET = 136
TOKEN_0_MINT_OFFSET = 168
TOKEN_1_MINT_OFFSET = 200
TOKEN_0_PROGRAM_OFFSET = 232
TOKEN_1_PROGRAM_OFFSET = 264
OBSERVATION_KEY_OFFSET = 296
AUTH_BUMP_OFFSET = 328
STATUS_OFFSET = 329
LP_MINT_DECIMALS_OFFSET = 330
MINT_0_DECIMALS_OFFSET = 331
MINT_1_DECIMALS_OFFSET = 332
LP_SUPPLY_OFFSET = 333
PROTOCOL_FEES_TOKEN_0_OFFSET = 341
PROTOCOL_FEES_TOKEN_1_OFFSET = 349
FUND_FEES_TOKEN_0_OFFSET = 357
FUND_FEES_TOKEN_1_OFFSET = 365
OPEN_TIME_OFFSET = 373
RECENT_EPOCH_OFFSET = 381
# Creator-fee fields were carved out of the padding in later program versions; older pools have
# zeros here, which reads as "creator fee disabled, nothing owed".
CREATOR_FEE_ON_OFFSET = 389
ENABLE_CREATOR_FEE_OFFSET = 390
CREATOR_FEES_TOKEN_0_OFFSET = 397
CREATOR_FEES_TOKEN_1_OFFSET = 405

# AmmConfig byte offsets (states/config.rs): bump u8, disable_create_pool bool, index u16, then
# the u64 rates; creator_fee_rate follows the two owner pubkeys.
AMM_CONFIG_LEN = 236
CONFIG_INDEX_OFFSET = 10
TRADE_FEE_RATE_OFFSET = 12
PROTOCOL_FEE_RATE_OFFSET = 20
FUND_FEE_RATE_OFFSET = 28
CREATE_POOL_FEE_OFFSET = 36
PROTOCOL_OWNER_OFFSET = 44
FUND_OWNER_OFFSET = 76
CREATOR_FEE_RATE_OFFSET = 108

FEE_RATE_DENOMINATOR = 1_000_000
SWAP_DISABLED_BIT = 1 << 2  # PoolStatusBitIndex::Swap
TOKEN_ACCOUNT_AMOUNT_OFFSET = 64

AUTH_SEED = b"vault_and_lp_mint_auth_seed"
AMM_CONFIG_SEED = b"amm_config"
POOL_VAULT_SEED = b"pool_vault"
POOL_LP_MINT_SEED = b"pool_lp_mint"
OBSERVATION_SEED = b"observation"

# error.rs: Anchor numbers #[error_code] variants from 6000 in declaration order.
NOT_APPROVED = 6000
EXCEEDED_SLIPPAGE = 6005
ZERO_TRADING_TOKENS = 6006
INVALID_VAULT = 6008


def _u64(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 8], "little")


def _key(data: bytes, offset: int) -> Pubkey:
    return Pubkey.from_bytes(data[offset : offset + 32])


@dataclass(frozen=True)
class PoolState:
    address: Pubkey
    program_id: Pubkey
    amm_config: Pubkey
    token_0_vault: Pubkey
    token_1_vault: Pubkey
    token_0_mint: Pubkey
    token_1_mint: Pubkey
    token_0_program: Pubkey
    token_1_program: Pubkey
    observation_key: Pubkey
    auth_bump: int
    status: int
    mint_0_decimals: int
    mint_1_decimals: int
    protocol_fees_token_0: int
    protocol_fees_token_1: int
    fund_fees_token_0: int
    fund_fees_token_1: int
    open_time: int
    enable_creator_fee: bool
    creator_fees_token_0: int
    creator_fees_token_1: int

    @property
    def swap_enabled(self) -> bool:
        return not self.status & SWAP_DISABLED_BIT

    def fees_owed(self, token_index: int) -> int:
        """Tokens in a vault that belong to the protocol, fund and creator, not to the curve."""
        if token_index == 0:
            return self.protocol_fees_token_0 + self.fund_fees_token_0 + self.creator_fees_token_0
        return self.protocol_fees_token_1 + self.fund_fees_token_1 + self.creator_fees_token_1


@dataclass(frozen=True)
class AmmConfig:
    trade_fee_rate: int
    protocol_fee_rate: int
    fund_fee_rate: int
    creator_fee_rate: int


def authority(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([AUTH_SEED], program_id)[0]


def decode_amm_config(data: bytes) -> AmmConfig:
    if len(data) < AMM_CONFIG_LEN or data[:8] != AMM_CONFIG_DISCRIMINATOR:
        raise ValueError("not a Raydium CPMM AmmConfig account")
    return AmmConfig(
        trade_fee_rate=_u64(data, TRADE_FEE_RATE_OFFSET),
        protocol_fee_rate=_u64(data, PROTOCOL_FEE_RATE_OFFSET),
        fund_fee_rate=_u64(data, FUND_FEE_RATE_OFFSET),
        creator_fee_rate=_u64(data, CREATOR_FEE_RATE_OFFSET),
    )


def token_account_amount(data: bytes) -> int:
    if len(data) < TOKEN_ACCOUNT_AMOUNT_OFFSET + 8:
        raise ValueError("not an SPL token account")
    return _u64(data, TOKEN_ACCOUNT_AMOUNT_OFFSET)


class RaydiumCpmm:
    compute_units = 60_000

    def decode_pool(self, data: bytes, owner: Pubkey, address: Pubkey) -> PoolState:
        if len(data) < POOL_STATE_LEN or data[:8] != POOL_STATE_DISCRIMINATOR:
            raise ValueError("not a Raydium CPMM PoolState account")
        return PoolState(
            address=address,
            program_id=owner,
            amm_config=_key(data, AMM_CONFIG_OFFSET),
            token_0_vault=_key(data, TOKEN_0_VAULT_OFFSET),
            token_1_vault=_key(data, TOKEN_1_VAULT_OFFSET),
            token_0_mint=_key(data, TOKEN_0_MINT_OFFSET),
            token_1_mint=_key(data, TOKEN_1_MINT_OFFSET),
            token_0_program=_key(data, TOKEN_0_PROGRAM_OFFSET),
            token_1_program=_key(data, TOKEN_1_PROGRAM_OFFSET),
            observation_key=_key(data, OBSERVATION_KEY_OFFSET),
            auth_bump=data[AUTH_BUMP_OFFSET],
            status=data[STATUS_OFFSET],
            mint_0_decimals=data[MINT_0_DECIMALS_OFFSET],
            mint_1_decimals=data[MINT_1_DECIMALS_OFFSET],
            protocol_fees_token_0=_u64(data, PROTOCOL_FEES_TOKEN_0_OFFSET),
            protocol_fees_token_1=_u64(data, PROTOCOL_FEES_TOKEN_1_OFFSET),
            fund_fees_token_0=_u64(data, FUND_FEES_TOKEN_0_OFFSET),
            fund_fees_token_1=_u64(data, FUND_FEES_TOKEN_1_OFFSET),
            open_time=_u64(data, OPEN_TIME_OFFSET),
            enable_creator_fee=data[ENABLE_CREATOR_FEE_OFFSET] != 0,
            creator_fees_token_0=_u64(data, CREATOR_FEES_TOKEN_0_OFFSET),
            creator_fees_token_1=_u64(data, CREATOR_FEES_TOKEN_1_OFFSET),
        )

    def dependent_accounts(self, state: PoolState) -> list[Pubkey]:
        return [state.amm_config, state.token_0_vault, state.token_1_vault]

    def pool_mints(self, state: PoolState) -> tuple[Pubkey, Pubkey]:
        return (state.token_0_mint, state.token_1_mint)

    def quote(
        self, state: PoolState, data_by_pubkey: dict[Pubkey, bytes], mint_in: Pubkey, amount_in: int
    ) -> Quote:
        if amount_in < 0:
            raise ValueError("amount_in must not be negative")
        if not state.swap_enabled:
            raise ValueError("the pool has swaps disabled")
        if state.enable_creator_fee:
            # The creator fee changes the curve input or output depending on creator_fee_on;
            # quoting it without porting that logic would over-quote.
            raise ValueError("unsupported: Raydium CPMM pool with the creator fee enabled")
        if mint_in == state.token_0_mint:
            index_in, vault_in, vault_out = 0, state.token_0_vault, state.token_1_vault
        elif mint_in == state.token_1_mint:
            index_in, vault_in, vault_out = 1, state.token_1_vault, state.token_0_vault
        else:
            raise ValueError(f"mint {mint_in} is not in pool {state.address}")
        missing = [k for k in (state.amm_config, vault_in, vault_out) if k not in data_by_pubkey]
        if missing:
            raise ValueError(f"accounts needed to quote are missing: {missing}")
        config = decode_amm_config(data_by_pubkey[state.amm_config])
        reserve_in = token_account_amount(data_by_pubkey[vault_in]) - state.fees_owed(index_in)
        reserve_out = token_account_amount(data_by_pubkey[vault_out]) - state.fees_owed(
            1 - index_in
        )
        if reserve_in <= 0 or reserve_out <= 0:
            raise ValueError("the pool has no liquidity")
        trade_fee = -(-amount_in * config.trade_fee_rate // FEE_RATE_DENOMINATOR)
        net_in = amount_in - trade_fee
        amount_out = net_in * reserve_out // (reserve_in + net_in)
        # At the spot price net_in would buy net_in * reserve_out / reserve_in; the curve gives
        # that times reserve_in / (reserve_in + net_in), so the shortfall is this fraction.
        impact = 100.0 * net_in / (reserve_in + net_in) if net_in > 0 else 0.0
        return Quote(amount_out=amount_out, fee_amount=trade_fee, price_impact_pct=impact)

    def swap_instruction(
        self,
        state: PoolState,
        user: Pubkey,
        ata_in: Pubkey,
        ata_out: Pubkey,
        mint_in: Pubkey,
        amount_in: int,
        min_out: int,
    ) -> Instruction:
        if mint_in == state.token_0_mint:
            vault_in, vault_out = state.token_0_vault, state.token_1_vault
            program_in, program_out = state.token_0_program, state.token_1_program
            mint_out = state.token_1_mint
        elif mint_in == state.token_1_mint:
            vault_in, vault_out = state.token_1_vault, state.token_0_vault
            program_in, program_out = state.token_1_program, state.token_0_program
            mint_out = state.token_0_mint
        else:
            raise ValueError(f"mint {mint_in} is not in pool {state.address}")
        accounts = [
            AccountMeta(user, is_signer=True, is_writable=False),
            AccountMeta(authority(state.program_id), is_signer=False, is_writable=False),
            AccountMeta(state.amm_config, is_signer=False, is_writable=False),
            AccountMeta(state.address, is_signer=False, is_writable=True),
            AccountMeta(ata_in, is_signer=False, is_writable=True),
            AccountMeta(ata_out, is_signer=False, is_writable=True),
            AccountMeta(vault_in, is_signer=False, is_writable=True),
            AccountMeta(vault_out, is_signer=False, is_writable=True),
            AccountMeta(program_in, is_signer=False, is_writable=False),
            AccountMeta(program_out, is_signer=False, is_writable=False),
            AccountMeta(mint_in, is_signer=False, is_writable=False),
            AccountMeta(mint_out, is_signer=False, is_writable=False),
            AccountMeta(state.observation_key, is_signer=False, is_writable=True),
        ]
        data = SWAP_BASE_INPUT_DISCRIMINATOR + struct.pack("<QQ", amount_in, min_out)
        return Instruction(state.program_id, data, accounts)


VENUE: RaydiumCpmm = RaydiumCpmm()
