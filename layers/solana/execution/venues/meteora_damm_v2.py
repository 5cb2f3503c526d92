"""Meteora DAMM v2 (cp-amm): pool decoding, exact-input quotes and the `swap` instruction.

Layouts and math follow MeteoraAg/damm-v2, programs/cp-amm/src:
- state/pool.rs: `Pool` is zero-copy (repr C), 1104 bytes plus the 8-byte discriminator;
- state/fee.rs: PoolFeesStruct (160 bytes) = BaseFeeStruct (40) + fee percents + DynamicFeeStruct;
  fees are ceil(amount * numerator / 1e9); `FeeMode::get_fee_mode` picks input or output side;
- base_fee/fee_time_scheduler.rs: the fee is the cliff numerator when period_frequency is 0;
- curve.rs: Q64.64 sqrt prices, next price from input, delta amounts and their rounding;
- instructions/swap/ix_swap.rs, ix_p_swap.rs, swap_exact_in.rs: accounts and the slippage check;
- constants.rs: MIN/MAX_SQRT_PRICE, FEE_DENOMINATOR, max fee numerator per pool version.

Quotes support collect fee modes BothToken (0) and OnlyB (1), a static base fee and no dynamic
fee. Anything else raises ValueError("unsupported ...") rather than quoting a wrong number.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from fractions import Fraction

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from execution.venues import Quote


def _anchor_discriminator(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


POOL_DISCRIMINATOR = _anchor_discriminator("account:Pool")
SWAP_DISCRIMINATOR = _anchor_discriminator("global:swap")

# Pool byte offsets, discriminator included (state/pool.rs, state/fee.rs).
POOL_LEN = 8 + 1104
POOL_FEES_OFFSET = 8
# BaseFeeStruct at the start of PoolFeesStruct: cliff_fee_numerator u64, base_fee_mode u8,
# 5 padding bytes, then the scheduler's number_of_period u16, period_frequency u64,
# reduction_factor u64 (first/second/third "factor" in older sources).
CLIFF_FEE_NUMERATOR_OFFSET = POOL_FEES_OFFSET + 0
BASE_FEE_MODE_OFFSET = POOL_FEES_OFFSET + 8
NUMBER_OF_PERIOD_OFFSET = POOL_FEES_OFFSET + 14
PERIOD_FREQUENCY_OFFSET = POOL_FEES_OFFSET + 16
REDUCTION_FACTOR_OFFSET = POOL_FEES_OFFSET + 24
PROTOCOL_FEE_PERCENT_OFFSET = POOL_FEES_OFFSET + 40
PARTNER_FEE_PERCENT_OFFSET = POOL_FEES_OFFSET + 41
REFERRAL_FEE_PERCENT_OFFSET = POOL_FEES_OFFSET + 42
DYNAMIC_FEE_INITIALIZED_OFFSET = POOL_FEES_OFFSET + 48
TOKEN_A_MINT_OFFSET = 168
TOKEN_B_MINT_OFFSET = 200
TOKEN_A_VAULT_OFFSET = 232
TOKEN_B_VAULT_OFFSET = 264
WHITELISTED_VAULT_OFFSET = 296
PARTNER_OFFSET = 328
LIQUIDITY_OFFSET = 360
PROTOCOL_A_FEE_OFFSET = 392
PROTOCOL_B_FEE_OFFSET = 400
PARTNER_A_FEE_OFFSET = 408
PARTNER_B_FEE_OFFSET = 416
SQRT_MIN_PRICE_OFFSET = 424
SQRT_MAX_PRICE_OFFSET = 440
SQRT_PRICE_OFFSET = 456
ACTIVATION_POINT_OFFSET = 472
ACTIVATION_TYPE_OFFSET = 480
POOL_STATUS_OFFSET = 481
TOKEN_A_FLAG_OFFSET = 482
TOKEN_B_FLAG_OFFSET = 483
COLLECT_FEE_MODE_OFFSET = 484
POOL_TYPE_OFFSET = 485
VERSION_OFFSET = 486
FEE_A_PER_LIQUIDITY_OFFSET = 488
FEE_B_PER_LIQUIDITY_OFFSET = 520
PERMANENT_LOCK_LIQUIDITY_OFFSET = 552
METRICS_OFFSET = 568
CREATOR_OFFSET = 648

FEE_DENOMINATOR = 1_000_000_000
MAX_FEE_NUMERATOR_BY_VERSION = {0: 500_000_000, 1: 990_000_000}
MIN_SQRT_PRICE = 4295048016
MAX_SQRT_PRICE = 79226673521066979257578248091
RESOLUTION = 64
LIQUIDITY_SCALE = 128
U64_MAX = (1 << 64) - 1

COLLECT_FEE_BOTH_TOKEN = 0  # fee taken from the output token
COLLECT_FEE_ONLY_B = 1  # fee always in token B: on input for B->A, on output for A->B
BASE_FEE_TIME_SCHEDULER_MODES = (0, 1)  # linear, exponential
POOL_STATUS_ENABLED = 0

POOL_AUTHORITY_SEED = b"pool_authority"
EVENT_AUTHORITY_SEED = b"__event_authority"
TOKEN_VAULT_SEED = b"token_vault"

# error.rs PoolError, numbered from 6000 in declaration order.
MATH_OVERFLOW = 6000
EXCEEDED_SLIPPAGE = 6002
POOL_DISABLED = 6003
AMOUNT_IS_ZERO = 6006
PRICE_RANGE_VIOLATION = 6015
INVALID_COLLECT_FEE_MODE = 6017
INVALID_INPUT = 6018
INVALID_POOL_VERSION = 6052


def _uint(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


def _key(data: bytes, offset: int) -> Pubkey:
    return Pubkey.from_bytes(data[offset : offset + 32])


@dataclass(frozen=True)
class PoolState:
    address: Pubkey
    program_id: Pubkey
    token_a_mint: Pubkey
    token_b_mint: Pubkey
    token_a_vault: Pubkey
    token_b_vault: Pubkey
    partner: Pubkey
    liquidity: int
    sqrt_min_price: int
    sqrt_max_price: int
    sqrt_price: int
    activation_point: int
    pool_status: int
    token_a_flag: int
    token_b_flag: int
    collect_fee_mode: int
    version: int
    cliff_fee_numerator: int
    base_fee_mode: int
    number_of_period: int
    period_frequency: int
    reduction_factor: int
    protocol_fee_percent: int
    partner_fee_percent: int
    referral_fee_percent: int
    dynamic_fee_enabled: bool

    @property
    def token_a_program(self) -> Pubkey:
        return TOKEN_2022_PROGRAM_ID if self.token_a_flag else TOKEN_PROGRAM_ID

    @property
    def token_b_program(self) -> Pubkey:
        return TOKEN_2022_PROGRAM_ID if self.token_b_flag else TOKEN_PROGRAM_ID


def decode(data: bytes, owner: Pubkey, address: Pubkey) -> PoolState:
    if len(data) < POOL_LEN or data[:8] != POOL_DISCRIMINATOR:
        raise ValueError("not a Meteora DAMM v2 Pool account")
    return PoolState(
        address=address,
        program_id=owner,
        token_a_mint=_key(data, TOKEN_A_MINT_OFFSET),
        token_b_mint=_key(data, TOKEN_B_MINT_OFFSET),
        token_a_vault=_key(data, TOKEN_A_VAULT_OFFSET),
        token_b_vault=_key(data, TOKEN_B_VAULT_OFFSET),
        partner=_key(data, PARTNER_OFFSET),
        liquidity=_uint(data, LIQUIDITY_OFFSET, 16),
        sqrt_min_price=_uint(data, SQRT_MIN_PRICE_OFFSET, 16),
        sqrt_max_price=_uint(data, SQRT_MAX_PRICE_OFFSET, 16),
        sqrt_price=_uint(data, SQRT_PRICE_OFFSET, 16),
        activation_point=_uint(data, ACTIVATION_POINT_OFFSET, 8),
        pool_status=data[POOL_STATUS_OFFSET],
        token_a_flag=data[TOKEN_A_FLAG_OFFSET],
        token_b_flag=data[TOKEN_B_FLAG_OFFSET],
        collect_fee_mode=data[COLLECT_FEE_MODE_OFFSET],
        version=data[VERSION_OFFSET],
        cliff_fee_numerator=_uint(data, CLIFF_FEE_NUMERATOR_OFFSET, 8),
        base_fee_mode=data[BASE_FEE_MODE_OFFSET],
        number_of_period=_uint(data, NUMBER_OF_PERIOD_OFFSET, 2),
        period_frequency=_uint(data, PERIOD_FREQUENCY_OFFSET, 8),
        reduction_factor=_uint(data, REDUCTION_FACTOR_OFFSET, 8),
        protocol_fee_percent=data[PROTOCOL_FEE_PERCENT_OFFSET],
        partner_fee_percent=data[PARTNER_FEE_PERCENT_OFFSET],
        referral_fee_percent=data[REFERRAL_FEE_PERCENT_OFFSET],
        dynamic_fee_enabled=data[DYNAMIC_FEE_INITIALIZED_OFFSET] != 0,
    )


def pool_authority(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([POOL_AUTHORITY_SEED], program_id)[0]


def event_authority(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([EVENT_AUTHORITY_SEED], program_id)[0]


def _trade_fee_numerator(state: PoolState) -> int:
    if state.dynamic_fee_enabled:
        raise ValueError("unsupported: DAMM v2 pool with the dynamic fee enabled")
    if state.base_fee_mode not in BASE_FEE_TIME_SCHEDULER_MODES:
        raise ValueError(f"unsupported: DAMM v2 base fee mode {state.base_fee_mode}")
    # A scheduler with no periods (or no reduction) sits at the cliff fee forever; a live one
    # depends on the cluster clock, which a quote from account data alone cannot see.
    if state.period_frequency and state.number_of_period and state.reduction_factor:
        raise ValueError("unsupported: DAMM v2 pool with an active fee scheduler")
    if state.version not in MAX_FEE_NUMERATOR_BY_VERSION:
        raise ValueError(f"unsupported: DAMM v2 pool version {state.version}")
    return min(state.cliff_fee_numerator, MAX_FEE_NUMERATOR_BY_VERSION[state.version])


def _fee(amount: int, numerator: int) -> int:
    return -(-amount * numerator // FEE_DENOMINATOR)


def _a_to_b_output(state: PoolState, amount_in: int) -> tuple[int, int]:
    """Output (token B, before an output fee) and the next sqrt price for `amount_in` of A."""
    sp, liq = state.sqrt_price, state.liquidity
    if amount_in == 0:
        return 0, sp
    # curve.rs get_next_sqrt_price_from_amount_a_rounding_up: sqrt(P') = L*sqrt(P)/(L + dx*sqrt(P))
    denominator = liq + amount_in * sp
    next_sp = -(-liq * sp // denominator)
    if next_sp < state.sqrt_min_price:
        raise ValueError("the trade moves the price past the pool's minimum")
    # get_delta_amount_b_unsigned, rounding down: L * (sqrt(P) - sqrt(P')) >> 128
    out = (liq * (sp - next_sp)) >> (RESOLUTION * 2)
    return out, next_sp


def _b_to_a_output(state: PoolState, amount_in: int) -> tuple[int, int]:
    """Output (token A, before an output fee) and the next sqrt price for `amount_in` of B."""
    sp, liq = state.sqrt_price, state.liquidity
    # get_next_sqrt_price_from_amount_b_rounding_down: sqrt(P') = sqrt(P) + (dy << 128) / L
    next_sp = sp + (amount_in << (RESOLUTION * 2)) // liq
    if next_sp > state.sqrt_max_price:
        raise ValueError("the trade moves the price past the pool's maximum")
    # get_delta_amount_a_unsigned, rounding down: L * (sqrt(P') - sqrt(P)) / (sqrt(P) * sqrt(P'))
    out = liq * (next_sp - sp) // (sp * next_sp)
    return out, next_sp


class MeteoraDammV2:
    compute_units = 70_000

    def decode_pool(self, data: bytes, owner: Pubkey, address: Pubkey) -> PoolState:
        return decode(data, owner, address)

    def dependent_accounts(self, state: PoolState) -> list[Pubkey]:
        return []  # sqrt price, liquidity and fees all live in the pool account

    def pool_mints(self, state: PoolState) -> tuple[Pubkey, Pubkey]:
        return (state.token_a_mint, state.token_b_mint)

    def quote(
        self, state: PoolState, data_by_pubkey: dict[Pubkey, bytes], mint_in: Pubkey, amount_in: int
    ) -> Quote:
        if amount_in < 0:
            raise ValueError("amount_in must not be negative")
        if state.pool_status != POOL_STATUS_ENABLED:
            raise ValueError("the pool is disabled")
        if state.liquidity == 0 or state.sqrt_price == 0:
            raise ValueError("the pool has no liquidity")
        if mint_in == state.token_a_mint:
            a_to_b = True
        elif mint_in == state.token_b_mint:
            a_to_b = False
        else:
            raise ValueError(f"mint {mint_in} is not in pool {state.address}")
        if state.collect_fee_mode == COLLECT_FEE_BOTH_TOKEN:
            fees_on_input = False
        elif state.collect_fee_mode == COLLECT_FEE_ONLY_B:
            fees_on_input = not a_to_b
        else:
            raise ValueError(f"unsupported: DAMM v2 collect fee mode {state.collect_fee_mode}")
        numerator = _trade_fee_numerator(state)

        input_fee = _fee(amount_in, numerator) if fees_on_input else 0
        curve_in = amount_in - input_fee
        gross_out, _ = (_a_to_b_output if a_to_b else _b_to_a_output)(state, curve_in)
        if gross_out > U64_MAX:
            raise ValueError("the output overflows u64")
        output_fee = 0 if fees_on_input else _fee(gross_out, numerator)
        amount_out = gross_out - output_fee

        if fees_on_input:
            fee_in_input_units = input_fee
        else:
            # Express the output-side fee in input units at this trade's own average rate.
            fee_in_input_units = output_fee * amount_in // gross_out if gross_out else 0

        # Spot price of A in B is (sqrt_price / 2^64)^2; compare the curve's output to the
        # output the same curve input would fetch at that price.
        price = Fraction(state.sqrt_price * state.sqrt_price, 1 << (RESOLUTION * 2))
        at_spot = curve_in * price if a_to_b else curve_in / price
        impact = float(max(Fraction(0), 1 - gross_out / at_spot) * 100) if at_spot else 0.0
        return Quote(amount_out=amount_out, fee_amount=fee_in_input_units, price_impact_pct=impact)

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
        if mint_in not in (state.token_a_mint, state.token_b_mint):
            raise ValueError(f"mint {mint_in} is not in pool {state.address}")
        program = state.program_id
        accounts = [
            AccountMeta(pool_authority(program), is_signer=False, is_writable=False),
            AccountMeta(state.address, is_signer=False, is_writable=True),
            AccountMeta(ata_in, is_signer=False, is_writable=True),
            AccountMeta(ata_out, is_signer=False, is_writable=True),
            AccountMeta(state.token_a_vault, is_signer=False, is_writable=True),
            AccountMeta(state.token_b_vault, is_signer=False, is_writable=True),
            AccountMeta(state.token_a_mint, is_signer=False, is_writable=False),
            AccountMeta(state.token_b_mint, is_signer=False, is_writable=False),
            AccountMeta(user, is_signer=True, is_writable=False),
            AccountMeta(state.token_a_program, is_signer=False, is_writable=False),
            AccountMeta(state.token_b_program, is_signer=False, is_writable=False),
            # Anchor encodes an absent optional account as the program id itself: no referral.
            AccountMeta(program, is_signer=False, is_writable=False),
            AccountMeta(event_authority(program), is_signer=False, is_writable=False),
            AccountMeta(program, is_signer=False, is_writable=False),
        ]
        data = SWAP_DISCRIMINATOR + struct.pack("<QQ", amount_in, min_out)
        return Instruction(program, data, accounts)


VENUE: MeteoraDammV2 = MeteoraDammV2()
