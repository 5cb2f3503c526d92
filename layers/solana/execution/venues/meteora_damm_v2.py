"""Meteora DAMM v2 (cp-amm 0.2.x): pool decoding, exact-input quotes and the `swap` instruction.

Ported from MeteoraAg/damm-v2 release 0.2.1, programs/cp-amm/src:
- state/pool.rs: `Pool` (zero copy, repr C, 1104 bytes after the discriminator; since 0.2.0 the
  partner key and partner fees are padding), `get_swap_result_from_exact_input`,
  `apply_swap_result`, `update_pre_swap`, `update_layout_version_if_needed`;
- state/fee.rs: `PoolFeesStruct` (160 bytes), `DynamicFeeStruct` (`update_references`,
  `get_variable_fee`), `FeeMode::get_fee_mode` per collect fee mode (0 both tokens, 1 only B,
  2 compounding), `get_excluded_fee_amount` (fee rounded up), `split_fees`;
- base_fee/: the base fee in every `BaseFeeMode`: time scheduler (linear, exponential), rate
  limiter, market-cap scheduler (linear, exponential), with math/fee_math.rs `get_fee_in_period`
  and its Q64.64 `pow`;
- liquidity_handler/: the concentrated (sqrt price) curve and the compounding (x * y = k) one;
- pool_action_access/permissionless.rs and utils/activation_handler.rs: swaps only while the
  status is enabled and the current point (slot or timestamp per `activation_type`) has reached
  `activation_point`; instructions/swap/: `ix_swap.rs` (accounts), `ix_p_swap.rs` (handler,
  rate limiter single-swap check through the instructions sysvar), `swap_exact_in.rs` (input
  transfer fee off first, minimum output checked after the output transfer fee);
- utils/token.rs: `calculate_transfer_fee_excluded_amount`, `is_supported_mint`;
- error.rs: `PoolError`, numbered from 6000 in declaration order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from execution.venues import (
    Clock,
    ExactOutQuote,
    InvalidAmount,
    MintNotInPool,
    MissingAccount,
    NotAPool,
    PoolNotTradable,
    Quote,
    SkipCode,
    iso_utc,
)
from execution.venues import token_2022 as t22


def _anchor_discriminator(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


PROGRAM_IDS = (Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"),)
POOL_DISCRIMINATOR = _anchor_discriminator("account:Pool")
SWAP_DISCRIMINATOR = _anchor_discriminator("global:swap")
SWAP2_DISCRIMINATOR = _anchor_discriminator("global:swap2")
SWAP_MODE_EXACT_OUT = 2  # ix_swap.rs SwapMode: ExactIn, PartialFill, ExactOut
SYSVAR_INSTRUCTIONS = Pubkey.from_string("Sysvar1nstructions1111111111111111111111111")

# Pool byte offsets, discriminator included (state/pool.rs, state/fee.rs, base_fee/*.rs).
POOL_LEN = 8 + 1104
POOL_FEES_OFFSET = 8
# BaseFeeInfo.data: cliff_fee_numerator u64, base_fee_mode u8, 5 bytes of padding, then the
# mode's own fields (see decode_base_fee).
BASE_FEE_INFO_OFFSET = POOL_FEES_OFFSET
PROTOCOL_FEE_PERCENT_OFFSET = POOL_FEES_OFFSET + 40
REFERRAL_FEE_PERCENT_OFFSET = POOL_FEES_OFFSET + 42
COMPOUNDING_FEE_BPS_OFFSET = POOL_FEES_OFFSET + 46
DYNAMIC_FEE_OFFSET = POOL_FEES_OFFSET + 48
INIT_SQRT_PRICE_OFFSET = POOL_FEES_OFFSET + 144
TOKEN_A_MINT_OFFSET = 168
TOKEN_B_MINT_OFFSET = 200
TOKEN_A_VAULT_OFFSET = 232
TOKEN_B_VAULT_OFFSET = 264
WHITELISTED_VAULT_OFFSET = 296
PADDING_0_OFFSET = 328  # the partner key before cp_amm 0.2.0
LIQUIDITY_OFFSET = 360
PROTOCOL_A_FEE_OFFSET = 392
PROTOCOL_B_FEE_OFFSET = 400
PADDING_2_OFFSET = 408  # the partner fees before cp_amm 0.2.0
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
FEE_VERSION_OFFSET = 486
FEE_A_PER_LIQUIDITY_OFFSET = 488
FEE_B_PER_LIQUIDITY_OFFSET = 520
PERMANENT_LOCK_LIQUIDITY_OFFSET = 552
METRICS_OFFSET = 568
CREATOR_OFFSET = 648
TOKEN_A_AMOUNT_OFFSET = 680
TOKEN_B_AMOUNT_OFFSET = 688
LAYOUT_VERSION_OFFSET = 696

FEE_DENOMINATOR = 1_000_000_000
MAX_BASIS_POINT = 10_000
MAX_FEE_NUMERATOR_BY_VERSION = {0: 500_000_000, 1: 990_000_000}  # constants.rs fee
MIN_SQRT_PRICE = 4295048016
MAX_SQRT_PRICE = 79226673521066979257578248091
RESOLUTION = 64
ONE_Q64 = 1 << 64
LIQUIDITY_SCALE = 128
U64_MAX = (1 << 64) - 1
U128_MAX = (1 << 128) - 1
U256_MAX = (1 << 256) - 1
MAX_EXPONENTIAL = 0x80000
MS_PER_SLOT = 400

# BaseFeeMode (state/fee.rs)
FEE_TIME_SCHEDULER_LINEAR = 0
FEE_TIME_SCHEDULER_EXPONENTIAL = 1
RATE_LIMITER = 2
FEE_MARKET_CAP_SCHEDULER_LINEAR = 3
FEE_MARKET_CAP_SCHEDULER_EXPONENTIAL = 4
# CollectFeeMode (state/pool.rs)
COLLECT_FEE_BOTH_TOKEN = 0
COLLECT_FEE_ONLY_B = 1
COLLECT_FEE_COMPOUNDING = 2
# ActivationType, PoolStatus, LayoutVersion
ACTIVATION_BY_SLOT = 0
ACTIVATION_BY_TIMESTAMP = 1
POOL_STATUS_ENABLED = 0
LAYOUT_V0 = 0
LAYOUT_V1 = 1

POOL_AUTHORITY_SEED = b"pool_authority"
EVENT_AUTHORITY_SEED = b"__event_authority"
TOKEN_VAULT_SEED = b"token_vault"

# error.rs PoolError: Anchor numbers #[error_code] variants from 6000 in declaration order.
ERRORS: dict[int, str] = {
    6000 + i: name
    for i, name in enumerate(
        (
            "MathOverflow",
            "InvalidFee",
            "ExceededSlippage",
            "PoolDisabled",
            "ExceedMaxFeeBps",
            "InvalidAdmin",
            "AmountIsZero",
            "TypeCastFailed",
            "UnableToModifyActivationPoint",
            "InvalidAuthorityToCreateThePool",
            "InvalidActivationType",
            "InvalidActivationPoint",
            "InvalidQuoteMint",
            "InvalidFeeCurve",
            "InvalidPriceRange",
            "PriceRangeViolation",
            "InvalidParameters",
            "InvalidCollectFeeMode",
            "InvalidInput",
            "CannotCreateTokenBadgeOnSupportedMint",
            "InvalidTokenBadge",
            "InvalidMinimumLiquidity",
            "InvalidVestingInfo",
            "InsufficientLiquidity",
            "InvalidVestingAccount",
            "InvalidPoolStatus",
            "UnsupportNativeMintToken2022",
            "InvalidRewardIndex",
            "InvalidRewardDuration",
            "RewardInitialized",
            "RewardUninitialized",
            "InvalidRewardVault",
            "MustWithdrawnIneligibleReward",
            "IdenticalRewardDuration",
            "RewardCampaignInProgress",
            "IdenticalFunder",
            "InvalidFunder",
            "RewardNotEnded",
            "FeeInverseIsIncorrect",
            "PositionIsNotEmpty",
            "InvalidPoolCreatorAuthority",
            "InvalidConfigType",
            "InvalidPoolCreator",
            "RewardVaultFrozenSkipRequired",
            "InvalidSplitPositionParameters",
            "UnsupportPositionHasVestingLock",
            "SamePosition",
            "InvalidBaseFeeMode",
            "InvalidFeeRateLimiter",
            "FailToValidateSingleSwapInstruction",
            "InvalidFeeTimeScheduler",
            "UndeterminedError",
            "InvalidPoolVersion",
            "InvalidAuthority",
            "InvalidPermission",
            "InvalidFeeMarketCapScheduler",
            "CannotUpdateBaseFee",
            "InvalidDynamicFeeParameters",
            "InvalidUpdatePoolFeesParameters",
            "MissingOperatorAccount",
            "IncorrectATA",
            "InvalidZapOutParameters",
            "InvalidWithdrawProtocolFeeZapAccounts",
            "MintRestrictedFromZap",
            "CpiDisabled",
            "MissingZapOutInstruction",
            "InvalidZapAccounts",
            "InvalidCompoundingFeeBps",
            "InvalidClaimProtocolFeeAccounts",
            "TransferFeeExcludedAmountIsZero",
        )
    )
}

# utils/token.rs is_supported_mint: TransferFeeConfig, MetadataPointer, TokenMetadata, and a
# TransferHook with neither program nor authority (other mints need a token badge, which lets
# any extension in; the engine still only quotes the ones it models).
ACCEPTED_EXTENSIONS = frozenset(
    t22.EXTENSION[name] for name in ("TransferFeeConfig", "MetadataPointer", "TokenMetadata")
)


class ProgramFailure(Exception):
    """The program's swap would fail with PoolError / framework error `name`; `skip` is the
    router's skip code for it (a pool state no swap gets through is `disabled`; amounts the
    curve cannot carry are `below_min_liquidity`)."""

    def __init__(self, name: str, skip: SkipCode = "below_min_liquidity") -> None:
        super().__init__(name)
        self.name = name
        self.skip = skip


def _uint(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


def _key(data: bytes, offset: int) -> Pubkey:
    return Pubkey.from_bytes(data[offset : offset + 32])


def _checked(value: int, limit: int, name: str = "MathOverflow") -> int:
    if value < 0 or value > limit:
        raise ProgramFailure(name)
    return value


@dataclass(frozen=True)
class BaseFee:
    """BaseFeeInfo.data read per its mode (the Pod-aligned structs of base_fee/*.rs)."""

    mode: int
    cliff_fee_numerator: int
    # time and market-cap schedulers
    number_of_period: int = 0
    period_frequency: int = 0
    reduction_factor: int = 0
    sqrt_price_step_bps: int = 0
    scheduler_expiration_duration: int = 0
    # rate limiter
    fee_increment_bps: int = 0
    max_limiter_duration: int = 0
    max_fee_bps: int = 0
    reference_amount: int = 0


def decode_base_fee(data: bytes) -> BaseFee:
    """32 bytes of BaseFeeInfo (a pool's at offset 8, a config's at offset 72)."""
    cliff, mode = struct.unpack_from("<QB", data, 0)
    if mode in (FEE_TIME_SCHEDULER_LINEAR, FEE_TIME_SCHEDULER_EXPONENTIAL):
        periods, frequency, reduction = struct.unpack_from("<HQQ", data, 14)
        return BaseFee(mode, cliff, periods, frequency, reduction)
    if mode == RATE_LIMITER:
        increment, duration, max_bps, reference = struct.unpack_from("<HIIQ", data, 14)
        return BaseFee(
            mode,
            cliff,
            fee_increment_bps=increment,
            max_limiter_duration=duration,
            max_fee_bps=max_bps,
            reference_amount=reference,
        )
    if mode in (FEE_MARKET_CAP_SCHEDULER_LINEAR, FEE_MARKET_CAP_SCHEDULER_EXPONENTIAL):
        periods, step_bps, expiration, reduction = struct.unpack_from("<HIIQ", data, 14)
        return BaseFee(
            mode,
            cliff,
            number_of_period=periods,
            reduction_factor=reduction,
            sqrt_price_step_bps=step_bps,
            scheduler_expiration_duration=expiration,
        )
    return BaseFee(mode, cliff)  # an unknown mode: swaps fail with InvalidBaseFeeMode


@dataclass(frozen=True)
class DynamicFee:
    """DynamicFeeStruct (96 bytes)."""

    initialized: int
    max_volatility_accumulator: int
    variable_fee_control: int
    bin_step: int
    filter_period: int
    decay_period: int
    reduction_factor: int
    last_update_timestamp: int
    bin_step_u128: int
    sqrt_price_reference: int
    volatility_accumulator: int
    volatility_reference: int

    @property
    def enabled(self) -> bool:
        return self.initialized != 0


def decode_dynamic_fee(data: bytes) -> DynamicFee:
    initialized = data[0]
    max_va, control, bin_step, filter_period, decay_period, reduction, last = struct.unpack_from(
        "<IIHHHHQ", data, 8
    )
    return DynamicFee(
        initialized,
        max_va,
        control,
        bin_step,
        filter_period,
        decay_period,
        reduction,
        last,
        _uint(data, 32, 16),
        _uint(data, 48, 16),
        _uint(data, 64, 16),
        _uint(data, 80, 16),
    )


@dataclass(frozen=True)
class PoolState:
    address: Pubkey
    program_id: Pubkey
    base_fee: BaseFee
    protocol_fee_percent: int
    referral_fee_percent: int
    compounding_fee_bps: int
    dynamic_fee: DynamicFee
    init_sqrt_price: int
    token_a_mint: Pubkey
    token_b_mint: Pubkey
    token_a_vault: Pubkey
    token_b_vault: Pubkey
    whitelisted_vault: Pubkey
    liquidity: int
    protocol_a_fee: int
    protocol_b_fee: int
    sqrt_min_price: int
    sqrt_max_price: int
    sqrt_price: int
    activation_point: int
    activation_type: int
    pool_status: int
    token_a_flag: int
    token_b_flag: int
    collect_fee_mode: int
    pool_type: int
    fee_version: int
    creator: Pubkey
    token_a_amount: int
    token_b_amount: int
    layout_version: int

    @property
    def token_a_program(self) -> Pubkey:
        return TOKEN_2022_PROGRAM_ID if self.token_a_flag else TOKEN_PROGRAM_ID

    @property
    def token_b_program(self) -> Pubkey:
        return TOKEN_2022_PROGRAM_ID if self.token_b_flag else TOKEN_PROGRAM_ID

    @property
    def uses_rate_limiter(self) -> bool:
        return self.base_fee.mode == RATE_LIMITER


def decode(data: bytes, owner: Pubkey, address: Pubkey) -> PoolState:
    if len(data) < POOL_LEN or data[:8] != POOL_DISCRIMINATOR:
        raise NotAPool(f"{address} is not a Meteora DAMM v2 Pool account")
    return PoolState(
        address=address,
        program_id=owner,
        base_fee=decode_base_fee(data[BASE_FEE_INFO_OFFSET : BASE_FEE_INFO_OFFSET + 32]),
        protocol_fee_percent=data[PROTOCOL_FEE_PERCENT_OFFSET],
        referral_fee_percent=data[REFERRAL_FEE_PERCENT_OFFSET],
        compounding_fee_bps=_uint(data, COMPOUNDING_FEE_BPS_OFFSET, 2),
        dynamic_fee=decode_dynamic_fee(data[DYNAMIC_FEE_OFFSET : DYNAMIC_FEE_OFFSET + 96]),
        init_sqrt_price=_uint(data, INIT_SQRT_PRICE_OFFSET, 16),
        token_a_mint=_key(data, TOKEN_A_MINT_OFFSET),
        token_b_mint=_key(data, TOKEN_B_MINT_OFFSET),
        token_a_vault=_key(data, TOKEN_A_VAULT_OFFSET),
        token_b_vault=_key(data, TOKEN_B_VAULT_OFFSET),
        whitelisted_vault=_key(data, WHITELISTED_VAULT_OFFSET),
        liquidity=_uint(data, LIQUIDITY_OFFSET, 16),
        protocol_a_fee=_uint(data, PROTOCOL_A_FEE_OFFSET, 8),
        protocol_b_fee=_uint(data, PROTOCOL_B_FEE_OFFSET, 8),
        sqrt_min_price=_uint(data, SQRT_MIN_PRICE_OFFSET, 16),
        sqrt_max_price=_uint(data, SQRT_MAX_PRICE_OFFSET, 16),
        sqrt_price=_uint(data, SQRT_PRICE_OFFSET, 16),
        activation_point=_uint(data, ACTIVATION_POINT_OFFSET, 8),
        activation_type=data[ACTIVATION_TYPE_OFFSET],
        pool_status=data[POOL_STATUS_OFFSET],
        token_a_flag=data[TOKEN_A_FLAG_OFFSET],
        token_b_flag=data[TOKEN_B_FLAG_OFFSET],
        collect_fee_mode=data[COLLECT_FEE_MODE_OFFSET],
        pool_type=data[POOL_TYPE_OFFSET],
        fee_version=data[FEE_VERSION_OFFSET],
        creator=_key(data, CREATOR_OFFSET),
        token_a_amount=_uint(data, TOKEN_A_AMOUNT_OFFSET, 8),
        token_b_amount=_uint(data, TOKEN_B_AMOUNT_OFFSET, 8),
        layout_version=data[LAYOUT_VERSION_OFFSET],
    )


def pool_authority(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([POOL_AUTHORITY_SEED], program_id)[0]


def event_authority(program_id: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([EVENT_AUTHORITY_SEED], program_id)[0]


# ------------------------------------------------------------------------- fee math (fee_math.rs)
def pow_q64(base: int, exp: int) -> int | None:
    """fee_math.rs `pow`: base^exp in Q64.64 by squaring, None where Rust's is None."""
    if exp == 0:
        return ONE_Q64
    invert = exp < 0
    exp = abs(exp)
    if exp >= MAX_EXPONENTIAL:
        return None
    squared = base
    if squared >= ONE_Q64:
        if squared == 0:
            return None
        squared = U128_MAX // squared
        invert = not invert
    result = _pow_by_squaring(squared, exp)
    if not result:  # None (overflow) or 0 are both Rust's None
        return None
    return U128_MAX // result if invert else result


def _pow_by_squaring(squared: int, exp: int) -> int | None:
    """The loop of fee_math.rs `pow`: result *= squared^(2^bit) for each set bit of `exp`,
    every product checked against u128 as Rust's checked_mul."""
    result = ONE_Q64
    for bit in range(19):  # 0x1 .. 0x40000
        if bit:
            squared = squared * squared
            if squared > U128_MAX:
                return None
            squared >>= RESOLUTION
        if exp & (1 << bit):
            product = result * squared
            if product > U128_MAX:
                return None
            result = product >> RESOLUTION
    return result


def fee_in_period(cliff_fee_numerator: int, reduction_factor: int, passed_period: int) -> int:
    """fee_math.rs get_fee_in_period: cliff * (1 - reduction / 10_000) ^ passed_period."""
    if reduction_factor == 0:
        return cliff_fee_numerator
    bps = (reduction_factor << RESOLUTION) // MAX_BASIS_POINT
    base = _checked(ONE_Q64 - bps, U128_MAX)
    result = pow_q64(base, passed_period)
    if result is None:
        raise ProgramFailure("MathOverflow")
    fee = _checked(result * cliff_fee_numerator, U128_MAX) >> RESOLUTION
    return _checked(fee, U64_MAX, "TypeCastFailed")


def _scheduled_fee(base_fee: BaseFee, period: int, linear: bool) -> int:
    """get_base_fee_numerator_by_period, shared by the time and market-cap schedulers."""
    period = min(period, base_fee.number_of_period)
    if linear:
        reduction = _checked(base_fee.reduction_factor * period, U64_MAX)
        return _checked(base_fee.cliff_fee_numerator - reduction, U64_MAX)
    return fee_in_period(base_fee.cliff_fee_numerator, base_fee.reduction_factor, period)


def time_scheduler_fee(base_fee: BaseFee, current_point: int, activation_point: int) -> int:
    """fee_time_scheduler.rs get_base_fee_numerator."""
    if base_fee.period_frequency == 0:
        return base_fee.cliff_fee_numerator
    if current_point < activation_point:  # the alpha vault buying before activation
        period = base_fee.number_of_period
    else:
        period = (current_point - activation_point) // base_fee.period_frequency
    return _scheduled_fee(base_fee, period, base_fee.mode == FEE_TIME_SCHEDULER_LINEAR)


def market_cap_scheduler_fee(
    base_fee: BaseFee,
    current_point: int,
    activation_point: int,
    init_sqrt_price: int,
    sqrt_price: int,
) -> int:
    """fee_market_cap_scheduler.rs get_base_fee_numerator: periods passed = price rise since
    init_sqrt_price in steps of sqrt_price_step_bps, until the scheduler expires."""
    expiration = _checked(activation_point + base_fee.scheduler_expiration_duration, U64_MAX)
    if current_point > expiration or current_point < activation_point:
        period = base_fee.number_of_period
    elif sqrt_price <= init_sqrt_price:
        period = 0
    else:
        if init_sqrt_price == 0 or base_fee.sqrt_price_step_bps == 0:
            raise ProgramFailure("MathOverflow")  # safe_div by zero
        passed = (sqrt_price - init_sqrt_price) * MAX_BASIS_POINT // init_sqrt_price
        period = min(passed // base_fee.sqrt_price_step_bps, base_fee.number_of_period)
    linear = base_fee.mode == FEE_MARKET_CAP_SCHEDULER_LINEAR
    return _scheduled_fee(base_fee, period, linear)


def _to_numerator(bps: int) -> int:
    """fee_parameters.rs to_numerator (bps over 10_000 as a fee numerator over 1e9)."""
    return _checked(bps * FEE_DENOMINATOR // MAX_BASIS_POINT, U64_MAX, "TypeCastFailed")


def rate_limiter_applies(
    base_fee: BaseFee, current_point: int, activation_point: int, a_to_b: bool
) -> bool:
    """fee_rate_limiter.rs is_rate_limiter_applied."""
    zero = not (
        base_fee.reference_amount
        or base_fee.max_limiter_duration
        or base_fee.max_fee_bps
        or base_fee.fee_increment_bps
    )
    if zero or a_to_b or current_point < activation_point:
        return False
    return current_point <= activation_point + base_fee.max_limiter_duration


def rate_limiter_fee(base_fee: BaseFee, input_amount: int) -> int:
    """fee_rate_limiter.rs get_fee_numerator_from_included_fee_amount: the fee rises by
    fee_increment_bps for every reference_amount of input above the first, up to max_fee_bps."""
    c = base_fee.cliff_fee_numerator
    x0 = base_fee.reference_amount
    if input_amount <= x0:
        return c
    max_fee_numerator = _to_numerator(base_fee.max_fee_bps)
    i = _to_numerator(base_fee.fee_increment_bps)
    delta = _checked(max_fee_numerator - c, U64_MAX)
    if i == 0:
        raise ProgramFailure("MathOverflow")  # get_max_index divides by the increment
    max_index = delta // i
    if x0 == 0:
        raise ProgramFailure("Panic")  # div_rem by a zero reference amount
    a, b = divmod(input_amount - x0, x0)
    if a < max_index:
        numerator_1 = c + c * a + i * a * (a + 1) // 2
        numerator_2 = c + i * (a + 1)
        trading_fee_numerator = x0 * numerator_1 + b * numerator_2
    else:
        numerator_1 = c + c * max_index + i * max_index * (max_index + 1) // 2
        left_amount = (a - max_index) * x0 + b
        trading_fee_numerator = x0 * numerator_1 + left_amount * max_fee_numerator
    trading_fee = -(-trading_fee_numerator // FEE_DENOMINATOR)
    _checked(trading_fee, U64_MAX, "TypeCastFailed")
    numerator = -(-trading_fee * FEE_DENOMINATOR // input_amount)
    return _checked(numerator, U64_MAX, "TypeCastFailed")


def base_fee_numerator(
    pool: PoolState, current_point: int, a_to_b: bool, included_fee_amount: int
) -> int:
    """BaseFeeHandler::get_base_fee_numerator_from_included_fee_amount for the pool's mode."""
    base_fee = pool.base_fee
    if base_fee.mode in (FEE_TIME_SCHEDULER_LINEAR, FEE_TIME_SCHEDULER_EXPONENTIAL):
        return time_scheduler_fee(base_fee, current_point, pool.activation_point)
    if base_fee.mode == RATE_LIMITER:
        if rate_limiter_applies(base_fee, current_point, pool.activation_point, a_to_b):
            return rate_limiter_fee(base_fee, included_fee_amount)
        return base_fee.cliff_fee_numerator
    if base_fee.mode in (FEE_MARKET_CAP_SCHEDULER_LINEAR, FEE_MARKET_CAP_SCHEDULER_EXPONENTIAL):
        return market_cap_scheduler_fee(
            base_fee, current_point, pool.activation_point, pool.init_sqrt_price, pool.sqrt_price
        )
    raise ProgramFailure("InvalidBaseFeeMode", "disabled")


def variable_fee(dynamic_fee: DynamicFee) -> int:
    """DynamicFeeStruct::get_variable_fee: ceil((volatility_accumulator * bin_step)^2 *
    variable_fee_control / 1e11), 0 when the dynamic fee is off."""
    if not dynamic_fee.enabled:
        return 0
    square = _checked(dynamic_fee.volatility_accumulator * dynamic_fee.bin_step, U128_MAX) ** 2
    _checked(square, U128_MAX, "TypeCastFailed")
    v_fee = _checked(square * dynamic_fee.variable_fee_control, U128_MAX)
    return _checked(v_fee + 99_999_999_999, U128_MAX) // 100_000_000_000


def update_references(dynamic_fee: DynamicFee, sqrt_price: int, timestamp: int) -> DynamicFee:
    """DynamicFeeStruct::update_references, run by update_pre_swap before every swap. It moves
    the references, not the accumulator: the fee of the swap itself does not change."""
    if not dynamic_fee.enabled:
        return dynamic_fee
    elapsed = max(timestamp - dynamic_fee.last_update_timestamp, 0)
    if elapsed < dynamic_fee.filter_period:
        return dynamic_fee
    if elapsed < dynamic_fee.decay_period:
        product = _checked(
            dynamic_fee.volatility_accumulator * dynamic_fee.reduction_factor, U128_MAX
        )
        reference = product // MAX_BASIS_POINT
    else:
        reference = 0
    return dataclasses.replace(
        dynamic_fee, sqrt_price_reference=sqrt_price, volatility_reference=reference
    )


def total_fee_numerator(pool: PoolState, base_numerator: int) -> int:
    """PoolFeesStruct::get_total_fee_numerator: base + variable, capped by the version's max."""
    if pool.fee_version not in MAX_FEE_NUMERATOR_BY_VERSION:
        raise ProgramFailure("InvalidPoolVersion", "disabled")
    total = _checked(variable_fee(pool.dynamic_fee) + base_numerator, U128_MAX)
    total = _checked(total, U64_MAX, "TypeCastFailed")
    return min(total, MAX_FEE_NUMERATOR_BY_VERSION[pool.fee_version])


def fee_mode(collect_fee_mode: int, a_to_b: bool) -> tuple[bool, bool]:
    """FeeMode::get_fee_mode: (fees_on_input, fees_on_token_a)."""
    if collect_fee_mode == COLLECT_FEE_BOTH_TOKEN:
        return False, not a_to_b
    if collect_fee_mode in (COLLECT_FEE_ONLY_B, COLLECT_FEE_COMPOUNDING):
        return not a_to_b, False
    raise ProgramFailure("TypeCastFailed", "disabled")  # not a CollectFeeMode


@dataclass(frozen=True)
class SplitFees:
    claiming: int
    compounding: int
    protocol: int
    referral: int

    @property
    def total(self) -> int:
        return self.claiming + self.compounding + self.protocol + self.referral


def split_fees(pool: PoolState, fee: int, has_referral: bool = False) -> SplitFees:
    """PoolFeesStruct::split_fees."""
    protocol = fee * pool.protocol_fee_percent // 100
    trading = _checked(fee - protocol, U64_MAX)
    if pool.compounding_fee_bps > 0:
        compounding = trading * pool.compounding_fee_bps // MAX_BASIS_POINT
        claiming = trading - compounding
    else:
        compounding, claiming = 0, trading
    referral = protocol * pool.referral_fee_percent // 100 if has_referral else 0
    return SplitFees(claiming, compounding, protocol - referral, referral)


def fee_on_amount(pool: PoolState, amount: int, numerator: int) -> tuple[int, SplitFees]:
    """get_fee_on_amount: (amount less the fee, the fee's split); the fee is rounded up."""
    fee = -(-amount * numerator // FEE_DENOMINATOR)
    return _checked(amount - fee, U64_MAX), split_fees(pool, fee)


def included_fee_amount(numerator: int, excluded_amount: int) -> tuple[int, int]:
    """PoolFeesStruct::get_included_fee_amount: (the amount that is `excluded_amount` once the
    fee at `numerator` is taken off, rounded up; the fee)."""
    denominator = _checked(FEE_DENOMINATOR - numerator, U64_MAX)
    if denominator == 0:
        raise ProgramFailure("MathOverflow")
    included = _checked(
        -(-excluded_amount * FEE_DENOMINATOR // denominator), U64_MAX, "TypeCastFailed"
    )
    return included, _checked(included - excluded_amount, U64_MAX)


def _limiter_excluded(base_fee: BaseFee, included: int) -> int:
    """PodAlignedFeeRateLimiter::get_excluded_fee_amount: `included` less its limiter fee."""
    numerator = rate_limiter_fee(base_fee, included)
    return _checked(included - -(-included * numerator // FEE_DENOMINATOR), U64_MAX)


def _limiter_increments_input(base_fee: BaseFee, excluded_amount: int) -> int:
    """The input (fee included) whose excluded part is `excluded_amount` along the rising
    increments: the quadratic's root i*x^2 - y*x + z = 0 (floor square root, as sqrt_u256),
    then the rest at the next increment's numerator."""
    c, x0 = base_fee.cliff_fee_numerator, base_fee.reference_amount
    i = _to_numerator(base_fee.fee_increment_bps)
    d = FEE_DENOMINATOR
    y = 2 * d * x0 + i * x0 - 2 * c * x0
    discriminant = y * y - 4 * i * (2 * excluded_amount * d * x0)
    if y < 0 or discriminant < 0 or x0 == 0 or i == 0:
        raise ProgramFailure("MathOverflow")
    included = (y - _isqrt(discriminant)) // (2 * i)
    first_excluded = _limiter_excluded(base_fee, _checked(included, U64_MAX, "TypeCastFailed"))
    remaining_excluded = _checked(excluded_amount - first_excluded, U64_MAX)
    remaining_numerator = _checked(c + i * (included // x0), U64_MAX, "TypeCastFailed")
    remaining_included, _ = included_fee_amount(remaining_numerator, remaining_excluded)
    return _checked(included + remaining_included, U64_MAX, "TypeCastFailed")


def rate_limiter_fee_from_excluded(base_fee: BaseFee, excluded_amount: int) -> int:
    """fee_rate_limiter.rs get_fee_numerator_from_excluded_fee_amount: the fee numerator of
    the input whose fee-excluded part is `excluded_amount` (the piecewise inverse of
    rate_limiter_fee: the cliff up to the reference amount, then the root of the quadratic the
    rising increments make, then the maximum fee past the last increment)."""
    c = base_fee.cliff_fee_numerator
    if excluded_amount <= _limiter_excluded(base_fee, base_fee.reference_amount):
        return c
    # get_checked_amounts: the input at the last increment (or u64::MAX past it)
    i = _to_numerator(base_fee.fee_increment_bps)
    max_fee_numerator = _to_numerator(base_fee.max_fee_bps)
    if i == 0:
        raise ProgramFailure("MathOverflow")
    max_index = _checked(max_fee_numerator - c, U64_MAX) // i
    checked_included = (max_index + 1) * base_fee.reference_amount
    is_overflow = checked_included > U64_MAX
    checked_included = min(checked_included, U64_MAX)
    checked_excluded = _limiter_excluded(base_fee, checked_included)
    if excluded_amount == checked_excluded:
        return rate_limiter_fee(base_fee, checked_included)
    if excluded_amount < checked_excluded:
        total_in = _limiter_increments_input(base_fee, excluded_amount)
    else:
        if is_overflow:
            raise ProgramFailure("MathOverflow")
        remaining_excluded = _checked(excluded_amount - checked_excluded, U64_MAX)
        remaining_included, _ = included_fee_amount(max_fee_numerator, remaining_excluded)
        total_in = _checked(remaining_included + checked_included, U64_MAX)
    trading_fee = _checked(total_in - excluded_amount, U64_MAX)
    if total_in == 0:
        raise ProgramFailure("MathOverflow")
    numerator = _checked(-(-trading_fee * FEE_DENOMINATOR // total_in), U64_MAX, "TypeCastFailed")
    if numerator < c:
        raise ProgramFailure("UndeterminedError")  # the program's sanity check
    return numerator


def base_fee_numerator_from_excluded(
    pool: PoolState, current_point: int, a_to_b: bool, excluded_fee_amount: int
) -> int:
    """BaseFeeHandler::get_base_fee_numerator_from_excluded_fee_amount for the pool's mode:
    only the rate limiter depends on the amount (its inverse); the schedulers are as for
    exact-in."""
    base_fee = pool.base_fee
    if base_fee.mode == RATE_LIMITER:
        if rate_limiter_applies(base_fee, current_point, pool.activation_point, a_to_b):
            return rate_limiter_fee_from_excluded(base_fee, excluded_fee_amount)
        return base_fee.cliff_fee_numerator
    return base_fee_numerator(pool, current_point, a_to_b, excluded_fee_amount)


# ----------------------------------------------------------------------- curves (liquidity_handler)
def _mul_div(x: int, y: int, denominator: int, round_up: bool) -> int:
    """u128x128_math mul_div_u256 (None above U256::MAX is MathOverflow)."""
    if denominator == 0:
        raise ProgramFailure("MathOverflow")
    quotient = -(-x * y // denominator) if round_up else x * y // denominator
    return _checked(quotient, U256_MAX)


def delta_amount_a(lower: int, upper: int, liquidity: int, round_up: bool) -> int:
    """get_delta_amount_a_unsigned: L * (upper - lower) / (lower * upper), as a u64."""
    return _checked(_mul_div(liquidity, upper - lower, lower * upper, round_up), U64_MAX)


def delta_amount_b(lower: int, upper: int, liquidity: int, round_up: bool) -> int:
    """get_delta_amount_b_unsigned: L * (upper - lower) / 2^128, as a u64."""
    product = liquidity * _checked(upper - lower, U128_MAX)
    result = -(-product >> LIQUIDITY_SCALE) if round_up else product >> LIQUIDITY_SCALE
    return _checked(result, U64_MAX)


def next_sqrt_price_from_input(sqrt_price: int, liquidity: int, amount: int, a_to_b: bool) -> int:
    """get_next_sqrt_price_from_input (A in: rounding up; B in: rounding down)."""
    if amount == 0:
        return sqrt_price
    if a_to_b:
        result = _mul_div(liquidity, sqrt_price, liquidity + amount * sqrt_price, round_up=True)
    else:
        result = sqrt_price + (amount << LIQUIDITY_SCALE) // liquidity
    return _checked(result, U128_MAX, "TypeCastFailed")


@dataclass(frozen=True)
class CurveResult:
    output_amount: int
    next_sqrt_price: int


def concentrated_swap(pool: PoolState, amount_in: int, a_to_b: bool) -> CurveResult:
    """ConcentratedLiquidity::calculate_{a_to_b,b_to_a}_from_amount_in."""
    sqrt_price, liquidity = pool.sqrt_price, pool.liquidity
    if sqrt_price == 0 or liquidity == 0:
        raise ProgramFailure("Panic")  # get_next_sqrt_price_from_input asserts both
    next_price = next_sqrt_price_from_input(sqrt_price, liquidity, amount_in, a_to_b)
    if a_to_b:
        if next_price < pool.sqrt_min_price:
            raise ProgramFailure("PriceRangeViolation")
        out = delta_amount_b(next_price, sqrt_price, liquidity, round_up=False)
    else:
        if next_price > pool.sqrt_max_price:
            raise ProgramFailure("PriceRangeViolation")
        out = delta_amount_a(sqrt_price, next_price, liquidity, round_up=False)
    return CurveResult(out, next_price)


def compounding_swap(token_a: int, token_b: int, amount_in: int, a_to_b: bool) -> int:
    """CompoundingLiquidity::calculate_*_from_amount_in: x * y = k on the stored reserves."""
    reserve_in, reserve_out = (token_a, token_b) if a_to_b else (token_b, token_a)
    denominator = _checked(reserve_in + amount_in, U64_MAX)
    if denominator == 0:
        raise ProgramFailure("MathOverflow")
    return _checked(reserve_out * amount_in // denominator, U64_MAX, "TypeCastFailed")


def _isqrt(value: int) -> int:
    from math import isqrt

    return isqrt(value)


def compounding_sqrt_price(token_a: int, token_b: int) -> int:
    """get_sqrt_price_from_amounts: sqrt((b << 128) / a)."""
    if token_a == 0:
        raise ProgramFailure("MathOverflow")
    return _checked(_isqrt((token_b << LIQUIDITY_SCALE) // token_a), U128_MAX, "TypeCastFailed")


def reserves_for_layout(pool: PoolState) -> tuple[int, int]:
    """update_layout_version_if_needed: a layout-0 pool's token amounts are recomputed from its
    curve before the swap (concentrated: get_reserves_amount)."""
    if pool.layout_version == LAYOUT_V1:
        return pool.token_a_amount, pool.token_b_amount
    if pool.layout_version != LAYOUT_V0:
        raise ProgramFailure("TypeCastFailed", "disabled")  # not a LayoutVersion
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        return pool.token_a_amount, pool.token_b_amount
    return (
        delta_amount_a(pool.sqrt_price, pool.sqrt_max_price, pool.liquidity, round_up=True),
        delta_amount_b(pool.sqrt_min_price, pool.sqrt_price, pool.liquidity, round_up=True),
    )


def concentrated_input_for_output(pool: PoolState, amount_out: int, a_to_b: bool) -> int:
    """ConcentratedLiquidity::calculate_{a_to_b,b_to_a}_from_amount_out: the next price moved
    by the output (B out: rounding down; A out: rounding up), then the input rounded up."""
    sqrt_price, liquidity = pool.sqrt_price, pool.liquidity
    if sqrt_price == 0 or liquidity == 0:
        raise ProgramFailure("Panic")  # get_next_sqrt_price_from_output asserts both
    if amount_out == 0:
        next_price = sqrt_price
    elif a_to_b:
        quotient = -(-(amount_out << LIQUIDITY_SCALE) // liquidity)
        next_price = _checked(sqrt_price - quotient, U256_MAX)
        next_price = _checked(next_price, U128_MAX, "TypeCastFailed")
    else:
        product = amount_out * sqrt_price
        denominator = _checked(liquidity - product, U256_MAX)
        next_price = _mul_div(liquidity, sqrt_price, denominator, round_up=True)
        next_price = _checked(next_price, U128_MAX, "TypeCastFailed")
    if a_to_b:
        if next_price < pool.sqrt_min_price:
            raise ProgramFailure("PriceRangeViolation")
        if next_price == 0:
            raise ProgramFailure("Panic")  # get_delta_amount_a asserts a non-zero denominator
        return delta_amount_a(next_price, sqrt_price, liquidity, round_up=True)
    if next_price > pool.sqrt_max_price:
        raise ProgramFailure("PriceRangeViolation")
    return delta_amount_b(sqrt_price, next_price, liquidity, round_up=True)


def compounding_input_for_output(token_a: int, token_b: int, amount_out: int, a_to_b: bool) -> int:
    """CompoundingLiquidity::calculate_*_from_amount_out: ceil(x * dy / (y - dy))."""
    reserve_in, reserve_out = (token_a, token_b) if a_to_b else (token_b, token_a)
    denominator = _checked(reserve_out - amount_out, U64_MAX)
    if denominator == 0:
        raise ProgramFailure("MathOverflow")
    return _checked(-(-reserve_in * amount_out // denominator), U64_MAX, "TypeCastFailed")


@dataclass(frozen=True)
class ExactOutResult:
    """get_swap_result_from_exact_output: what the curve takes and the fees."""

    included_fee_input_amount: int  # what the vault receives (fee included when on input)
    excluded_fee_input_amount: int  # what the curve takes
    fees: SplitFees
    fees_on_input: bool
    trade_fee_numerator: int


def swap_exact_out(
    pool: PoolState, amount_out: int, a_to_b: bool, current_point: int
) -> ExactOutResult:
    """Pool::get_swap_result_from_exact_output for `amount_out` leaving the vault, then
    apply_swap_result's arithmetic (whose overflows also fail the swap)."""
    fees_on_input, fees_on_token_a = fee_mode(pool.collect_fee_mode, a_to_b)
    token_a, token_b = reserves_for_layout(pool)
    fees = SplitFees(0, 0, 0, 0)
    numerator = 0
    included_out = amount_out
    if not fees_on_input:
        base = base_fee_numerator_from_excluded(pool, current_point, a_to_b, amount_out)
        numerator = total_fee_numerator(pool, base)
        included_out, fee = included_fee_amount(numerator, amount_out)
        fees = split_fees(pool, fee)
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        curve_in = compounding_input_for_output(token_a, token_b, included_out, a_to_b)
    else:
        curve_in = concentrated_input_for_output(pool, included_out, a_to_b)
    included_in = curve_in
    if fees_on_input:
        base = base_fee_numerator_from_excluded(pool, current_point, a_to_b, curve_in)
        numerator = total_fee_numerator(pool, base)
        included_in, fee = included_fee_amount(numerator, curve_in)
        fees = split_fees(pool, fee)
    # apply_swap_result
    if pool.liquidity == 0:
        raise ProgramFailure("MathOverflow")
    owed = pool.protocol_a_fee if fees_on_token_a else pool.protocol_b_fee
    _checked(owed + fees.protocol, U64_MAX)
    leaving = amount_out if fees_on_input else amount_out + fees.total
    if a_to_b:
        token_a = _checked(token_a + curve_in, U64_MAX)
        token_b = _checked(token_b - leaving, U64_MAX)
    else:
        token_b = _checked(token_b + curve_in, U64_MAX)
        token_a = _checked(token_a - leaving, U64_MAX)
    token_b = _checked(token_b + fees.compounding, U64_MAX)
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        compounding_sqrt_price(token_a, token_b)
    return ExactOutResult(included_in, curve_in, fees, fees_on_input, numerator)


@dataclass(frozen=True)
class SwapResult:
    """get_swap_result_from_exact_input plus what apply_swap_result checks."""

    excluded_fee_input_amount: int  # what the curve receives
    curve_output: int  # what leaves the curve
    output_amount: int  # what the vault sends (fee deducted when it is on the output)
    fees: SplitFees
    fees_on_input: bool
    trade_fee_numerator: int
    next_sqrt_price: int


def swap_exact_in(pool: PoolState, amount_in: int, a_to_b: bool, current_point: int) -> SwapResult:
    """Pool::get_swap_result_from_exact_input, then apply_swap_result's arithmetic (whose
    underflows also fail the swap)."""
    fees_on_input, fees_on_token_a = fee_mode(pool.collect_fee_mode, a_to_b)
    token_a, token_b = reserves_for_layout(pool)
    base = base_fee_numerator(pool, current_point, a_to_b, amount_in)
    numerator = total_fee_numerator(pool, base)
    fees = SplitFees(0, 0, 0, 0)
    curve_in = amount_in
    if fees_on_input:
        curve_in, fees = fee_on_amount(pool, amount_in, numerator)
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        curve = CurveResult(compounding_swap(token_a, token_b, curve_in, a_to_b), 0)
    else:
        curve = concentrated_swap(pool, curve_in, a_to_b)
    output = curve.output_amount
    if not fees_on_input:
        output, fees = fee_on_amount(pool, curve.output_amount, numerator)
    # apply_swap_result: fee growth per liquidity (shl_div_256 by the liquidity), protocol fee
    # owed, then the reserves move by what entered and everything that left.
    if pool.liquidity == 0:
        raise ProgramFailure("MathOverflow")
    owed = pool.protocol_a_fee if fees_on_token_a else pool.protocol_b_fee
    _checked(owed + fees.protocol, U64_MAX)
    leaving = output if fees_on_input else output + fees.total
    if a_to_b:
        token_a = _checked(token_a + curve_in, U64_MAX)
        token_b = _checked(token_b - leaving, U64_MAX)
    else:
        token_b = _checked(token_b + curve_in, U64_MAX)
        token_a = _checked(token_a - leaving, U64_MAX)
    token_b = _checked(token_b + fees.compounding, U64_MAX)
    next_price = curve.next_sqrt_price
    if pool.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
        next_price = compounding_sqrt_price(token_a, token_b)
    return SwapResult(
        curve_in, curve.output_amount, output, fees, fees_on_input, numerator, next_price
    )


def current_point(pool: PoolState, clock: Clock) -> int:
    """ActivationHandler::get_current_point: the slot or the unix timestamp."""
    if pool.activation_type == ACTIVATION_BY_SLOT:
        return clock.slot
    if pool.activation_type == ACTIVATION_BY_TIMESTAMP:
        return max(clock.unix_timestamp, 0)
    raise ProgramFailure("InvalidActivationType", "disabled")


class MeteoraDammV2:
    compute_units = 70_000

    def decode_pool(self, data: bytes, owner: Pubkey, address: Pubkey) -> PoolState:
        return decode(data, owner, address)

    def dependent_accounts(self, state: PoolState) -> list[Pubkey]:
        # Price, liquidity and fees live in the pool account; the router reads the mints and
        # the Clock sysvar in the same call.
        return []

    def pool_mints(self, state: PoolState) -> tuple[Pubkey, Pubkey]:
        return (state.token_a_mint, state.token_b_mint)

    def quote(
        self,
        state: PoolState,
        data_by_pubkey: dict[Pubkey, bytes],
        mint_in: Pubkey,
        amount_in: int,
        clock: Clock,
    ) -> Quote:
        """What `swap(amount_in, 0)` would pay the user in the slot of `clock`."""
        try:
            return self._quote(state, data_by_pubkey, mint_in, amount_in, clock)
        except ProgramFailure as failure:
            raise PoolNotTradable(
                failure.skip,
                f"a swap of {amount_in} on pool {state.address} fails with {failure.name}",
                programError=failure.name,
            ) from None

    @staticmethod
    def _direction(state: PoolState, mint_in: Pubkey) -> tuple[bool, Pubkey]:
        """(a_to_b, the output mint) for a swap of `mint_in`."""
        if mint_in == state.token_a_mint:
            return True, state.token_b_mint
        if mint_in == state.token_b_mint:
            return False, state.token_a_mint
        raise MintNotInPool(f"mint {mint_in} is not in pool {state.address}")

    @staticmethod
    def _mints(
        data_by_pubkey: dict[Pubkey, bytes], wanted: tuple[Pubkey, Pubkey]
    ) -> dict[Pubkey, t22.MintInfo]:
        """Both mints, parsed, each with extensions the program accepts (else not tradable)."""
        missing = [str(m) for m in wanted if m not in data_by_pubkey]
        if missing:
            raise MissingAccount(f"the mints are needed to quote: {missing}")
        return {
            m: t22.accepted_mint(
                m,
                data_by_pubkey[m],
                ACCEPTED_EXTENSIONS,
                "Meteora DAMM v2",
                inert_transfer_hook=True,
            )
            for m in wanted
        }

    @staticmethod
    def _fee_in_input_units(result: SwapResult, excluded_in: int) -> int:
        if result.fees_on_input:
            return result.fees.total
        if result.curve_output:
            # The output-side fee in input units at this trade's own average rate.
            return result.fees.total * excluded_in // result.curve_output
        return 0

    def _quote(
        self,
        state: PoolState,
        data_by_pubkey: dict[Pubkey, bytes],
        mint_in: Pubkey,
        amount_in: int,
        clock: Clock,
    ) -> Quote:
        if not 0 < amount_in <= U64_MAX:
            raise InvalidAmount(f"amount_in {amount_in} is not a u64 greater than zero")
        a_to_b, mint_out = self._direction(state, mint_in)
        point = current_point(state, clock)
        if state.pool_status != POOL_STATUS_ENABLED:
            raise PoolNotTradable(
                "disabled",
                f"pool {state.address} is disabled (status {state.pool_status})",
                programError="PoolDisabled",
            )
        if point < state.activation_point:
            raise self._not_open(state, clock)
        mints = self._mints(data_by_pubkey, (mint_in, mint_out))
        # update_pre_swap moves the volatility references at this timestamp. The fee of this
        # swap reads the accumulator, which only the previous swaps moved, and the references
        # are read only after the swap (update_post_swap), so the quote keeps the pool as read;
        # the update still runs for the overflow the program would fail with.
        update_references(state.dynamic_fee, state.sqrt_price, max(clock.unix_timestamp, 0))
        transfer_fee_in = mints[mint_in].transfer_fee_for(clock.epoch, amount_in)
        excluded_in = amount_in - transfer_fee_in
        if excluded_in <= 0:
            raise PoolNotTradable(
                "no_output",
                "nothing is left to swap after the input's transfer fee",
                programError="AmountIsZero",
            )
        result = swap_exact_in(state, excluded_in, a_to_b, point)
        transfer_fee_out = mints[mint_out].transfer_fee_for(clock.epoch, result.output_amount)
        received = result.output_amount - transfer_fee_out
        if received <= 0:
            raise PoolNotTradable(
                "no_output", f"{amount_in} units buy nothing from pool {state.address}"
            )
        return Quote(
            amount_out=received,
            fee_amount=self._fee_in_input_units(result, excluded_in),
            price_impact_pct=self._impact(state, result, a_to_b),
            transfer_fee_in=transfer_fee_in,
            transfer_fee_out=transfer_fee_out,
            notes={
                "feeNumerator": result.trade_fee_numerator,
                "variableFeeNumerator": variable_fee(state.dynamic_fee),
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
        """What `swap2(amount_out, max_amount_in, ExactOut)` takes from the user for exactly
        `amount_out` received, in the slot of `clock` (swap_exact_out.rs): the output's
        transfer fee added (its inverse), the fee grossed up on the side it is taken from
        (the rate limiter's inverse where it applies), the curve's input rounded up, then the
        input's transfer fee added."""
        try:
            return self._quote_exact_out(state, data_by_pubkey, mint_in, amount_out, clock)
        except ProgramFailure as failure:
            raise PoolNotTradable(
                failure.skip,
                f"buying {amount_out} from pool {state.address} fails with {failure.name}",
                programError=failure.name,
            ) from None

    def _quote_exact_out(
        self,
        state: PoolState,
        data_by_pubkey: dict[Pubkey, bytes],
        mint_in: Pubkey,
        amount_out: int,
        clock: Clock,
    ) -> ExactOutQuote:
        if not 0 < amount_out <= U64_MAX:
            raise InvalidAmount(f"amount_out {amount_out} is not a u64 greater than zero")
        a_to_b, mint_out = self._direction(state, mint_in)
        point = current_point(state, clock)
        if state.pool_status != POOL_STATUS_ENABLED:
            raise PoolNotTradable(
                "disabled",
                f"pool {state.address} is disabled (status {state.pool_status})",
                programError="PoolDisabled",
            )
        if point < state.activation_point:
            raise self._not_open(state, clock)
        mints = self._mints(data_by_pubkey, (mint_in, mint_out))
        update_references(state.dynamic_fee, state.sqrt_price, max(clock.unix_timestamp, 0))
        fee_out = mints[mint_out].inverse_transfer_fee_for(clock.epoch, amount_out)
        if fee_out is None:
            raise ProgramFailure("FeeInverseIsIncorrect", "disabled")
        included_out = _checked(amount_out + fee_out, U64_MAX)
        result = swap_exact_out(state, included_out, a_to_b, point)
        curve_paid = result.included_fee_input_amount
        fee_in = (
            mints[mint_in].inverse_transfer_fee_for(clock.epoch, curve_paid) if curve_paid else 0
        )
        if fee_in is None:
            raise ProgramFailure("FeeInverseIsIncorrect", "disabled")
        amount_in = _checked(curve_paid + fee_in, U64_MAX)
        if result.fees_on_input:
            fee = result.fees.total
        else:  # the output-side fee in input units at this trade's own average rate
            fee = result.fees.total * result.excluded_fee_input_amount // included_out
        return ExactOutQuote(amount_in, amount_out, fee, fee_in, fee_out)

    @staticmethod
    def _impact(state: PoolState, result: SwapResult, a_to_b: bool) -> float:
        """The curve's output against what the same curve input fetches at the spot price, in
        integers (the watcher prices thousands of these a tick): with the price b per a as
        num/den and at_spot = spot_n/spot_d, 1 - out/at_spot = (spot_n - out*spot_d)/spot_n,
        and int / int is correctly rounded, as float(Fraction) is."""
        if state.collect_fee_mode == COLLECT_FEE_COMPOUNDING:
            if state.token_a_amount == 0 or state.token_b_amount == 0:
                return 0.0
            num, den = state.token_b_amount, state.token_a_amount
        else:
            num, den = state.sqrt_price * state.sqrt_price, 1 << (RESOLUTION * 2)
        if num == 0:
            return 0.0
        curve_in = result.excluded_fee_input_amount
        spot_n, spot_d = (curve_in * num, den) if a_to_b else (curve_in * den, num)
        if spot_n == 0:
            return 0.0
        return max(spot_n - result.curve_output * spot_d, 0) * 100 / spot_n

    @staticmethod
    def _not_open(state: PoolState, clock: Clock) -> PoolNotTradable:
        if state.activation_type == ACTIVATION_BY_TIMESTAMP:
            opens = state.activation_point
            extra: dict[str, int] = {}
        else:  # by slot: the time is an estimate at 400 ms a slot
            opens = (
                clock.unix_timestamp + (state.activation_point - clock.slot) * MS_PER_SLOT // 1000
            )
            extra = {"opensAtSlot": state.activation_point}
        return PoolNotTradable(
            "not_open",
            f"pool {state.address} activates at {iso_utc(opens)}",
            opensAt=iso_utc(opens),
            programError="PoolDisabled",
            **extra,
        )

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
            raise MintNotInPool(f"mint {mint_in} is not in pool {state.address}")
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
        if state.uses_rate_limiter:
            # ix_p_swap.rs: while the rate limiter applies, the first remaining account must be
            # the instructions sysvar (to check the transaction swaps this pool once), else the
            # swap fails with FailToValidateSingleSwapInstruction (6049).
            accounts.append(AccountMeta(SYSVAR_INSTRUCTIONS, is_signer=False, is_writable=False))
        data = SWAP_DISCRIMINATOR + struct.pack("<QQ", amount_in, min_out)
        return Instruction(program, data, accounts)

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
        """`swap2` with SwapMode::ExactOut: amount_0 = the output, amount_1 = the most input;
        the same accounts as `swap`."""
        exact_in = self.swap_instruction(state, user, ata_in, ata_out, mint_in, 0, 0)
        data = SWAP2_DISCRIMINATOR + struct.pack(
            "<QQB", amount_out, max_amount_in, SWAP_MODE_EXACT_OUT
        )
        return Instruction(exact_in.program_id, data, exact_in.accounts)


VENUE: MeteoraDammV2 = MeteoraDammV2()
