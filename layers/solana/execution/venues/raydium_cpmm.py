"""Raydium CPMM (CP-Swap): pool decoding, exact-input quotes and the `swap_base_input` instruction.

Ported from raydium-io/raydium-cp-swap (master), programs/cp-swap/src:
- states/pool.rs: `PoolState` (repr packed, 637 bytes with its discriminator), the status bits,
  `open_time`, `vault_amount_without_fee` (protocol, fund and creator fees owed are not the
  curve's), `is_creator_fee_on_input` per `creator_fee_on` (0 both tokens: always the input;
  1 only token 0; 2 only token 1), `adjust_creator_fee_rate` (0 unless `enable_creator_fee`);
- states/config.rs: `AmmConfig` (rates over 1,000,000; `creator_fee_rate` after the owners);
- curve/calculator.rs `swap_base_input` and curve/fees.rs: trade fee (and, on the input side, the
  creator fee) taken as ceil(amount * (trade + creator rate) / 1e6) and split by floor division;
  an output-side creator fee is ceil(output * creator rate / 1e6); protocol and fund fees floor;
- instructions/swap_base_input.rs: NotApproved while swaps are disabled or before `open_time`
  (block timestamp), the input transfer fee off before the curve (saturating), the output's
  transfer fee off before the `amount_received > 0` and minimum-output checks;
- utils/token.rs: `get_transfer_fee` (0 for SPL Token mints) and `is_supported_mint`;
- error.rs: `ErrorCode`, numbered from 6000 in declaration order.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from execution.venues import (
    BadAccount,
    Clock,
    ExactOutQuote,
    InvalidAmount,
    MintNotInPool,
    MissingAccount,
    NotAPool,
    PoolNotTradable,
    Quote,
    iso_utc,
)
from execution.venues import token_2022 as t22


def _anchor_discriminator(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


PROGRAM_IDS = (
    Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"),  # mainnet
    Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb"),  # devnet
)
POOL_STATE_DISCRIMINATOR = _anchor_discriminator("account:PoolState")
AMM_CONFIG_DISCRIMINATOR = _anchor_discriminator("account:AmmConfig")
OBSERVATION_STATE_DISCRIMINATOR = _anchor_discriminator("account:ObservationState")
SWAP_BASE_INPUT_DISCRIMINATOR = _anchor_discriminator("global:swap_base_input")
SWAP_BASE_OUTPUT_DISCRIMINATOR = _anchor_discriminator("global:swap_base_output")

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
# The creator-fee fields were carved out of the padding (release "support creator fee"); older
# pools have zeros here: creator fee disabled, nothing owed, creator_fee_on = both tokens.
CREATOR_FEE_ON_OFFSET = 389
ENABLE_CREATOR_FEE_OFFSET = 390
CREATOR_FEES_TOKEN_0_OFFSET = 397
CREATOR_FEES_TOKEN_1_OFFSET = 405

# AmmConfig byte offsets (states/config.rs): bump u8, disable_create_pool bool, index u16, the
# u64 rates and create fee, the protocol and fund owners, then creator_fee_rate.
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
TOKEN_ACCOUNT_LEN = 165
U64_MAX = (1 << 64) - 1

CREATOR_FEE_ON_BOTH = 0
CREATOR_FEE_ON_TOKEN_0 = 1
CREATOR_FEE_ON_TOKEN_1 = 2

AUTH_SEED = b"vault_and_lp_mint_auth_seed"
AMM_CONFIG_SEED = b"amm_config"
POOL_VAULT_SEED = b"pool_vault"
POOL_LP_MINT_SEED = b"pool_lp_mint"
OBSERVATION_SEED = b"observation"

# error.rs ErrorCode: Anchor numbers #[error_code] variants from 6000 in declaration order.
ERRORS: dict[int, str] = {
    6000 + i: name
    for i, name in enumerate(
        (
            "NotApproved",
            "InvalidOwner",
            "EmptySupply",
            "InvalidInput",
            "IncorrectLpMint",
            "ExceededSlippage",
            "ZeroTradingTokens",
            "NotSupportMint",
            "InvalidVault",
            "InitLpAmountTooLess",
            "TransferFeeCalculateNotMatch",
            "MathOverflow",
            "InsufficientVault",
            "InvalidFeeModel",
            "NoFeeCollect",
        )
    )
}

# utils/token.rs is_supported_mint lists TransferFeeConfig, MetadataPointer, TokenMetadata,
# InterestBearingConfig and ScaledUiAmount. The last two rescale the amounts users see, which
# the engine's decimal amounts do not model, so pools with them are refused.
ACCEPTED_EXTENSIONS = frozenset(
    t22.EXTENSION[name] for name in ("TransferFeeConfig", "MetadataPointer", "TokenMetadata")
)


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
    creator_fee_on: int
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

    def is_creator_fee_on_input(self, zero_for_one: bool) -> bool:
        """pool.rs is_creator_fee_on_input; an unknown mode fails the swap (InvalidFeeModel)."""
        if self.creator_fee_on == CREATOR_FEE_ON_BOTH:
            return True
        if self.creator_fee_on == CREATOR_FEE_ON_TOKEN_0:
            return zero_for_one
        if self.creator_fee_on == CREATOR_FEE_ON_TOKEN_1:
            return not zero_for_one
        raise PoolNotTradable(
            "disabled",
            f"pool {self.address} has creator_fee_on {self.creator_fee_on}: swaps fail with "
            "InvalidFeeModel",
            programError="InvalidFeeModel",
        )


@dataclass(frozen=True)
class AmmConfig:
    trade_fee_rate: int
    protocol_fee_rate: int
    fund_fee_rate: int
    creator_fee_rate: int


@dataclass(frozen=True)
class SwapResult:
    """curve/calculator.rs SwapResult (the fields a quote needs)."""

    input_amount_less_fees: int  # what the curve receives
    output_amount_swapped: int  # what leaves the curve
    output_amount: int  # what the vault transfers (output creator fee deducted)
    trade_fee: int
    creator_fee: int
    protocol_fee: int
    fund_fee: int
    creator_fee_on_input: bool


def authority(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([AUTH_SEED], program_id)[0]


def decode_amm_config(data: bytes) -> AmmConfig:
    if len(data) < AMM_CONFIG_LEN or data[:8] != AMM_CONFIG_DISCRIMINATOR:
        raise BadAccount("not a Raydium CPMM AmmConfig account")
    return AmmConfig(
        trade_fee_rate=_u64(data, TRADE_FEE_RATE_OFFSET),
        protocol_fee_rate=_u64(data, PROTOCOL_FEE_RATE_OFFSET),
        fund_fee_rate=_u64(data, FUND_FEE_RATE_OFFSET),
        creator_fee_rate=_u64(data, CREATOR_FEE_RATE_OFFSET),
    )


def token_account_amount(data: bytes) -> int:
    if len(data) < TOKEN_ACCOUNT_LEN:
        raise BadAccount("not an SPL token account")
    return _u64(data, TOKEN_ACCOUNT_AMOUNT_OFFSET)


def decode(data: bytes, owner: Pubkey, address: Pubkey) -> PoolState:
    if len(data) < POOL_STATE_LEN or data[:8] != POOL_STATE_DISCRIMINATOR:
        raise NotAPool(f"{address} is not a Raydium CPMM PoolState account")
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
        creator_fee_on=data[CREATOR_FEE_ON_OFFSET],
        enable_creator_fee=data[ENABLE_CREATOR_FEE_OFFSET] != 0,
        creator_fees_token_0=_u64(data, CREATOR_FEES_TOKEN_0_OFFSET),
        creator_fees_token_1=_u64(data, CREATOR_FEES_TOKEN_1_OFFSET),
    )


def _ceil_div(amount: int, numerator: int, denominator: int) -> int:
    return (amount * numerator + denominator - 1) // denominator


def swap_base_input(
    input_amount: int,
    input_vault_amount: int,
    output_vault_amount: int,
    config: AmmConfig,
    creator_fee_rate: int,
    creator_fee_on_input: bool,
) -> SwapResult | None:
    """CurveCalculator::swap_base_input; None where the program's Option is None (its
    ZeroTradingTokens)."""
    trade_rate = config.trade_fee_rate
    if creator_fee_on_input:
        total_fee = _ceil_div(input_amount, trade_rate + creator_fee_rate, FEE_RATE_DENOMINATOR)
        if trade_rate + creator_fee_rate == 0:
            return None  # split_creator_fee divides by the summed rates
        creator_fee = total_fee * creator_fee_rate // (trade_rate + creator_fee_rate)
        trade_fee = total_fee - creator_fee
        less_fees = input_amount - total_fee
    else:
        trade_fee = _ceil_div(input_amount, trade_rate, FEE_RATE_DENOMINATOR)
        creator_fee = 0
        less_fees = input_amount - trade_fee
    if less_fees < 0:
        return None
    protocol_fee = trade_fee * config.protocol_fee_rate // FEE_RATE_DENOMINATOR
    fund_fee = trade_fee * config.fund_fee_rate // FEE_RATE_DENOMINATOR
    # ConstantProductCurve::swap_base_input_without_fees
    swapped = less_fees * output_vault_amount // (input_vault_amount + less_fees)
    if creator_fee_on_input:
        output = swapped
    else:
        creator_fee = _ceil_div(swapped, creator_fee_rate, FEE_RATE_DENOMINATOR)
        output = swapped - creator_fee
        if output < 0:
            return None
    return SwapResult(
        less_fees,
        swapped,
        output,
        trade_fee,
        creator_fee,
        protocol_fee,
        fund_fee,
        creator_fee_on_input,
    )


def pre_fee_amount(post_fee_amount: int, rate: int) -> int:
    """fees.rs Fees::calculate_pre_fee_amount: the amount that is `post_fee_amount` once
    `rate` (per FEE_RATE_DENOMINATOR) is taken off, rounded up."""
    if rate == 0:
        return post_fee_amount
    denominator = FEE_RATE_DENOMINATOR - rate
    return (post_fee_amount * FEE_RATE_DENOMINATOR + denominator - 1) // denominator


def swap_base_output(
    output_amount: int,
    input_vault_amount: int,
    output_vault_amount: int,
    config: AmmConfig,
    creator_fee_rate: int,
    creator_fee_on_input: bool,
) -> tuple[int, int, int] | None:
    """CurveCalculator::swap_base_output (raydium-cp-swap curve/calculator.rs): (the input the
    curve takes with its fees, the trade fee, the creator fee) for `output_amount` leaving the
    vault to the user; None where the program fails (the output is the whole reserve or more:
    its checked_sub, or a rate of 100 %)."""
    creator_fee = 0
    actual_output = output_amount
    if not creator_fee_on_input:
        if creator_fee_rate >= FEE_RATE_DENOMINATOR:
            return None
        actual_output = pre_fee_amount(output_amount, creator_fee_rate)
        creator_fee = actual_output - output_amount
    if actual_output >= output_vault_amount:
        return None
    # ConstantProductCurve::swap_base_output_without_fees: ceil(x * dy / (y - dy))
    swapped = -(-(input_vault_amount * actual_output) // (output_vault_amount - actual_output))
    if creator_fee_on_input:
        rate = config.trade_fee_rate + creator_fee_rate
        if rate >= FEE_RATE_DENOMINATOR:
            return None
        with_fee = pre_fee_amount(swapped, rate)
        total_fee = with_fee - swapped
        if rate == 0:
            return None  # Fees::split_creator_fee divides by the summed rates
        creator_fee = total_fee * creator_fee_rate // rate
        trade_fee = total_fee - creator_fee
    else:
        if config.trade_fee_rate >= FEE_RATE_DENOMINATOR:
            return None
        with_fee = pre_fee_amount(swapped, config.trade_fee_rate)
        trade_fee = with_fee - swapped
    return with_fee, trade_fee, creator_fee


class RaydiumCpmm:
    compute_units = 60_000

    def decode_pool(self, data: bytes, owner: Pubkey, address: Pubkey) -> PoolState:
        return decode(data, owner, address)

    def dependent_accounts(self, state: PoolState) -> list[Pubkey]:
        # The mints are read too, by the router (it needs their decimals and programs).
        return [state.amm_config, state.token_0_vault, state.token_1_vault]

    def pool_mints(self, state: PoolState) -> tuple[Pubkey, Pubkey]:
        return (state.token_0_mint, state.token_1_mint)

    @staticmethod
    def _direction(state: PoolState, mint_in: Pubkey) -> tuple[bool, Pubkey, Pubkey, Pubkey]:
        """(zero_for_one, input vault, output vault, output mint) for a swap of `mint_in`."""
        if mint_in == state.token_0_mint:
            return True, state.token_0_vault, state.token_1_vault, state.token_1_mint
        if mint_in == state.token_1_mint:
            return False, state.token_1_vault, state.token_0_vault, state.token_0_mint
        raise MintNotInPool(f"mint {mint_in} is not in pool {state.address}")

    @staticmethod
    def _check_tradable(state: PoolState, clock: Clock) -> None:
        """swap_base_input's first requires: the swap status bit, then the open time."""
        if not state.swap_enabled:
            raise PoolNotTradable(
                "disabled",
                f"pool {state.address} has swaps disabled (status {state.status})",
                programError="NotApproved",
            )
        if clock.unix_timestamp < state.open_time:
            raise PoolNotTradable(
                "not_open",
                f"pool {state.address} opens at {iso_utc(state.open_time)}",
                opensAt=iso_utc(state.open_time),
                programError="NotApproved",
            )

    def quote(
        self,
        state: PoolState,
        data_by_pubkey: dict[Pubkey, bytes],
        mint_in: Pubkey,
        amount_in: int,
        clock: Clock,
    ) -> Quote:
        """What `swap_base_input(amount_in, 0)` would pay the user at `clock`."""
        if not 0 < amount_in <= U64_MAX:
            raise InvalidAmount(f"amount_in {amount_in} is not a u64 greater than zero")
        zero_for_one, vault_in, vault_out, mint_out = self._direction(state, mint_in)
        self._check_tradable(state, clock)
        needed = (state.amm_config, vault_in, vault_out, mint_in, mint_out)
        missing = [str(k) for k in needed if k not in data_by_pubkey]
        if missing:
            raise MissingAccount(f"accounts needed to quote are missing: {missing}")
        config = decode_amm_config(data_by_pubkey[state.amm_config])
        mints = {
            m: t22.accepted_mint(m, data_by_pubkey[m], ACCEPTED_EXTENSIONS, "Raydium CPMM")
            for m in (mint_in, mint_out)
        }

        transfer_fee_in = mints[mint_in].transfer_fee_for(clock.epoch, amount_in)
        actual_in = max(amount_in - transfer_fee_in, 0)  # saturating_sub
        if actual_in == 0:
            raise PoolNotTradable(
                "no_output",
                "nothing is left to swap after the input's transfer fee",
                programError="RequireGtViolated",
            )
        index_in = 0 if zero_for_one else 1
        vault_amounts = (
            token_account_amount(data_by_pubkey[vault_in]),
            token_account_amount(data_by_pubkey[vault_out]),
        )
        reserve_in = vault_amounts[0] - state.fees_owed(index_in)
        reserve_out = vault_amounts[1] - state.fees_owed(1 - index_in)
        if reserve_in < 0 or reserve_out < 0:
            raise PoolNotTradable(
                "below_min_liquidity",
                f"pool {state.address} owes more fees than its vaults hold",
                programError="InsufficientVault",
            )
        if reserve_in == 0 or reserve_out == 0:
            # token_price_x32 divides by each reserve: the program panics on an empty one.
            raise PoolNotTradable("below_min_liquidity", f"pool {state.address} is empty")
        creator_on_input = state.is_creator_fee_on_input(zero_for_one)
        creator_rate = config.creator_fee_rate if state.enable_creator_fee else 0
        result = swap_base_input(
            actual_in, reserve_in, reserve_out, config, creator_rate, creator_on_input
        )
        if result is None:
            raise PoolNotTradable(
                "disabled",
                f"pool {state.address}'s fee rates make every swap fail (ZeroTradingTokens)",
                programError="ZeroTradingTokens",
            )
        transfer_fee_out = mints[mint_out].transfer_fee_for(clock.epoch, result.output_amount)
        received = result.output_amount - transfer_fee_out
        if received <= 0:
            raise PoolNotTradable(
                "no_output",
                f"{amount_in} units buy nothing from pool {state.address}",
                programError="RequireGtViolated",
            )
        fee = result.trade_fee + (result.creator_fee if creator_on_input else 0)
        if not creator_on_input and result.output_amount_swapped:
            # The output-side creator fee in input units at this trade's own average rate.
            fee += result.creator_fee * actual_in // result.output_amount_swapped
        net = result.input_amount_less_fees
        # At the spot price net would buy net * reserve_out / reserve_in; the curve gives that
        # times reserve_in / (reserve_in + net), so the shortfall is this fraction.
        impact = 100.0 * net / (reserve_in + net) if net > 0 else 0.0
        return Quote(
            amount_out=received,
            fee_amount=fee,
            price_impact_pct=impact,
            transfer_fee_in=transfer_fee_in,
            transfer_fee_out=transfer_fee_out,
            notes={
                "tradeFeeRate": config.trade_fee_rate,
                "creatorFeeRate": creator_rate,
                "creatorFeeOnInput": creator_on_input,
            },
        )

    def quote_exact_out(
        self,
        state: PoolState,
        data_by_pubkey: dict[Pubkey, bytes],
        mint_in: Pubkey,
        amount_out: int,
        clock: Clock,
    ) -> ExactOutQuote:
        """What `swap_base_output` takes from the user for exactly `amount_out` received, at
        `clock` (swap_base_output.rs): the output's inverse transfer fee added, the curve's
        inverse with the creator fee on either side, the trade fee grossed up (rounded up),
        then the input's inverse transfer fee added."""
        if not 0 < amount_out <= U64_MAX:
            raise InvalidAmount(f"amount_out {amount_out} is not a u64 greater than zero")
        zero_for_one, vault_in, vault_out, mint_out = self._direction(state, mint_in)
        self._check_tradable(state, clock)
        needed = (state.amm_config, vault_in, vault_out, mint_in, mint_out)
        missing = [str(k) for k in needed if k not in data_by_pubkey]
        if missing:
            raise MissingAccount(f"accounts needed to quote are missing: {missing}")
        config = decode_amm_config(data_by_pubkey[state.amm_config])
        mints = {
            m: t22.accepted_mint(m, data_by_pubkey[m], ACCEPTED_EXTENSIONS, "Raydium CPMM")
            for m in (mint_in, mint_out)
        }
        fee_out = mints[mint_out].inverse_transfer_fee_for(clock.epoch, amount_out)
        if fee_out is None:
            raise PoolNotTradable(
                "disabled",
                "the output mint's transfer fee cannot be inverted for this amount",
                programError="TransferFeeCalculateNotMatch",
            )
        index_in = 0 if zero_for_one else 1
        reserve_in = token_account_amount(data_by_pubkey[vault_in]) - state.fees_owed(index_in)
        reserve_out = token_account_amount(data_by_pubkey[vault_out]) - state.fees_owed(
            1 - index_in
        )
        if reserve_in <= 0 or reserve_out <= 0:
            raise PoolNotTradable("below_min_liquidity", f"pool {state.address} is empty")
        creator_on_input = state.is_creator_fee_on_input(zero_for_one)
        creator_rate = config.creator_fee_rate if state.enable_creator_fee else 0
        result = swap_base_output(
            amount_out + fee_out, reserve_in, reserve_out, config, creator_rate, creator_on_input
        )
        if result is None:
            raise PoolNotTradable(
                "below_min_liquidity",
                f"pool {state.address} holds too little to pay {amount_out}",
                programError="ArithmeticOverflow",
            )
        curve_in, trade_fee, creator_fee = result
        fee_in = mints[mint_in].inverse_transfer_fee_for(clock.epoch, curve_in)
        if fee_in is None:
            raise PoolNotTradable(
                "disabled",
                "the input mint's transfer fee cannot be inverted for this amount",
                programError="TransferFeeCalculateNotMatch",
            )
        amount_in = curve_in + fee_in
        if amount_in > U64_MAX:
            raise InvalidAmount(f"{amount_out} would cost more than a u64 of input")
        fee = trade_fee + (creator_fee if creator_on_input else 0)
        return ExactOutQuote(amount_in, amount_out, fee, fee_in, fee_out)

    def swap_exact_out_instruction(
        self,
        state: PoolState,
        user: Pubkey,
        ata_in: Pubkey,
        ata_out: Pubkey,
        mint_in: Pubkey,
        amount_out: int,
        max_amount_in: int,
    ) -> Instruction:
        """`swap_base_output(max_amount_in, amount_out)`: the same accounts as the exact-in
        swap."""
        exact_in = self.swap_instruction(state, user, ata_in, ata_out, mint_in, 0, 0)
        data = SWAP_BASE_OUTPUT_DISCRIMINATOR + struct.pack("<QQ", max_amount_in, amount_out)
        return Instruction(exact_in.program_id, data, exact_in.accounts)

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
            raise MintNotInPool(f"mint {mint_in} is not in pool {state.address}")
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
