"""Meteora DAMM v2 (cp-amm 0.2.x) `swap` (exact in), `initialize_pool` and
`initialize_customizable_pool`, executed in Python for the local chain.

Ported from MeteoraAg/damm-v2 release 0.2.1, programs/cp-amm/src, independently of the engine's
quoting code:
- entrypoint.rs and instructions/swap/ix_swap.rs `validate_p_accounts`: the pinocchio fast path
  with its own checks and order (pool authority address, pool owner / writable / discriminator,
  vaults has_one, each token account writable and token-owned, each vault owned by its token
  program (ConstraintTokenTokenProgram), mints matching the vaults and token-owned, payer signer,
  token programs SPL Token or Token-2022, event authority, referral account);
- ix_p_swap.rs `p_handle_swap`: access (status, activation point or the whitelisted vault's
  pre-activation), the layout upgrade, the rate limiter's single-swap check through the
  instructions sysvar, `update_pre_swap`, the fee mode, `process_swap_exact_in`,
  `apply_swap_result` (with `update_post_swap`), the TransferChecked CPIs, the event CPI;
- state/pool.rs, state/fee.rs, base_fee/*.rs, math/fee_math.rs, liquidity_handler/*.rs: the
  fee and curve math; utils/token.rs: the transfer fee excluded amounts;
- instructions/initialize_pool/*.rs: the accounts in Anchor's order (deserialization, the
  `init` accounts position_nft_mint, position_nft_account, pool, position and the vaults at
  their PDAs, then the other constraints), then the handlers: the parameters' and the static
  config's checks (params/*.rs, base_fee/*.rs validate, activation), supported mints and token
  badges, get_initial_pool_information (concentrated or compounding), Pool::initialize,
  Position::initialize, create_position_nft (the NFT's TokenMetadata, rent top-up, mint of one),
  the deposits with their Token-2022 transfer fees included, and the two event CPIs. What the
  CPIs into System and the token programs do is written by local/chain/programs/cpi.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from math import isqrt
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey

from local.chain.programs import (
    ACCOUNT_DID_NOT_DESERIALIZE,
    ACCOUNT_DISCRIMINATOR_MISMATCH,
    ACCOUNT_DISCRIMINATOR_NOT_FOUND,
    ACCOUNT_NOT_ENOUGH_KEYS,
    ACCOUNT_NOT_INITIALIZED,
    ACCOUNT_NOT_MUTABLE,
    ACCOUNT_NOT_SIGNER,
    ACCOUNT_OWNED_BY_WRONG_PROGRAM,
    CONSTRAINT_ADDRESS,
    CONSTRAINT_HAS_ONE,
    CONSTRAINT_MINT_TOKEN_PROGRAM,
    CONSTRAINT_MUT,
    CONSTRAINT_RAW,
    CONSTRAINT_SEEDS,
    CONSTRAINT_TOKEN_MINT,
    CONSTRAINT_TOKEN_TOKEN_PROGRAM,
    INSTRUCTION_DID_NOT_DESERIALIZE,
    INSTRUCTION_FALLBACK_NOT_FOUND,
    INVALID_PROGRAM_ID,
    SYSTEM_PROGRAM,
    SYSVAR_INSTRUCTIONS,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
    TOKEN_PROGRAMS,
    AccountsView,
    ClockSysvar,
    Meta,
    Pending,
    ProgramError,
    Transfer,
    anchor_error,
    builtin_error,
    load_anchor_account,
    load_mint,
    load_token_account,
    read_clock,
    token_transfer,
    transaction_instructions,
    transfer_fee_of,
    with_data,
)
from local.chain.programs.cpi import (
    EXT_METADATA_POINTER,
    EXT_MINT_CLOSE_AUTHORITY,
    EXT_TOKEN_METADATA,
    create_account,
    create_token_account,
    invoked,
    metadata_value,
    mint_2022_with_extensions,
    mint_extension_types,
    mint_to,
    transfer_lamports,
)
from local.chain.programs.token import (
    EXT_TRANSFER_HOOK,
    Mint,
    TokenAccount,
    account_extensions_for_mint,
    epoch_transfer_fee,
    extension,
    rent_exempt_lamports,
    token_account,
    with_amount,
)

PROGRAM_ID = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")


def _disc(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


SWAP = _disc("global:swap")
SWAP2 = _disc("global:swap2")
POOL_DISC = _disc("account:Pool")
SWAP_IX_ACCOUNTS = 14

FEE_DENOMINATOR = 1_000_000_000
MAX_BASIS_POINT = 10_000
ONE_Q64 = 1 << 64
U64 = (1 << 64) - 1
U128 = (1 << 128) - 1
U256 = (1 << 256) - 1
SLOT_BUFFER = 9000  # constants.rs activation (not the `local` feature)
TIME_BUFFER = 3600
MAX_FEE_BY_VERSION = {0: 500_000_000, 1: 990_000_000}

# error.rs PoolError numbers (6000 + declaration index)
MATH_OVERFLOW = 6000
EXCEEDED_SLIPPAGE = 6002
POOL_DISABLED = 6003
AMOUNT_IS_ZERO = 6006
TYPE_CAST_FAILED = 6007
INVALID_ACTIVATION_TYPE = 6010
PRICE_RANGE_VIOLATION = 6015
INVALID_BASE_FEE_MODE = 6047
FAIL_TO_VALIDATE_SINGLE_SWAP = 6049
UNDETERMINED = 6051
INVALID_POOL_VERSION = 6052
# error.rs PoolError, in declaration order (Anchor numbers them from 6000).
POOL_ERRORS = (
    ("MathOverflow", "Math operation overflow"),
    ("InvalidFee", "Invalid fee setup"),
    ("ExceededSlippage", "Exceeded slippage tolerance"),
    ("PoolDisabled", "Pool disabled"),
    ("ExceedMaxFeeBps", "Exceeded max fee bps"),
    ("InvalidAdmin", "Invalid admin"),
    ("AmountIsZero", "Amount is zero"),
    ("TypeCastFailed", "Type cast error"),
    ("UnableToModifyActivationPoint", "Unable to modify activation point"),
    ("InvalidAuthorityToCreateThePool", "Invalid authority to create the pool"),
    ("InvalidActivationType", "Invalid activation type"),
    ("InvalidActivationPoint", "Invalid activation point"),
    ("InvalidQuoteMint", "Quote token must be SOL,USDC"),
    ("InvalidFeeCurve", "Invalid fee curve"),
    ("InvalidPriceRange", "Invalid Price Range"),
    ("PriceRangeViolation", "Trade is over price range"),
    ("InvalidParameters", "Invalid parameters"),
    ("InvalidCollectFeeMode", "Invalid collect fee mode"),
    ("InvalidInput", "Invalid input"),
    ("CannotCreateTokenBadgeOnSupportedMint", "Cannot create token badge on supported mint"),
    ("InvalidTokenBadge", "Invalid token badge"),
    ("InvalidMinimumLiquidity", "Invalid minimum liquidity"),
    ("InvalidVestingInfo", "Invalid vesting information"),
    ("InsufficientLiquidity", "Insufficient liquidity"),
    ("InvalidVestingAccount", "Invalid vesting account"),
    ("InvalidPoolStatus", "Invalid pool status"),
    ("UnsupportNativeMintToken2022", "Unsupported native mint token2022"),
    ("InvalidRewardIndex", "Invalid reward index"),
    ("InvalidRewardDuration", "Invalid reward duration"),
    ("RewardInitialized", "Reward already initialized"),
    ("RewardUninitialized", "Reward not initialized"),
    ("InvalidRewardVault", "Invalid reward vault"),
    ("MustWithdrawnIneligibleReward", "Must withdraw ineligible reward"),
    ("IdenticalRewardDuration", "Reward duration is the same"),
    ("RewardCampaignInProgress", "Reward campaign in progress"),
    ("IdenticalFunder", "Identical funder"),
    ("InvalidFunder", "Invalid funder"),
    ("RewardNotEnded", "Reward not ended"),
    ("FeeInverseIsIncorrect", "Fee inverse is incorrect"),
    ("PositionIsNotEmpty", "Position is not empty"),
    ("InvalidPoolCreatorAuthority", "Invalid pool creator authority"),
    ("InvalidConfigType", "Invalid config type"),
    ("InvalidPoolCreator", "Invalid pool creator"),
    ("RewardVaultFrozenSkipRequired", "Reward vault is frozen, must skip reward to proceed"),
    ("InvalidSplitPositionParameters", "Invalid parameters for split position"),
    ("UnsupportPositionHasVestingLock", "Unsupported split position has vesting lock"),
    ("SamePosition", "Same position"),
    ("InvalidBaseFeeMode", "Invalid base fee mode"),
    ("InvalidFeeRateLimiter", "Invalid fee rate limiter"),
    (
        "FailToValidateSingleSwapInstruction",
        "Fail to validate single swap instruction in rate limiter",
    ),
    ("InvalidFeeTimeScheduler", "Invalid fee scheduler"),
    ("UndeterminedError", "Undetermined error"),
    ("InvalidPoolVersion", "Invalid pool version"),
    ("InvalidAuthority", "Invalid authority to do that action"),
    ("InvalidPermission", "Invalid permission"),
    ("InvalidFeeMarketCapScheduler", "Invalid fee market cap scheduler"),
    ("CannotUpdateBaseFee", "Cannot update base fee"),
    ("InvalidDynamicFeeParameters", "Invalid dynamic fee parameters"),
    ("InvalidUpdatePoolFeesParameters", "Invalid update pool fees parameters"),
    ("MissingOperatorAccount", "Missing operator account"),
    ("IncorrectATA", "Incorrect ATA"),
    ("InvalidZapOutParameters", "Invalid zap out parameters"),
    ("InvalidWithdrawProtocolFeeZapAccounts", "Invalid withdraw protocol fee zap accounts"),
    ("MintRestrictedFromZap", "SOL,USDC protocol fee cannot be withdrawn via zap"),
    ("CpiDisabled", "CPI disabled"),
    ("MissingZapOutInstruction", "Missing zap out instruction"),
    ("InvalidZapAccounts", "Invalid zap accounts"),
    ("InvalidCompoundingFeeBps", "Invalid compounding fee bps"),
    ("InvalidClaimProtocolFeeAccounts", "Invalid claim protocol fee accounts"),
    ("TransferFeeExcludedAmountIsZero", "Transfer fee excluded amount is zero"),
)
ERROR_TEXT = {6000 + index: text for index, text in enumerate(POOL_ERRORS)}
POOL_ERROR = {name: code for code, (name, _) in ERROR_TEXT.items()}
INVALID_FEE = POOL_ERROR["InvalidFee"]
EXCEED_MAX_FEE_BPS = POOL_ERROR["ExceedMaxFeeBps"]
INVALID_AUTHORITY_TO_CREATE_THE_POOL = POOL_ERROR["InvalidAuthorityToCreateThePool"]
INVALID_ACTIVATION_POINT = POOL_ERROR["InvalidActivationPoint"]
INVALID_PRICE_RANGE = POOL_ERROR["InvalidPriceRange"]
INVALID_COLLECT_FEE_MODE = POOL_ERROR["InvalidCollectFeeMode"]
INVALID_INPUT = POOL_ERROR["InvalidInput"]
INVALID_TOKEN_BADGE = POOL_ERROR["InvalidTokenBadge"]
INVALID_MINIMUM_LIQUIDITY = POOL_ERROR["InvalidMinimumLiquidity"]
UNSUPPORT_NATIVE_MINT_TOKEN_2022 = POOL_ERROR["UnsupportNativeMintToken2022"]
FEE_INVERSE_IS_INCORRECT = POOL_ERROR["FeeInverseIsIncorrect"]
INVALID_CONFIG_TYPE = POOL_ERROR["InvalidConfigType"]
INVALID_FEE_RATE_LIMITER = POOL_ERROR["InvalidFeeRateLimiter"]
INVALID_FEE_TIME_SCHEDULER = POOL_ERROR["InvalidFeeTimeScheduler"]
INVALID_FEE_MARKET_CAP_SCHEDULER = POOL_ERROR["InvalidFeeMarketCapScheduler"]
INVALID_COMPOUNDING_FEE_BPS = POOL_ERROR["InvalidCompoundingFeeBps"]
for _name, _code in (
    ("MathOverflow", MATH_OVERFLOW),
    ("ExceededSlippage", EXCEEDED_SLIPPAGE),
    ("PoolDisabled", POOL_DISABLED),
    ("AmountIsZero", AMOUNT_IS_ZERO),
    ("TypeCastFailed", TYPE_CAST_FAILED),
    ("InvalidActivationType", INVALID_ACTIVATION_TYPE),
    ("PriceRangeViolation", PRICE_RANGE_VIOLATION),
    ("InvalidBaseFeeMode", INVALID_BASE_FEE_MODE),
    ("FailToValidateSingleSwapInstruction", FAIL_TO_VALIDATE_SINGLE_SWAP),
    ("UndeterminedError", UNDETERMINED),
    ("InvalidPoolVersion", INVALID_POOL_VERSION),
):
    if POOL_ERROR[_name] != _code:
        raise RuntimeError(f"PoolError {_name} is {POOL_ERROR[_name]}, not {_code}")


class Fail(Exception):
    """A PoolError (or a panic, code None) raised inside the math."""

    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


def _c(value: int, limit: int, code: int = MATH_OVERFLOW) -> int:
    """A checked result: negative or above `limit` fails with `code`."""
    if value < 0 or value > limit:
        raise Fail(code)
    return value


# ---------------------------------------------------------------------------------- layout
def _layout() -> dict[str, tuple[int, int]]:
    """Pool's repr(C) fields (state/pool.rs, state/fee.rs), offsets after the discriminator."""
    spec: list[tuple[str, int]] = [
        ("base_fee_info", 32),
        ("base_fee_padding", 8),
        ("protocol_fee_percent", 1),
        ("fees_padding_0", 1),
        ("referral_fee_percent", 1),
        ("fees_padding_1", 3),
        ("compounding_fee_bps", 2),
        ("dyn_initialized", 1),
        ("dyn_padding", 7),
        ("dyn_max_volatility_accumulator", 4),
        ("dyn_variable_fee_control", 4),
        ("dyn_bin_step", 2),
        ("dyn_filter_period", 2),
        ("dyn_decay_period", 2),
        ("dyn_reduction_factor", 2),
        ("dyn_last_update_timestamp", 8),
        ("dyn_bin_step_u128", 16),
        ("dyn_sqrt_price_reference", 16),
        ("dyn_volatility_accumulator", 16),
        ("dyn_volatility_reference", 16),
        ("init_sqrt_price", 16),
        ("token_a_mint", 32),
        ("token_b_mint", 32),
        ("token_a_vault", 32),
        ("token_b_vault", 32),
        ("whitelisted_vault", 32),
        ("padding_0", 32),
        ("liquidity", 16),
        ("padding_1", 16),
        ("protocol_a_fee", 8),
        ("protocol_b_fee", 8),
        ("padding_2", 16),
        ("sqrt_min_price", 16),
        ("sqrt_max_price", 16),
        ("sqrt_price", 16),
        ("activation_point", 8),
        ("activation_type", 1),
        ("pool_status", 1),
        ("token_a_flag", 1),
        ("token_b_flag", 1),
        ("collect_fee_mode", 1),
        ("pool_type", 1),
        ("fee_version", 1),
        ("padding_3", 1),
        ("fee_a_per_liquidity", 32),
        ("fee_b_per_liquidity", 32),
        ("permanent_lock_liquidity", 16),
        ("total_lp_a_fee", 16),
        ("total_lp_b_fee", 16),
        ("total_protocol_a_fee", 8),
        ("total_protocol_b_fee", 8),
        ("metrics_padding_0", 16),
        ("total_position", 8),
        ("metrics_padding", 8),
        ("creator", 32),
        ("token_a_amount", 8),
        ("token_b_amount", 8),
        ("layout_version", 1),
        ("padding_4", 7),
        ("padding_5", 24),
        ("reward_infos", 384),
    ]
    out: dict[str, tuple[int, int]] = {}
    at = 8
    for name, size in spec:
        out[name] = (at, size)
        at += size
    if at != 8 + 1104:
        raise RuntimeError(f"Pool layout adds up to {at - 8} bytes, not 1104")
    return out


LAYOUT = _layout()
POOL_LEN = 8 + 1104
# BaseFeeInfo.data: cliff u64 @0, base_fee_mode u8 @8, padding, then per mode (base_fee/*.rs
# Pod-aligned structs): time scheduler number_of_period u16 @14, period_frequency u64 @16,
# reduction_factor u64 @24; rate limiter fee_increment_bps u16 @14, max_limiter_duration u32
# @16, max_fee_bps u32 @20, reference_amount u64 @24; market cap number_of_period u16 @14,
# sqrt_price_step_bps u32 @16, scheduler_expiration_duration u32 @20, reduction_factor u64 @24.
BASE_FIELDS = {
    "cliff_fee_numerator": (0, 8),
    "base_fee_mode": (8, 1),
    "number_of_period": (14, 2),
    "period_frequency": (16, 8),
    "reduction_factor": (24, 8),
    "fee_increment_bps": (14, 2),
    "max_limiter_duration": (16, 4),
    "max_fee_bps": (20, 4),
    "reference_amount": (24, 8),
    "sqrt_price_step_bps": (16, 4),
    "scheduler_expiration_duration": (20, 4),
}


class PoolData:
    """Named fields over a Pool account's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)

    def __getitem__(self, name: str) -> int:
        if name in BASE_FIELDS:
            at, size = BASE_FIELDS[name]
            at += LAYOUT["base_fee_info"][0]
        else:
            at, size = LAYOUT[name]
        return int.from_bytes(self.data[at : at + size], "little")

    def __setitem__(self, name: str, value: int) -> None:
        if name in BASE_FIELDS:
            at, size = BASE_FIELDS[name]
            at += LAYOUT["base_fee_info"][0]
        else:
            at, size = LAYOUT[name]
        self.data[at : at + size] = value.to_bytes(size, "little")

    def key(self, name: str) -> Pubkey:
        at, _ = LAYOUT[name]
        return Pubkey.from_bytes(bytes(self.data[at : at + 32]))

    def put_key(self, name: str, key: Pubkey) -> None:
        at, _ = LAYOUT[name]
        self.data[at : at + 32] = bytes(key)


# ---------------------------------------------------------------------------------- fee math
def q64_pow(base: int, exp: int) -> int:
    """fee_math.rs pow: base^exp in Q64.64 (its None is MathOverflow)."""
    if exp == 0:
        return ONE_Q64
    invert = exp < 0
    exp = abs(exp)
    if exp >= 0x80000:
        raise Fail(MATH_OVERFLOW)
    b = base
    if b >= ONE_Q64:
        b = U128 // b
        invert = not invert
    result = ONE_Q64
    bit = 1
    while bit <= 0x40000:
        if exp & bit:
            result = _c(result * b, U128) >> 64
        bit <<= 1
        if bit <= 0x40000:
            b = _c(b * b, U128) >> 64
    if result == 0:
        raise Fail(MATH_OVERFLOW)
    return U128 // result if invert else result


def fee_in_period(cliff: int, reduction: int, period: int) -> int:
    if reduction == 0:
        return cliff
    base = _c(ONE_Q64 - (reduction << 64) // MAX_BASIS_POINT, U128)
    fee = _c(q64_pow(base, period) * cliff, U128) >> 64
    return _c(fee, U64, TYPE_CAST_FAILED)


def fee_by_period(pool: PoolData, period: int, linear: bool) -> int:
    period = min(period, pool["number_of_period"])
    cliff = pool["cliff_fee_numerator"]
    if linear:
        return _c(cliff - _c(pool["reduction_factor"] * period, U64), U64)
    return fee_in_period(cliff, pool["reduction_factor"], period)


def to_numerator(bps: int) -> int:
    return _c(bps * FEE_DENOMINATOR // MAX_BASIS_POINT, U64, TYPE_CAST_FAILED)


def rate_limiter_active(pool: PoolData, point: int, a_to_b: bool) -> bool:
    fields = ("reference_amount", "max_limiter_duration", "max_fee_bps", "fee_increment_bps")
    if all(pool[f] == 0 for f in fields) or a_to_b:
        return False
    start = pool["activation_point"]
    return start <= point <= start + pool["max_limiter_duration"]


def rate_limiter_numerator(pool: PoolData, amount: int) -> int:
    cliff, reference = pool["cliff_fee_numerator"], pool["reference_amount"]
    if amount <= reference:
        return cliff
    max_numerator = to_numerator(pool["max_fee_bps"])
    if reference == 0:
        raise Fail(None)  # div_rem by zero: a panic
    steps, rest = divmod(amount - reference, reference)
    increment = to_numerator(pool["fee_increment_bps"])
    if increment == 0:
        raise Fail(MATH_OVERFLOW)
    max_index = _c(max_numerator - cliff, U64) // increment
    if steps < max_index:
        first = reference * (cliff + cliff * steps + increment * steps * (steps + 1) // 2)
        total = first + rest * (cliff + increment * (steps + 1))
    else:
        first = reference * (
            cliff + cliff * max_index + increment * max_index * (max_index + 1) // 2
        )
        total = first + ((steps - max_index) * reference + rest) * max_numerator
    fee = _c((total + FEE_DENOMINATOR - 1) // FEE_DENOMINATOR, U64, TYPE_CAST_FAILED)
    return _c((fee * FEE_DENOMINATOR + amount - 1) // amount, U64, TYPE_CAST_FAILED)


def base_numerator(pool: PoolData, point: int, a_to_b: bool, amount: int) -> int:
    mode = pool["base_fee_mode"]
    start = pool["activation_point"]
    if mode in (0, 1):  # FeeTimeScheduler{Linear,Exponential}
        if pool["period_frequency"] == 0:
            return pool["cliff_fee_numerator"]
        if point < start:
            period = pool["number_of_period"]
        else:
            period = (point - start) // pool["period_frequency"]
        return fee_by_period(pool, period, mode == 0)
    if mode == 2:  # RateLimiter
        if rate_limiter_active(pool, point, a_to_b):
            return rate_limiter_numerator(pool, amount)
        return pool["cliff_fee_numerator"]
    if mode in (3, 4):  # FeeMarketCapScheduler{Linear,Exponential}
        expires = _c(start + pool["scheduler_expiration_duration"], U64)
        periods = pool["number_of_period"]
        if point > expires or point < start:
            period = periods
        else:
            init, now = pool["init_sqrt_price"], pool["sqrt_price"]
            if now <= init:
                period = 0
            else:
                if init == 0 or pool["sqrt_price_step_bps"] == 0:
                    raise Fail(MATH_OVERFLOW)
                period = (now - init) * MAX_BASIS_POINT // init // pool["sqrt_price_step_bps"]
                period = min(period, periods)
        return fee_by_period(pool, period, mode == 3)
    raise Fail(INVALID_BASE_FEE_MODE)


def variable_numerator(pool: PoolData) -> int:
    if not pool["dyn_initialized"]:
        return 0
    squared = _c(pool["dyn_volatility_accumulator"] * pool["dyn_bin_step"], U128) ** 2
    _c(squared, U128, TYPE_CAST_FAILED)
    scaled = _c(squared * pool["dyn_variable_fee_control"], U128)
    return _c(scaled + 99_999_999_999, U128) // 100_000_000_000


def trade_fee_numerator(pool: PoolData, point: int, a_to_b: bool, amount: int) -> int:
    if pool["fee_version"] not in MAX_FEE_BY_VERSION:
        raise Fail(INVALID_POOL_VERSION)
    total = _c(variable_numerator(pool) + base_numerator(pool, point, a_to_b, amount), U128)
    return min(_c(total, U64, TYPE_CAST_FAILED), MAX_FEE_BY_VERSION[pool["fee_version"]])


def split(pool: PoolData, fee: int, referral: bool) -> dict[str, int]:
    protocol = fee * pool["protocol_fee_percent"] // 100
    trading = fee - protocol
    compounding = trading * pool["compounding_fee_bps"] // MAX_BASIS_POINT
    referral_fee = protocol * pool["referral_fee_percent"] // 100 if referral else 0
    return {
        "claiming": trading - compounding,
        "compounding": compounding,
        "protocol": protocol - referral_fee,
        "referral": referral_fee,
    }


def take_fee(
    pool: PoolData, amount: int, numerator: int, referral: bool
) -> tuple[int, dict[str, int]]:
    fee = (amount * numerator + FEE_DENOMINATOR - 1) // FEE_DENOMINATOR
    return _c(amount - fee, U64), split(pool, fee, referral)


# ---------------------------------------------------------------------------------- curves
def _mul_div_256(x: int, y: int, d: int, up: bool) -> int:
    if d == 0:
        raise Fail(MATH_OVERFLOW)
    q, r = divmod(x * y, d)
    return _c(q + (1 if up and r else 0), U256)


def amount_a_delta(lower: int, upper: int, liquidity: int, up: bool) -> int:
    if lower * upper == 0:
        raise Fail(None)  # assert!(denominator > 0)
    return _c(_mul_div_256(liquidity, upper - lower, lower * upper, up), U64)


def amount_b_delta(lower: int, upper: int, liquidity: int, up: bool) -> int:
    product = liquidity * _c(upper - lower, U128)
    q, r = divmod(product, 1 << 128)
    return _c(q + (1 if up and r else 0), U64)


def concentrated(pool: PoolData, amount: int, a_to_b: bool) -> tuple[int, int]:
    price, liquidity = pool["sqrt_price"], pool["liquidity"]
    if price == 0 or liquidity == 0:
        raise Fail(None)  # asserts in get_next_sqrt_price_from_input
    if a_to_b:
        nxt = (
            price
            if amount == 0
            else _mul_div_256(liquidity, price, liquidity + amount * price, True)
        )
        nxt = _c(nxt, U128, TYPE_CAST_FAILED)
        if nxt < pool["sqrt_min_price"]:
            raise Fail(PRICE_RANGE_VIOLATION)
        return amount_b_delta(nxt, price, liquidity, False), nxt
    nxt = _c(price + (amount << 128) // liquidity, U128, TYPE_CAST_FAILED)
    if nxt > pool["sqrt_max_price"]:
        raise Fail(PRICE_RANGE_VIOLATION)
    return amount_a_delta(price, nxt, liquidity, False), nxt


def compounding(pool: PoolData, amount: int, a_to_b: bool) -> int:
    a, b = pool["token_a_amount"], pool["token_b_amount"]
    reserve_in, reserve_out = (a, b) if a_to_b else (b, a)
    denominator = _c(reserve_in + amount, U64)
    if denominator == 0:
        raise Fail(MATH_OVERFLOW)
    return reserve_out * amount // denominator


def sqrt_price_of_amounts(a: int, b: int) -> int:
    if a == 0:
        raise Fail(MATH_OVERFLOW)
    return _c(isqrt((b << 128) // a), U128, TYPE_CAST_FAILED)


def delta_bin_id(bin_step_u128: int, price_a: int, price_b: int) -> int:
    upper, lower = max(price_a, price_b), min(price_a, price_b)
    if lower == 0:
        raise Fail(MATH_OVERFLOW)
    ratio = _c((upper << 64) // lower, U128, MATH_OVERFLOW)
    if bin_step_u128 == 0:
        raise Fail(MATH_OVERFLOW)
    return (ratio - ONE_Q64) // bin_step_u128 * 2


# ---------------------------------------------------------------------------------- initialize
INITIALIZE_POOL = _disc("global:initialize_pool")
INITIALIZE_CUSTOMIZABLE_POOL = _disc("global:initialize_customizable_pool")
CONFIG_DISC = _disc("account:Config")
POSITION_DISC = _disc("account:Position")
TOKEN_BADGE_DISC = _disc("account:TokenBadge")
CONFIG_LEN = 8 + 320
POSITION_LEN = 8 + 400
MIN_SQRT_PRICE = 4295048016
MAX_SQRT_PRICE = 79226673521066979257578248091
MIN_FEE_NUMERATOR = 100_000  # constants.rs fee: 1 bps
MAX_FEE_BPS = 9_900  # CURRENT_POOL_VERSION 1
CURRENT_POOL_VERSION = 1
PROTOCOL_FEE_PERCENT = 20
HOST_FEE_PERCENT = 20
BIN_STEP_BPS_DEFAULT = 1
BIN_STEP_BPS_U128_DEFAULT = 1844674407370955
U24_MAX = 0xFFFFFF
DEAD_LIQUIDITY = 100 << 64  # compounding_liquidity.rs: locked in the pool forever
MAX_RATE_LIMITER_DURATION = {0: 108_000, 1: 12 * 3600}  # slots, seconds
# constants.rs activation (mainnet build): buffers and the longest wait to activation.
ACTIVATION_TIMING = {  # type -> (buffer, max activation duration)
    0: (SLOT_BUFFER, SLOT_BUFFER * 24 * 31),
    1: (TIME_BUFFER, TIME_BUFFER * 24 * 31),
}
POOL_TYPE_PERMISSIONLESS = 0
POOL_TYPE_CUSTOMIZABLE = 1
ALPHA_VAULT_PROGRAM = Pubkey.from_string("vaU6kP7iNEGkbmPkLmZfGwiGxd4Mob24QQCie5R9kd2")
TOKEN_2022_NATIVE_MINT = Pubkey.from_string("9pan9bMn5HatX4EJdBwg9VgCa7Uz5HL8N1m5D3NdXejP")
# The position NFT's metadata (ix_create_position.rs create_position_nft).
POSITION_NFT_NAME = "Meteora Position NFT"
POSITION_NFT_SYMBOL = "MPN"
POSITION_NFT_URI = (
    "https://raw.githubusercontent.com/MeteoraAg/token-metadata/main/meteora_position_nft.png"
)
# Config (state/config.rs, repr(C) with its discriminator): the offsets initialize_pool reads.
CONFIG_OFFSETS = {
    "vault_config_key": (8, 32),
    "pool_creator_authority": (40, 32),
    "base_fee_info": (72, 32),
    "dyn_initialized": (104, 1),
    "dyn_max_volatility_accumulator": (112, 4),
    "dyn_variable_fee_control": (116, 4),
    "dyn_bin_step": (120, 2),
    "dyn_filter_period": (122, 2),
    "dyn_decay_period": (124, 2),
    "dyn_reduction_factor": (126, 2),
    "dyn_bin_step_u128": (136, 16),
    "protocol_fee_percent": (152, 1),
    "referral_fee_percent": (154, 1),
    "compounding_fee_bps": (158, 2),
    "activation_type": (200, 1),
    "collect_fee_mode": (201, 1),
    "config_type": (202, 1),
    "index": (208, 8),
    "sqrt_min_price": (216, 16),
    "sqrt_max_price": (232, 16),
}
DYNAMIC_FIELDS = (
    "max_volatility_accumulator",
    "variable_fee_control",
    "bin_step",
    "filter_period",
    "decay_period",
    "reduction_factor",
    "bin_step_u128",
)
INITIALIZE_POOL_ACCOUNTS = (
    "creator",
    "position_nft_mint",
    "position_nft_account",
    "payer",
    "config",
    "pool_authority",
    "pool",
    "position",
    "token_a_mint",
    "token_b_mint",
    "token_a_vault",
    "token_b_vault",
    "payer_token_a",
    "payer_token_b",
    "token_a_program",
    "token_b_program",
    "token_2022_program",
    "system_program",
    "event_authority",
    "program",
)
INITIALIZE_CUSTOMIZABLE_POOL_ACCOUNTS = tuple(a for a in INITIALIZE_POOL_ACCOUNTS if a != "config")


def config_field(data: bytes, name: str) -> int:
    at, size = CONFIG_OFFSETS[name]
    return int.from_bytes(data[at : at + size], "little")


class _Borsh:
    """Borsh reads off instruction data; ValueError when it runs short or a tag is wrong."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ValueError("short")
        out = self.data[self.at : self.at + size]
        self.at += size
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def flag(self) -> bool:
        tag = self.uint(1)
        if tag > 1:
            raise ValueError("bad bool or option tag")
        return tag == 1

    def option_u64(self) -> int | None:
        return self.uint(8) if self.flag() else None


def parse_initialize_pool(data: bytes) -> dict[str, Any]:
    """InitializePoolParameters: liquidity u128, sqrt_price u128, activation_point Option<u64>."""
    read = _Borsh(data)
    return {
        "liquidity": read.uint(16),
        "sqrt_price": read.uint(16),
        "activation_point": read.option_u64(),
    }


def parse_initialize_customizable_pool(data: bytes) -> dict[str, Any]:
    """InitializeCustomizablePoolParameters, borsh, in declaration order."""
    read = _Borsh(data)
    params: dict[str, Any] = {
        "base_fee": read.take(27),
        "compounding_fee_bps": read.uint(2),
        "padding": read.uint(1),
        "dynamic_fee": None,
    }
    if read.flag():
        params["dynamic_fee"] = {
            "bin_step": read.uint(2),
            "bin_step_u128": read.uint(16),
            "filter_period": read.uint(2),
            "decay_period": read.uint(2),
            "reduction_factor": read.uint(2),
            "max_volatility_accumulator": read.uint(4),
            "variable_fee_control": read.uint(4),
        }
    params["sqrt_min_price"] = read.uint(16)
    params["sqrt_max_price"] = read.uint(16)
    params["has_alpha_vault"] = read.flag()
    params["liquidity"] = read.uint(16)
    params["sqrt_price"] = read.uint(16)
    params["activation_type"] = read.uint(1)
    params["collect_fee_mode"] = read.uint(1)
    params["activation_point"] = read.option_u64()
    return params


# base_fee_serde.rs: the 27 borsh bytes of BaseFeeParameters per mode (the mode is byte 26) and
# the 32-byte Pod-aligned BaseFeeInfo the pool keeps (the mode at byte 8).
_BORSH_BASE_FEE = {
    0: (
        ("cliff_fee_numerator", 8),
        ("number_of_period", 2),
        ("period_frequency", 8),
        ("reduction_factor", 8),
    ),
    2: (
        ("cliff_fee_numerator", 8),
        ("fee_increment_bps", 2),
        ("max_limiter_duration", 4),
        ("max_fee_bps", 4),
        ("reference_amount", 8),
    ),
    3: (
        ("cliff_fee_numerator", 8),
        ("number_of_period", 2),
        ("sqrt_price_step_bps", 4),
        ("scheduler_expiration_duration", 4),
        ("reduction_factor", 8),
    ),
}
_BORSH_BASE_FEE[1] = _BORSH_BASE_FEE[0]
_BORSH_BASE_FEE[4] = _BORSH_BASE_FEE[3]


def base_fee_info(parameters: bytes) -> bytes:
    """base_fee_parameters_to_base_fee_info (InvalidBaseFeeMode for an unknown mode)."""
    mode = parameters[26]
    if mode not in _BORSH_BASE_FEE:
        raise Fail(INVALID_BASE_FEE_MODE)
    pool = PoolData(bytes(POOL_LEN))
    at = 0
    for name, size in _BORSH_BASE_FEE[mode]:
        pool[name] = int.from_bytes(parameters[at : at + size], "little")
        at += size
    pool["base_fee_mode"] = mode
    start = LAYOUT["base_fee_info"][0]
    return bytes(pool.data[start : start + 32])


def _fraction_ok(numerator: int) -> None:
    if numerator >= FEE_DENOMINATOR:  # validate_fee_fraction
        raise Fail(INVALID_FEE)


def _scheduled_fees_in_range(pool: PoolData, linear: bool, max_fee: int) -> None:
    """A fee scheduler's lowest fee (after its last period) and highest (the cliff) are valid
    fractions within [MIN_FEE_NUMERATOR, max_fee] (time and market-cap schedulers alike)."""
    low = fee_by_period(pool, pool["number_of_period"], linear)
    high = pool["cliff_fee_numerator"]
    _fraction_ok(low)
    _fraction_ok(high)
    if low < MIN_FEE_NUMERATOR or high > max_fee:
        raise Fail(EXCEED_MAX_FEE_BPS)


def validate_base_fee(pool: PoolData, collect_fee_mode: int, activation_type: int) -> None:
    """BaseFeeHandler::validate of the pool's base fee mode (base_fee/*.rs)."""
    mode = pool["base_fee_mode"]
    max_fee = MAX_FEE_BY_VERSION[CURRENT_POOL_VERSION]
    if mode in (0, 1):
        schedule = (pool["period_frequency"], pool["number_of_period"], pool["reduction_factor"])
        if any(schedule) and not all(schedule):
            raise Fail(INVALID_FEE_TIME_SCHEDULER)
        _scheduled_fees_in_range(pool, mode == 0, max_fee)
    elif mode == 2:
        if collect_fee_mode != 1:
            raise Fail(INVALID_FEE_RATE_LIMITER)
        cliff = pool["cliff_fee_numerator"]
        if not MIN_FEE_NUMERATOR <= cliff <= to_numerator(pool["max_fee_bps"]):
            raise Fail(INVALID_FEE_RATE_LIMITER)
        fields = [
            pool[f]
            for f in (
                "reference_amount",
                "max_limiter_duration",
                "max_fee_bps",
                "fee_increment_bps",
            )
        ]
        if not any(fields):
            return
        if (
            not all(fields)
            or pool["max_limiter_duration"] > MAX_RATE_LIMITER_DURATION[activation_type]
        ):
            raise Fail(INVALID_FEE_RATE_LIMITER)
        if to_numerator(pool["fee_increment_bps"]) >= FEE_DENOMINATOR:
            raise Fail(INVALID_FEE_RATE_LIMITER)
        if pool["max_fee_bps"] > MAX_FEE_BPS:
            raise Fail(INVALID_FEE_RATE_LIMITER)
        if rate_limiter_numerator(pool, U64) > max_fee:
            raise Fail(INVALID_FEE_RATE_LIMITER)
    else:
        needed = (
            "reduction_factor",
            "sqrt_price_step_bps",
            "scheduler_expiration_duration",
            "number_of_period",
        )
        if not all(pool[f] for f in needed):
            raise Fail(INVALID_FEE_MARKET_CAP_SCHEDULER)
        _scheduled_fees_in_range(pool, mode == 3, max_fee)


def validate_dynamic_fee(dynamic: dict[str, int]) -> None:
    """DynamicFeeParameters::validate: every rule fails with InvalidInput."""
    if (
        dynamic["bin_step"] != BIN_STEP_BPS_DEFAULT
        or dynamic["bin_step_u128"] != BIN_STEP_BPS_U128_DEFAULT
        or not dynamic["filter_period"] < dynamic["decay_period"]
        or dynamic["reduction_factor"] > MAX_BASIS_POINT
        or dynamic["variable_fee_control"] > U24_MAX
        or dynamic["max_volatility_accumulator"] > U24_MAX
    ):
        raise Fail(INVALID_INPUT)


def validate_activation(
    activation_point: int | None, activation_type: int, has_alpha_vault: bool, clock: ClockSysvar
) -> None:
    """params/activation.rs ActivationParams::validate."""
    if activation_type not in ACTIVATION_TIMING:
        raise Fail(INVALID_ACTIVATION_TYPE)
    buffer, longest = ACTIVATION_TIMING[activation_type]
    current = clock.slot if activation_type == 0 else clock.unix_timestamp % (1 << 64)
    if has_alpha_vault:
        if activation_point is None or activation_point <= current:
            raise Fail(INVALID_ACTIVATION_POINT)
        if not buffer <= activation_point - current <= longest:
            raise Fail(INVALID_ACTIVATION_POINT)
        last_join = _c(activation_point - buffer - buffer // 12, U64)  # get_last_join_point
        if _c(last_join - buffer // 12, U64) < current:
            raise Fail(INVALID_ACTIVATION_POINT)
    elif activation_point is not None and not current <= activation_point <= current + longest:
        raise Fail(INVALID_ACTIVATION_POINT)


def validate_initial_sqrt_price(mode: int, sqrt_price: int, low: int, high: int) -> None:
    bounds = (MIN_SQRT_PRICE, MAX_SQRT_PRICE) if mode == 2 else (low, high)
    if not bounds[0] <= sqrt_price <= bounds[1]:
        raise Fail(INVALID_PRICE_RANGE)


def initial_pool_information(
    mode: int, low: int, high: int, sqrt_price: int, liquidity: int
) -> dict[str, int]:
    """liquidity_handler get_initial_pool_information: the token amounts the liquidity takes
    (rounded up), and for a compounding pool its price from them and the dead liquidity."""
    if mode == 2:
        if liquidity <= DEAD_LIQUIDITY:
            raise Fail(INVALID_MINIMUM_LIQUIDITY)
        a = _c(-(-liquidity // sqrt_price), U64, TYPE_CAST_FAILED)
        b = _c(-(-liquidity * sqrt_price >> 128), U64, TYPE_CAST_FAILED)
        return {
            "token_a_amount": a,
            "token_b_amount": b,
            "sqrt_price": sqrt_price_of_amounts(a, b),
            "initial_liquidity": liquidity - DEAD_LIQUIDITY,
            "sqrt_min_price": 0,
            "sqrt_max_price": U128,
        }
    return {
        "token_a_amount": amount_a_delta(sqrt_price, high, liquidity, True),
        "token_b_amount": amount_b_delta(low, sqrt_price, liquidity, True),
        "sqrt_price": sqrt_price,
        "initial_liquidity": liquidity,
        "sqrt_min_price": low,
        "sqrt_max_price": high,
    }


def transfer_fee_included(mint_data: bytes, amount: int, epoch: int) -> int:
    """utils/token.rs calculate_transfer_fee_included_amount (token-2022's inverse fee, checked
    against the forward fee: FeeInverseIsIncorrect)."""
    if amount == 0:
        return 0
    schedule = epoch_transfer_fee(mint_data, epoch)
    if schedule is None:
        return amount
    if schedule.basis_points == MAX_BASIS_POINT:
        fee = schedule.maximum_fee
    elif schedule.basis_points == 0:
        fee = 0
    else:
        raw = -(-amount * MAX_BASIS_POINT // (MAX_BASIS_POINT - schedule.basis_points))
        pre = amount + schedule.maximum_fee if raw - amount >= schedule.maximum_fee else raw
        fee = schedule.calculate_fee(_c(pre, U64))
    total = _c(amount + fee, U64)
    if schedule.calculate_fee(total) != fee:
        raise Fail(FEE_INVERSE_IS_INCORRECT)
    return total


def damm_supported_mint(mint: Pubkey, account: Account) -> bool:
    """utils/token.rs is_supported_mint: SPL Token mints; Token-2022 mints (not its native mint)
    whose extensions are TransferFeeConfig, MetadataPointer, TokenMetadata, or a TransferHook
    with neither program nor authority."""
    if account.owner == TOKEN_PROGRAM:
        return True
    if mint == TOKEN_2022_NATIVE_MINT:
        raise Fail(UNSUPPORT_NATIVE_MINT_TOKEN_2022)
    data = bytes(account.data)
    for kind in mint_extension_types(data):
        if kind == EXT_TRANSFER_HOOK:
            hook = extension(data, EXT_TRANSFER_HOOK) or b""
            if any(hook[:64]):
                return False
        elif kind not in (1, 18, 19):
            return False
    return True


def position_nft_mint_data(
    nft_mint: Pubkey, pool: Pubkey, pool_authority: Pubkey, supply: int, metadata: bool
) -> bytes:
    """The position NFT mint as Anchor's `init` leaves it (MetadataPointer, then
    MintCloseAuthority, then InitializeMint2: 0 decimals, the pool authority mints, the pool
    freezes) and, after create_position_nft, with its TokenMetadata appended."""
    extensions = [
        (EXT_METADATA_POINTER, bytes(pool_authority) + bytes(nft_mint)),
        (EXT_MINT_CLOSE_AUTHORITY, bytes(pool_authority)),
    ]
    if metadata:
        value = metadata_value(
            pool_authority, nft_mint, POSITION_NFT_NAME, POSITION_NFT_SYMBOL, POSITION_NFT_URI
        )
        extensions.append((EXT_TOKEN_METADATA, value))
    base = Mint(decimals=0, supply=supply, mint_authority=pool_authority, freeze_authority=pool)
    return mint_2022_with_extensions(base, extensions)


class MeteoraDammV2Program:
    def __init__(self, program_id: Pubkey) -> None:
        self.program_id: Pubkey = program_id
        self.pool_authority = Pubkey.find_program_address([b"pool_authority"], program_id)[0]
        self.event_authority = Pubkey.find_program_address([b"__event_authority"], program_id)[0]

    def _fail(self, logs: list[str], code: int | None) -> ProgramError:
        if code is None:
            return builtin_error([*logs, "Program log: panicked"], "ProgramFailedToComplete")
        name, message = ERROR_TEXT.get(code, (str(code), "program error"))
        return anchor_error(logs, code, name, message)

    def _token_account(self, view: AccountsView, meta: Meta, logs: list[str]) -> Account:
        """validate_mut_token_account."""
        if not meta.is_writable:
            raise anchor_error(logs, ACCOUNT_NOT_MUTABLE)
        account = view.get(meta.pubkey)
        if account is None:
            raise anchor_error(logs, ACCOUNT_NOT_INITIALIZED)
        if account.owner not in TOKEN_PROGRAMS:
            raise anchor_error(logs, ACCOUNT_OWNED_BY_WRONG_PROGRAM)
        return account

    def process(self, view: AccountsView, accounts: Sequence[Meta], data: bytes) -> list[str]:
        if data[:8] in (INITIALIZE_POOL, INITIALIZE_CUSTOMIZABLE_POOL):
            customizable = data[:8] == INITIALIZE_CUSTOMIZABLE_POOL
            return self._initialize(view, accounts, data, customizable)
        if data[:8] not in (SWAP, SWAP2):
            # Only the swap's fast path is simulated; Anchor's fallback knows no other here.
            raise anchor_error([], INSTRUCTION_FALLBACK_NOT_FOUND)
        if len(accounts) < SWAP_IX_ACCOUNTS:
            raise anchor_error([], ACCOUNT_NOT_ENOUGH_KEYS)
        if data[:8] == SWAP2:
            if len(data) < 25:
                raise anchor_error([], INSTRUCTION_DID_NOT_DESERIALIZE)
            if data[24] != 0:  # partial fill and exact out are not simulated here
                logs = ["Program log: Instruction: Swap2", "Program log: only ExactIn is simulated"]
                raise anchor_error(logs, 6018, "InvalidInput", "Invalid input")
            logs = ["Program log: Instruction: Swap2"]
        else:
            if len(data) < 24:
                raise anchor_error([], INSTRUCTION_DID_NOT_DESERIALIZE)
            logs = ["Program log: Instruction: Swap"]
        amount_in = int.from_bytes(data[8:16], "little")
        minimum_out = int.from_bytes(data[16:24], "little")
        (
            authority,
            pool_meta,
            user_in_meta,
            user_out_meta,
            vault_a_meta,
            vault_b_meta,
            mint_a_meta,
            mint_b_meta,
            payer,
            program_a,
            program_b,
            referral_meta,
            event_authority,
            _program,
        ) = accounts[:SWAP_IX_ACCOUNTS]
        remaining = accounts[SWAP_IX_ACCOUNTS:]

        # validate_p_accounts
        if authority.pubkey != self.pool_authority:
            raise anchor_error(logs, CONSTRAINT_ADDRESS)
        pool_account = view.get(pool_meta.pubkey)
        if pool_account is None or pool_account.owner != self.program_id:
            raise anchor_error(logs, ACCOUNT_OWNED_BY_WRONG_PROGRAM)
        if not pool_meta.is_writable:
            raise anchor_error(logs, ACCOUNT_NOT_MUTABLE)
        raw = bytes(pool_account.data)
        if len(raw) < 8:
            raise anchor_error(logs, ACCOUNT_DISCRIMINATOR_NOT_FOUND)
        if raw[:8] != POOL_DISC:
            raise anchor_error(logs, ACCOUNT_DISCRIMINATOR_MISMATCH)
        pool = PoolData(raw)
        if vault_a_meta.pubkey != pool.key("token_a_vault"):
            raise anchor_error(logs, CONSTRAINT_HAS_ONE)
        if vault_b_meta.pubkey != pool.key("token_b_vault"):
            raise anchor_error(logs, CONSTRAINT_HAS_ONE)
        user_in_account = self._token_account(view, user_in_meta, logs)
        self._token_account(view, user_out_meta, logs)
        vault_accounts = []
        for vault_meta, program_meta in ((vault_a_meta, program_a), (vault_b_meta, program_b)):
            vault = self._token_account(view, vault_meta, logs)
            if vault.owner != program_meta.pubkey:
                raise anchor_error(logs, CONSTRAINT_TOKEN_TOKEN_PROGRAM)
            vault_accounts.append(vault)
        mint_accounts = []
        for vault, mint_meta in zip(vault_accounts, (mint_a_meta, mint_b_meta), strict=True):
            if bytes(vault.data)[:32] != bytes(mint_meta.pubkey):
                raise anchor_error(logs, CONSTRAINT_TOKEN_MINT)
            mint = view.get(mint_meta.pubkey)
            if mint is None or mint.owner not in TOKEN_PROGRAMS:  # Mint::check_owner
                raise anchor_error(logs, ACCOUNT_OWNED_BY_WRONG_PROGRAM)
            mint_accounts.append(mint)
        if not payer.is_signer:
            raise anchor_error(logs, ACCOUNT_NOT_SIGNER)
        for program_meta in (program_a, program_b):
            if program_meta.pubkey not in (TOKEN_PROGRAM, TOKEN_2022_PROGRAM):
                raise anchor_error(logs, INVALID_PROGRAM_ID)
        if event_authority.pubkey != self.event_authority:
            raise anchor_error(logs, CONSTRAINT_SEEDS)
        has_referral = referral_meta.pubkey != self.program_id
        if has_referral:
            self._token_account(view, referral_meta, logs)

        try:
            return self._swap(
                view,
                pool,
                pool_account,
                accounts,
                remaining,
                amount_in,
                minimum_out,
                has_referral,
                user_in_account,
                mint_accounts,
                logs,
            )
        except Fail as failure:
            raise self._fail(logs, failure.code) from None

    def _swap(
        self,
        view: AccountsView,
        pool: PoolData,
        pool_account: Account,
        accounts: Sequence[Meta],
        remaining: Sequence[Meta],
        amount_in: int,
        minimum_out: int,
        has_referral: bool,
        user_in_account: Account,
        mint_accounts: list[Account],
        logs: list[str],
    ) -> list[str]:
        pool_meta, user_in_meta, user_out_meta = accounts[1], accounts[2], accounts[3]
        vault_a_meta, vault_b_meta, mint_a_meta, mint_b_meta = accounts[4:8]
        payer, program_a, program_b, referral_meta = (
            accounts[8],
            accounts[9],
            accounts[10],
            accounts[11],
        )
        clock = read_clock(view, logs)

        # Access: PermissionlessActionAccess::can_swap.
        kind = pool["activation_type"]
        if kind == 0:
            point, buffer = clock.slot, SLOT_BUFFER
        elif kind == 1:
            point, buffer = clock.unix_timestamp % (1 << 64), TIME_BUFFER
        else:
            raise Fail(INVALID_ACTIVATION_TYPE)
        start = pool["activation_point"]
        if pool["pool_status"] != 0:
            raise Fail(POOL_DISABLED)
        if payer.pubkey == pool.key("whitelisted_vault"):
            allowed = point >= (start - buffer if start >= buffer else 0)
        else:
            allowed = point >= start
        if not allowed:
            raise Fail(POOL_DISABLED)

        # update_layout_version_if_needed
        layout = pool["layout_version"]
        if layout not in (0, 1):
            raise Fail(TYPE_CAST_FAILED)
        if pool["collect_fee_mode"] not in (0, 1, 2):
            raise Fail(TYPE_CAST_FAILED)
        if layout == 0:
            if pool["collect_fee_mode"] != 2:
                pool["token_a_amount"] = amount_a_delta(
                    pool["sqrt_price"], pool["sqrt_max_price"], pool["liquidity"], True
                )
                pool["token_b_amount"] = amount_b_delta(
                    pool["sqrt_min_price"], pool["sqrt_price"], pool["liquidity"], True
                )
            pool["layout_version"] = 1

        user_in = TokenAccount.unpack(bytes(user_in_account.data))
        a_to_b = bytes(user_in.mint) == bytes(mint_a_meta.pubkey)
        if amount_in == 0:
            raise Fail(AMOUNT_IS_ZERO)

        if pool["base_fee_mode"] == 2 and rate_limiter_active(pool, point, a_to_b):
            self._single_swap_check(view, pool_meta.pubkey, remaining, logs)

        timestamp = clock.unix_timestamp % (1 << 64)
        if pool["dyn_initialized"]:  # update_pre_swap: update_references
            elapsed = max(timestamp - pool["dyn_last_update_timestamp"], 0)
            if elapsed >= pool["dyn_filter_period"]:
                pool["dyn_sqrt_price_reference"] = pool["sqrt_price"]
                if elapsed < pool["dyn_decay_period"]:
                    reference = _c(
                        pool["dyn_volatility_accumulator"] * pool["dyn_reduction_factor"], U128
                    )
                    pool["dyn_volatility_reference"] = reference // MAX_BASIS_POINT
                else:
                    pool["dyn_volatility_reference"] = 0

        mode = pool["collect_fee_mode"]
        fees_on_input = mode in (1, 2) and not a_to_b
        fees_on_token_a = mode == 0 and not a_to_b
        mint_in, mint_out = (mint_a_meta, mint_b_meta) if a_to_b else (mint_b_meta, mint_a_meta)

        # process_swap_exact_in
        excluded_in = amount_in - transfer_fee_of(view, mint_in.pubkey, amount_in, clock.epoch)
        if excluded_in <= 0:
            raise Fail(AMOUNT_IS_ZERO)
        numerator = trade_fee_numerator(pool, point, a_to_b, excluded_in)
        fees = {"claiming": 0, "compounding": 0, "protocol": 0, "referral": 0}
        curve_in = excluded_in
        if fees_on_input:
            curve_in, fees = take_fee(pool, excluded_in, numerator, has_referral)
        if mode == 2:
            out, next_price = compounding(pool, curve_in, a_to_b), 0
        else:
            out, next_price = concentrated(pool, curve_in, a_to_b)
        if not fees_on_input:
            out, fees = take_fee(pool, out, numerator, has_referral)
        out_after_fee = out - transfer_fee_of(view, mint_out.pubkey, out, clock.epoch)
        if out_after_fee < minimum_out:
            raise Fail(EXCEEDED_SLIPPAGE)

        # apply_swap_result
        old_price = pool["sqrt_price"]
        if pool["liquidity"] == 0:
            raise Fail(MATH_OVERFLOW)
        growth = (fees["claiming"] << 128) // pool["liquidity"]
        trading = fees["claiming"] + fees["compounding"]
        side = "a" if fees_on_token_a else "b"
        pool[f"protocol_{side}_fee"] = _c(pool[f"protocol_{side}_fee"] + fees["protocol"], U64)
        pool[f"fee_{side}_per_liquidity"] = _c(pool[f"fee_{side}_per_liquidity"] + growth, U256)
        pool[f"total_lp_{side}_fee"] = _c(pool[f"total_lp_{side}_fee"] + trading, U128)
        pool[f"total_protocol_{side}_fee"] = _c(
            pool[f"total_protocol_{side}_fee"] + fees["protocol"], U64
        )
        leaving = out if fees_on_input else out + trading + fees["protocol"] + fees["referral"]
        into, outof = (
            ("token_a_amount", "token_b_amount") if a_to_b else ("token_b_amount", "token_a_amount")
        )
        pool[into] = _c(pool[into] + curve_in, U64)
        pool[outof] = _c(pool[outof] - leaving, U64)
        pool["token_b_amount"] = _c(pool["token_b_amount"] + fees["compounding"], U64)
        if mode == 2:
            next_price = sqrt_price_of_amounts(pool["token_a_amount"], pool["token_b_amount"])
        pool["sqrt_price"] = next_price
        if pool["dyn_initialized"]:  # update_post_swap
            step = pool["dyn_bin_step_u128"]
            delta = delta_bin_id(step, next_price, pool["dyn_sqrt_price_reference"])
            accumulator = pool["dyn_volatility_reference"] + delta * MAX_BASIS_POINT
            pool["dyn_volatility_accumulator"] = min(
                _c(accumulator, U128), pool["dyn_max_volatility_accumulator"]
            )
            if delta_bin_id(step, old_price, next_price) > 0:
                pool["dyn_last_update_timestamp"] = timestamp

        # The transfers: the whole amount in from the user, the output from the pool, then the
        # referral's share of the fee from the vault of the fee's token.
        pending = Pending(view)
        vault_in, vault_out = (
            (vault_a_meta, vault_b_meta) if a_to_b else (vault_b_meta, vault_a_meta)
        )
        program_in, program_out = (program_a, program_b) if a_to_b else (program_b, program_a)
        mint_data = {
            m.pubkey: bytes(a.data)
            for m, a in zip((mint_a_meta, mint_b_meta), mint_accounts, strict=True)
        }
        transfers = [
            Transfer(
                program_in.pubkey,
                user_in_meta.pubkey,
                mint_in.pubkey,
                vault_in.pubkey,
                payer.pubkey,
                amount_in,
                mint_data[mint_in.pubkey][44],
            ),
            Transfer(
                program_out.pubkey,
                vault_out.pubkey,
                mint_out.pubkey,
                user_out_meta.pubkey,
                self.pool_authority,
                out,
                mint_data[mint_out.pubkey][44],
            ),
        ]
        if has_referral:
            fee_vault, fee_mint, fee_program = (
                (vault_a_meta, mint_a_meta, program_a)
                if fees_on_token_a
                else (vault_b_meta, mint_b_meta, program_b)
            )
            transfers.append(
                Transfer(
                    fee_program.pubkey,
                    fee_vault.pubkey,
                    fee_mint.pubkey,
                    referral_meta.pubkey,
                    self.pool_authority,
                    fees["referral"],
                    mint_data[fee_mint.pubkey][44],
                )
            )
        cpi_logs: list[str] = []
        for transfer in transfers:
            cpi_logs += token_transfer(pending, transfer, clock.epoch, [*logs, *cpi_logs])
        pending.set(pool_meta.pubkey, with_data(pool_account, bytes(pool.data)))
        pending.commit()
        # emit_cpi!: the EvtSwap2 event is a self-invocation signed by the event authority.
        event = [f"Program {self.program_id} invoke [2]", f"Program {self.program_id} success"]
        return [*logs, *cpi_logs, *event]

    def _single_swap_check(
        self, view: AccountsView, pool: Pubkey, remaining: Sequence[Meta], logs: list[str]
    ) -> None:
        """ix_p_swap.rs validate_single_swap_instruction, for a top-level swap."""
        if not remaining:
            raise Fail(FAIL_TO_VALIDATE_SINGLE_SWAP)
        if remaining[0].pubkey != SYSVAR_INSTRUCTIONS:
            raise builtin_error(logs, "UnsupportedSysvar")
        instructions, current = transaction_instructions(view)
        for instruction in instructions[:current]:
            if instruction.program_id != self.program_id:
                if pool in instruction.accounts:
                    logs.append("Program log: Multiple swaps not allowed")
                    raise Fail(FAIL_TO_VALIDATE_SINGLE_SWAP)
            elif instruction.data[:8] in (SWAP, SWAP2) and instruction.accounts[1:2] == (pool,):
                raise Fail(FAIL_TO_VALIDATE_SINGLE_SWAP)

    # ------------------------------------------------------------------------------ initialize
    def _initialize(
        self, view: AccountsView, accounts: Sequence[Meta], data: bytes, customizable: bool
    ) -> list[str]:
        """ix_initialize_pool.rs / ix_initialize_customizable_pool.rs: a pool, its first
        position (with its NFT) and the payer's first liquidity.

        Anchor's order: the arguments, each account deserialized in field order (the `init`
        ones taken raw), the `init` accounts created in field order (position_nft_mint,
        position_nft_account, pool, position, token_a_vault, token_b_vault), the other
        fields' constraints, then the handler."""
        name = "InitializeCustomizablePool" if customizable else "InitializePool"
        logs = [f"Program log: Instruction: {name}"]
        try:
            params = (
                parse_initialize_customizable_pool(data[8:])
                if customizable
                else parse_initialize_pool(data[8:])
            )
        except ValueError:
            raise anchor_error(logs, INSTRUCTION_DID_NOT_DESERIALIZE) from None
        names = INITIALIZE_CUSTOMIZABLE_POOL_ACCOUNTS if customizable else INITIALIZE_POOL_ACCOUNTS
        if len(accounts) < len(names):
            raise anchor_error(logs, ACCOUNT_NOT_ENOUGH_KEYS)
        acc = dict(zip(names, accounts, strict=False))
        remaining = accounts[len(names) :]

        # Deserialization, field by field.
        if not acc["payer"].is_signer:
            raise anchor_error(logs, ACCOUNT_NOT_SIGNER, account="payer")
        config = b""
        if not customizable:
            loaded = load_anchor_account(
                view, acc["config"], self.program_id, CONFIG_DISC, logs, "config"
            )
            config = bytes(loaded.data)
            if len(config) < CONFIG_LEN:
                raise anchor_error(logs, ACCOUNT_DID_NOT_DESERIALIZE, account="config")
        mints = {
            side: load_mint(view, acc[f"token_{side}_mint"], logs, f"token_{side}_mint")
            for side in "ab"
        }
        for side in "ab":
            load_token_account(view, acc[f"payer_token_{side}"], logs, f"payer_token_{side}")
        for field, wanted in (
            ("token_a_program", TOKEN_PROGRAMS),
            ("token_b_program", TOKEN_PROGRAMS),
            ("token_2022_program", (TOKEN_2022_PROGRAM,)),
            ("system_program", (SYSTEM_PROGRAM,)),
            ("program", (self.program_id,)),
        ):
            if acc[field].pubkey not in wanted:
                raise anchor_error(logs, INVALID_PROGRAM_ID, account=field)

        def key(field: str) -> Pubkey:
            return acc[field].pubkey

        def pda(*seeds: bytes) -> Pubkey:
            return Pubkey.find_program_address(list(seeds), self.program_id)[0]

        pending = Pending(view)
        out: list[str] = []
        payer = key("payer")
        nft, pool_key = key("position_nft_mint"), key("pool")

        # The `init` accounts, in field order.
        if not acc["position_nft_mint"].is_signer or not acc["position_nft_mint"].is_writable:
            # The System program's create_account needs the new mint's signature.
            line = f"{nft}'s signer privilege escalated"
            raise builtin_error([*logs, *out, line], "PrivilegeEscalation")
        out += create_account(
            pending,
            payer,
            nft,
            position_nft_mint_data(nft, pool_key, self.pool_authority, 0, metadata=False),
            TOKEN_2022_PROGRAM,
            [*logs, *out],
        )
        for line in (
            "Program log: MetadataPointerInstruction::Initialize",
            "Program log: Instruction: InitializeMintCloseAuthority",
            "Program log: Instruction: InitializeMint2",
        ):
            out += invoked(TOKEN_2022_PROGRAM, 2, [line])
        if key("position_nft_account") != pda(b"position_nft_account", bytes(nft)):
            raise anchor_error([*logs, *out], CONSTRAINT_SEEDS, account="position_nft_account")
        out += create_token_account(
            pending,
            payer,
            key("position_nft_account"),
            nft,
            key("creator"),
            TOKEN_2022_PROGRAM,
            [*logs, *out],
        )
        low_high = sorted((bytes(key("token_a_mint")), bytes(key("token_b_mint"))))
        pool_seeds = (
            [b"cpool", low_high[1], low_high[0]]
            if customizable
            else [b"pool", bytes(key("config")), low_high[1], low_high[0]]
        )
        if pool_key != pda(*pool_seeds):
            raise anchor_error([*logs, *out], CONSTRAINT_SEEDS, account="pool")
        out += create_account(
            pending,
            payer,
            pool_key,
            POOL_DISC + bytes(POOL_LEN - 8),
            self.program_id,
            [*logs, *out],
        )
        if key("position") != pda(b"position", bytes(nft)):
            raise anchor_error([*logs, *out], CONSTRAINT_SEEDS, account="position")
        out += create_account(
            pending,
            payer,
            key("position"),
            POSITION_DISC + bytes(POSITION_LEN - 8),
            self.program_id,
            [*logs, *out],
        )
        for side in "ab":
            vault = key(f"token_{side}_vault")
            mint = key(f"token_{side}_mint")
            if vault != pda(b"token_vault", bytes(mint), bytes(pool_key)):
                raise anchor_error([*logs, *out], CONSTRAINT_SEEDS, account=f"token_{side}_vault")
            out += create_token_account(
                pending,
                payer,
                vault,
                mint,
                self.pool_authority,
                key(f"token_{side}_program"),
                [*logs, *out],
            )

        # The other fields' constraints, in field order.
        def refuse(code: int, field: str) -> ProgramError:
            return anchor_error([*logs, *out], code, account=field)

        if not acc["payer"].is_writable:
            raise refuse(CONSTRAINT_MUT, "payer")
        if key("pool_authority") != self.pool_authority:
            raise refuse(CONSTRAINT_ADDRESS, "pool_authority")
        if key("token_a_mint") == key("token_b_mint"):
            raise refuse(CONSTRAINT_RAW, "token_a_mint")
        for side in "ab":
            if mints[side].owner != key(f"token_{side}_program"):
                raise refuse(CONSTRAINT_MINT_TOKEN_PROGRAM, f"token_{side}_mint")
        for side in "ab":
            if not acc[f"payer_token_{side}"].is_writable:
                raise refuse(CONSTRAINT_MUT, f"payer_token_{side}")
        if key("event_authority") != self.event_authority:
            raise refuse(CONSTRAINT_SEEDS, "event_authority")

        try:
            self._initialize_pool(view, pending, acc, remaining, params, config, mints, logs, out)
        except Fail as failure:
            raise self._fail([*logs, *out], failure.code) from None
        pending.commit()
        return [*logs, *out]

    def _initialize_pool(
        self,
        view: AccountsView,
        pending: Pending,
        acc: dict[str, Meta],
        remaining: Sequence[Meta],
        params: dict[str, Any],
        config: bytes,
        mints: dict[str, Account],
        logs: list[str],
        out: list[str],
    ) -> None:
        """The handlers of both instructions, from their first check to the last event;
        what it logs goes to `out`, what it writes to `pending`."""
        clock = read_clock(view, [*logs, *out])
        payer, pool_key, nft = (
            acc["payer"].pubkey,
            acc["pool"].pubkey,
            acc["position_nft_mint"].pubkey,
        )
        fees = PoolData(bytes(POOL_LEN))
        if config:
            mode, activation_type = -1, config_field(config, "activation_type")
        else:
            mode, activation_type = self._validate_customizable(params, fees, clock)
        for index, side in enumerate("ab"):
            mint = acc[f"token_{side}_mint"].pubkey
            if not damm_supported_mint(mint, mints[side]):
                self._require_token_badge(view, mint, remaining[index : index + 1], [*logs, *out])
        if config:
            mode = self._validate_static(params, config, payer, clock, fees)
            low, high = (
                config_field(config, "sqrt_min_price"),
                config_field(config, "sqrt_max_price"),
            )
            has_alpha_vault = any(config[8:40])
            alpha_base = Pubkey.from_bytes(config[8:40])
        else:
            low, high = params["sqrt_min_price"], params["sqrt_max_price"]
            has_alpha_vault, alpha_base = params["has_alpha_vault"], payer
        info = initial_pool_information(mode, low, high, params["sqrt_price"], params["liquidity"])
        if info["token_a_amount"] == 0 and info["token_b_amount"] == 0:
            raise Fail(AMOUNT_IS_ZERO)
        current = clock.slot if activation_type == 0 else clock.unix_timestamp % (1 << 64)
        activation_point = params["activation_point"]
        if activation_point is None:
            activation_point = current

        # Pool::initialize, with the fees' PoolFeesStruct.
        created = pending.get(pool_key)
        assert created is not None  # by the init above
        pool = PoolData(bytes(created.data))
        start = LAYOUT["base_fee_info"][0]
        pool.data[start : start + 160] = fees.data[start : start + 160]
        pool["init_sqrt_price"] = info["sqrt_price"]
        whitelisted = Pubkey.default()
        if has_alpha_vault:
            seeds = [b"vault", bytes(alpha_base), bytes(pool_key)]
            whitelisted = Pubkey.find_program_address(seeds, ALPHA_VAULT_PROGRAM)[0]
        for field, value in (
            ("token_a_mint", acc["token_a_mint"].pubkey),
            ("token_b_mint", acc["token_b_mint"].pubkey),
            ("token_a_vault", acc["token_a_vault"].pubkey),
            ("token_b_vault", acc["token_b_vault"].pubkey),
            ("whitelisted_vault", whitelisted),
            ("creator", acc["creator"].pubkey),
        ):
            pool.put_key(field, value)
        for field, number in (
            ("sqrt_min_price", info["sqrt_min_price"]),
            ("sqrt_max_price", info["sqrt_max_price"]),
            ("activation_point", activation_point),
            ("activation_type", activation_type),
            ("token_a_flag", int(mints["a"].owner != TOKEN_PROGRAM)),
            ("token_b_flag", int(mints["b"].owner != TOKEN_PROGRAM)),
            ("liquidity", params["liquidity"]),
            ("sqrt_price", info["sqrt_price"]),
            ("collect_fee_mode", mode),
            ("pool_type", POOL_TYPE_PERMISSIONLESS if config else POOL_TYPE_CUSTOMIZABLE),
            ("fee_version", CURRENT_POOL_VERSION),
            ("token_a_amount", info["token_a_amount"]),
            ("token_b_amount", info["token_b_amount"]),
            ("layout_version", 1),
            ("total_position", 1),  # Position::initialize: metrics.increase_position
        ):
            pool[field] = number
        pending.set(pool_key, with_data(created, bytes(pool.data)))

        # Position::initialize
        position_key = acc["position"].pubkey
        position_account = pending.get(position_key)
        assert position_account is not None  # by the init above
        position = bytearray(bytes(position_account.data))
        position[8:40] = bytes(pool_key)
        position[40:72] = bytes(nft)
        position[152:168] = info["initial_liquidity"].to_bytes(16, "little")  # unlocked
        pending.set(position_key, with_data(position_account, bytes(position)))

        # create_position_nft: TokenMetadata on the mint (reallocated), its rent topped up by
        # the payer, one NFT minted to the creator's position NFT account.
        out += invoked(TOKEN_2022_PROGRAM, 2, ["Program log: TokenMetadataInstruction: Initialize"])
        full = position_nft_mint_data(nft, pool_key, self.pool_authority, 0, metadata=True)
        nft_account = pending.get(nft)
        assert nft_account is not None  # by the init above
        top_up = rent_exempt_lamports(len(full)) - nft_account.lamports
        if top_up > 0:
            out += transfer_lamports(pending, payer, nft, top_up, [*logs, *out])
        nft_account = pending.get(nft)
        assert nft_account is not None
        pending.set(nft, with_data(nft_account, full))
        out += mint_to(pending, TOKEN_2022_PROGRAM, nft, acc["position_nft_account"].pubkey, 1)
        out += invoked(self.program_id, 2)  # emit_cpi!(EvtCreatePosition)

        # The payer's tokens, their transfer fees on top, into the vaults.
        for side in "ab":
            mint_data = bytes(mints[side].data)
            total = transfer_fee_included(mint_data, info[f"token_{side}_amount"], clock.epoch)
            if not config:
                total = max(total, 1)  # "at least 1 lamport to prove ownership of token mints"
            move = Transfer(
                acc[f"token_{side}_program"].pubkey,
                acc[f"payer_token_{side}"].pubkey,
                acc[f"token_{side}_mint"].pubkey,
                acc[f"token_{side}_vault"].pubkey,
                payer,
                total,
                mint_data[44],
            )
            out += token_transfer(pending, move, clock.epoch, [*logs, *out])
        out += invoked(self.program_id, 2)  # emit_cpi!(EvtInitializePool)

    def _validate_customizable(
        self, params: dict[str, Any], fees: PoolData, clock: ClockSysvar
    ) -> tuple[int, int]:
        """InitializeCustomizablePoolParameters::validate; fills `fees` (PoolFeeParameters::
        to_pool_fees_struct). Returns (collect fee mode, activation type)."""
        activation_type, mode = params["activation_type"], params["collect_fee_mode"]
        if activation_type not in (0, 1):
            raise Fail(INVALID_ACTIVATION_TYPE)
        if mode not in (0, 1, 2):
            raise Fail(INVALID_COLLECT_FEE_MODE)
        low, high = params["sqrt_min_price"], params["sqrt_max_price"]
        if mode != 2 and not (MIN_SQRT_PRICE <= low < high <= MAX_SQRT_PRICE):
            raise Fail(INVALID_PRICE_RANGE)
        validate_initial_sqrt_price(mode, params["sqrt_price"], low, high)
        if params["liquidity"] == 0:
            raise Fail(INVALID_MINIMUM_LIQUIDITY)
        compounding = params["compounding_fee_bps"]
        if (mode == 2 and not 0 < compounding <= MAX_BASIS_POINT) or (mode != 2 and compounding):
            raise Fail(INVALID_COMPOUNDING_FEE_BPS)
        start = LAYOUT["base_fee_info"][0]
        fees.data[start : start + 32] = base_fee_info(params["base_fee"])
        validate_base_fee(fees, mode, activation_type)
        dynamic = params["dynamic_fee"]
        if dynamic is not None:
            validate_dynamic_fee(dynamic)
            fees["dyn_initialized"] = 1
            for field in DYNAMIC_FIELDS:
                fees[f"dyn_{field}"] = dynamic[field]
        fees["protocol_fee_percent"] = PROTOCOL_FEE_PERCENT
        fees["referral_fee_percent"] = HOST_FEE_PERCENT
        fees["compounding_fee_bps"] = compounding
        validate_activation(
            params["activation_point"], activation_type, params["has_alpha_vault"], clock
        )
        return mode, activation_type

    def _validate_static(
        self,
        params: dict[str, Any],
        config: bytes,
        payer: Pubkey,
        clock: ClockSysvar,
        fees: PoolData,
    ) -> int:
        """initialize_pool's checks against its static config; fills `fees` from the config's
        PoolFeesConfig. Returns the collect fee mode."""
        if params["liquidity"] == 0:
            raise Fail(INVALID_MINIMUM_LIQUIDITY)
        config_type = config_field(config, "config_type")
        if config_type > 1:
            raise Fail(TYPE_CAST_FAILED)
        if config_type != 0:
            raise Fail(INVALID_CONFIG_TYPE)
        creator_authority = config[40:72]
        if any(creator_authority) and creator_authority != bytes(payer):
            raise Fail(INVALID_AUTHORITY_TO_CREATE_THE_POOL)
        activation_type = config_field(config, "activation_type")
        validate_activation(params["activation_point"], activation_type, any(config[8:40]), clock)
        mode = config_field(config, "collect_fee_mode")
        if mode > 2:
            raise Fail(TYPE_CAST_FAILED)
        low, high = config_field(config, "sqrt_min_price"), config_field(config, "sqrt_max_price")
        validate_initial_sqrt_price(mode, params["sqrt_price"], low, high)
        start = LAYOUT["base_fee_info"][0]
        fees.data[start : start + 32] = config[72:104]
        if config_field(config, "dyn_initialized"):
            fees["dyn_initialized"] = 1
            for field in DYNAMIC_FIELDS:
                fees[f"dyn_{field}"] = config_field(config, f"dyn_{field}")
        for field in ("protocol_fee_percent", "referral_fee_percent", "compounding_fee_bps"):
            fees[field] = config_field(config, field)
        return mode

    def _require_token_badge(
        self, view: AccountsView, mint: Pubkey, badge: Sequence[Meta], logs: list[str]
    ) -> None:
        """is_token_badge_initialized: an unsupported mint needs its TokenBadge account among
        the remaining accounts (index 0 for token A, 1 for token B)."""
        if not badge:
            raise Fail(INVALID_TOKEN_BADGE)
        account = load_anchor_account(
            view, badge[0], self.program_id, TOKEN_BADGE_DISC, logs, "token_badge"
        )
        if bytes(account.data)[8:40] != bytes(mint):
            raise Fail(INVALID_TOKEN_BADGE)


PROGRAM: MeteoraDammV2Program = MeteoraDammV2Program(PROGRAM_ID)


# ---------------------------------------------------------------------------------- creation
def _delta_a_up(lower: int, upper: int, liquidity: int) -> int:
    return -(-liquidity * (upper - lower) // (lower * upper))


def _delta_b_up(lower: int, upper: int, liquidity: int) -> int:
    return -(-liquidity * (upper - lower) >> 128)


def price_and_liquidity(reserve_a: int, reserve_b: int, lo: int, hi: int) -> tuple[int, int]:
    """A sqrt price (Q64.64) and the largest liquidity whose initial amounts (curve.rs
    get_initialize_amounts, rounded up) fit the reserves, over [lo, hi]."""
    if reserve_a <= 0 or reserve_b <= 0:
        raise ValueError("both reserves must be positive")
    sqrt_price = isqrt((reserve_b << 128) // reserve_a)
    if not lo < sqrt_price < hi:
        raise ValueError("the reserves' price is outside the pool's sqrt price range")
    from_a = reserve_a * sqrt_price * hi // (hi - sqrt_price)
    from_b = (reserve_b << 128) // (sqrt_price - lo)
    liquidity = min(from_a, from_b)
    while liquidity > 0:
        if (
            _delta_a_up(sqrt_price, hi, liquidity) <= reserve_a
            and _delta_b_up(lo, sqrt_price, liquidity) <= reserve_b
        ):
            return sqrt_price, liquidity
        liquidity -= max(1, liquidity >> 64)  # rounding up can overshoot by a hair
    raise ValueError("the reserves are too small for a pool")


def _tracked_amounts(
    collect_fee_mode: int, a: int, b: int, sqrt_price: int, liquidity: int, lo: int, hi: int
) -> tuple[int, int]:
    """token_a_amount / token_b_amount (layout V1): the compounding pool's reserves, or the
    concentrated curve's initial amounts (get_initial_pool_information, rounded up)."""
    if collect_fee_mode == 2:
        return a, b
    return _delta_a_up(sqrt_price, hi, liquidity), _delta_b_up(lo, sqrt_price, liquidity)


def create_pool(
    view: AccountsView,
    *,
    pool: Pubkey,
    mint_a: Pubkey,
    mint_b: Pubkey,
    decimals_a: int,
    decimals_b: int,
    reserve_a: int,
    reserve_b: int,
    fee_rate_ppm: int,
    collect_fee_mode: int = 1,
    base_fee: dict[str, int] | None = None,
    dynamic_fee: dict[str, int] | None = None,
    activation_type: int = 1,
    activation_point: int = 0,
    pool_status: int = 0,
    fee_version: int = 1,
    protocol_fee_percent: int = 20,
    referral_fee_percent: int = 20,
    compounding_fee_bps: int = 0,
    sqrt_price_range: tuple[int, int] = (MIN_SQRT_PRICE, MAX_SQRT_PRICE),
    layout_version: int = 1,
    **unknown: Any,
) -> None:
    """A pool as the initialize instructions leave it; tokens A and B keep the caller's order.

    `fee_rate_ppm` (parts per million) is the cliff fee; `base_fee` adds BaseFeeInfo fields
    (`base_fee_mode`, `number_of_period`, `period_frequency`, `reduction_factor`, ...);
    `dynamic_fee` sets the DynamicFeeStruct (`bin_step`, `filter_period`, `decay_period`,
    `reduction_factor`, `variable_fee_control`, `max_volatility_accumulator`, and optionally the
    state `volatility_accumulator`, ...); collect fee mode 2 (compounding) uses x * y = k on the
    tracked token amounts. Decimals are not part of the pool account."""
    if unknown:
        raise TypeError(f"unknown DAMM v2 pool options: {sorted(unknown)}")
    program_id = PROGRAM.program_id
    state = PoolData(bytes(POOL_LEN))
    state.data[:8] = POOL_DISC
    state["cliff_fee_numerator"] = fee_rate_ppm * 1000  # ppm -> parts per billion
    for name, value in (base_fee or {}).items():
        state[name] = value
    state["protocol_fee_percent"] = protocol_fee_percent
    state["referral_fee_percent"] = referral_fee_percent
    state["compounding_fee_bps"] = compounding_fee_bps
    if dynamic_fee is not None:
        state["dyn_initialized"] = 1
        bin_step = dynamic_fee.get("bin_step", 1)
        state["dyn_bin_step"] = bin_step
        state["dyn_bin_step_u128"] = (bin_step << 64) // MAX_BASIS_POINT
        for name, value in dynamic_fee.items():
            state[f"dyn_{name}"] = value
    programs = []
    for mint in (mint_a, mint_b):
        account = view.get(mint)
        programs.append(account.owner if account is not None else TOKEN_PROGRAM)

    def vault_of(mint: Pubkey) -> Pubkey:
        return Pubkey.find_program_address([b"token_vault", bytes(mint), bytes(pool)], program_id)[
            0
        ]

    vault_a, vault_b = vault_of(mint_a), vault_of(mint_b)
    for name, key in (
        ("token_a_mint", mint_a),
        ("token_b_mint", mint_b),
        ("token_a_vault", vault_a),
        ("token_b_vault", vault_b),
    ):
        state.put_key(name, key)
    if collect_fee_mode == 2:
        # CompoundingLiquidity: sqrt price from the amounts, liquidity sqrt(a * b) << 64.
        sqrt_price = isqrt((reserve_b << 128) // reserve_a)
        liquidity = isqrt(reserve_a * reserve_b << 128)
        lo, hi = 0, U128
    else:
        lo, hi = sqrt_price_range
        sqrt_price, liquidity = price_and_liquidity(reserve_a, reserve_b, lo, hi)
    state["liquidity"] = liquidity
    state["sqrt_min_price"], state["sqrt_max_price"] = lo, hi
    state["sqrt_price"] = sqrt_price
    state["init_sqrt_price"] = sqrt_price
    state["dyn_sqrt_price_reference"] = state["dyn_sqrt_price_reference"] or (
        sqrt_price if dynamic_fee is not None else 0
    )
    state["activation_point"] = activation_point
    state["activation_type"] = activation_type
    state["pool_status"] = pool_status
    state["token_a_flag"] = int(programs[0] == TOKEN_2022_PROGRAM)
    state["token_b_flag"] = int(programs[1] == TOKEN_2022_PROGRAM)
    state["collect_fee_mode"] = collect_fee_mode
    state["pool_type"] = 1  # Customizable: created with its own parameters
    state["fee_version"] = fee_version
    state["token_a_amount"], state["token_b_amount"] = _tracked_amounts(
        collect_fee_mode, reserve_a, reserve_b, sqrt_price, liquidity, lo, hi
    )
    state["layout_version"] = layout_version
    view.set(pool, Account(rent_exempt_lamports(POOL_LEN), bytes(state.data), program_id, False, 0))
    for vault, mint, program, reserve in (
        (vault_a, mint_a, programs[0], reserve_a),
        (vault_b, mint_b, programs[1], reserve_b),
    ):
        mint_account = view.get(mint)
        extensions = account_extensions_for_mint(bytes(mint_account.data)) if mint_account else []
        view.set(
            vault, token_account(mint, PROGRAM.pool_authority, reserve, program, extensions or None)
        )


def config_address(index: int, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """ix_create_static_config.rs: the Config PDA of `index`, seeds ["config", index u64 LE]."""
    return Pubkey.find_program_address([b"config", index.to_bytes(8, "little")], program_id)[0]


def write_config(
    view: AccountsView,
    index: int,
    *,
    base_fee: dict[str, int],
    dynamic_fee: dict[str, int] | None = None,
    collect_fee_mode: int = 1,
    activation_type: int = 1,
    sqrt_min_price: int = MIN_SQRT_PRICE,
    sqrt_max_price: int = MAX_SQRT_PRICE,
    pool_creator_authority: Pubkey | None = None,
    vault_config_key: Pubkey | None = None,
    compounding_fee_bps: int = 0,
    program_id: Pubkey = PROGRAM_ID,
) -> Pubkey:
    """A static Config as `create_config` (init_static_config) leaves it, at its PDA:
    `base_fee` names BaseFeeInfo fields (`cliff_fee_numerator`, `base_fee_mode`,
    `number_of_period`, ...), `dynamic_fee` the DynamicFeeConfig ones (`bin_step`,
    `filter_period`, `decay_period`, `reduction_factor`, `variable_fee_control`,
    `max_volatility_accumulator`); protocol and referral shares are the program's constants."""
    address = config_address(index, program_id)
    data = bytearray(CONFIG_LEN)
    data[:8] = CONFIG_DISC

    def put(name: str, value: int) -> None:
        at, size = CONFIG_OFFSETS[name]
        data[at : at + size] = value.to_bytes(size, "little")

    fees = PoolData(bytes(POOL_LEN))
    for name, value in base_fee.items():
        fees[name] = value
    start = LAYOUT["base_fee_info"][0]
    data[72:104] = fees.data[start : start + 32]
    if dynamic_fee is not None:
        put("dyn_initialized", 1)
        bin_step = dynamic_fee.get("bin_step", BIN_STEP_BPS_DEFAULT)
        put("dyn_bin_step_u128", (bin_step << 64) // MAX_BASIS_POINT)
        for name, value in {"bin_step": bin_step, **dynamic_fee}.items():
            put(f"dyn_{name}", value)
    if vault_config_key is not None:
        data[8:40] = bytes(vault_config_key)
    if pool_creator_authority is not None:
        data[40:72] = bytes(pool_creator_authority)
    for name, value in (
        ("protocol_fee_percent", PROTOCOL_FEE_PERCENT),
        ("referral_fee_percent", HOST_FEE_PERCENT),
        ("compounding_fee_bps", compounding_fee_bps),
        ("activation_type", activation_type),
        ("collect_fee_mode", collect_fee_mode),
        ("config_type", 0),  # ConfigType::Static
        ("index", index),
        ("sqrt_min_price", sqrt_min_price),
        ("sqrt_max_price", sqrt_max_price),
    ):
        put(name, value)
    account = Account(rent_exempt_lamports(CONFIG_LEN), bytes(data), program_id, False, 0)
    view.set(address, account)
    return address


def set_pool_reserves(
    view: AccountsView, pool: Pubkey, reserve_a_for_mint: dict[Pubkey, int]
) -> None:
    """New reserves: recompute sqrt price and liquidity (and the tracked token amounts) from
    them and set the vault balances."""
    account = view.get(pool)
    if account is None:
        raise ValueError(f"pool {pool} does not exist")
    state = PoolData(bytes(account.data))
    mints = (state.key("token_a_mint"), state.key("token_b_mint"))
    vaults = (state.key("token_a_vault"), state.key("token_b_vault"))
    unknown = set(reserve_a_for_mint) - set(mints)
    if unknown:
        raise ValueError(f"mints {unknown} are not in pool {pool}")
    vault_accounts = [view.get(v) for v in vaults]
    if vault_accounts[0] is None or vault_accounts[1] is None:
        raise ValueError(f"a vault of pool {pool} does not exist")
    current = [TokenAccount.unpack(bytes(v.data)).amount for v in vault_accounts if v is not None]
    reserve_a = reserve_a_for_mint.get(mints[0], current[0])
    reserve_b = reserve_a_for_mint.get(mints[1], current[1])
    if state["collect_fee_mode"] == 2:
        sqrt_price = isqrt((reserve_b << 128) // reserve_a)
        liquidity = isqrt(reserve_a * reserve_b << 128)
    else:
        sqrt_price, liquidity = price_and_liquidity(
            reserve_a, reserve_b, state["sqrt_min_price"], state["sqrt_max_price"]
        )
    state["sqrt_price"] = sqrt_price
    state["liquidity"] = liquidity
    state["token_a_amount"], state["token_b_amount"] = _tracked_amounts(
        state["collect_fee_mode"],
        reserve_a,
        reserve_b,
        sqrt_price,
        liquidity,
        state["sqrt_min_price"],
        state["sqrt_max_price"],
    )
    view.set(pool, with_data(account, bytes(state.data)))
    view.set(vaults[0], with_amount(vault_accounts[0], reserve_a))
    view.set(vaults[1], with_amount(vault_accounts[1], reserve_b))


__all__ = [
    "PROGRAM",
    "PROGRAM_ID",
    "config_address",
    "create_pool",
    "set_pool_reserves",
    "write_config",
]
