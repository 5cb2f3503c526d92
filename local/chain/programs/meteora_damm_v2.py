"""Meteora DAMM v2 (cp-amm) `swap` (exact in), executed in Python for the local chain.

Follows damm-v2 programs/cp-amm/src: instructions/swap/ix_swap.rs (account checks),
ix_p_swap.rs (handler), swap_exact_in.rs (slippage), state/pool.rs
(get_swap_result_from_exact_input, apply_swap_result), state/fee.rs (FeeMode, fee split) and
curve.rs. Simulated: static base fee, collect fee modes BothToken and OnlyB, no referral account,
no dynamic fee, no Token-2022 transfer fees, no activation-point clock (local pools start active).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import isqrt

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from execution.venues import meteora_damm_v2 as layout
from local.chain.programs import (
    ACCOUNT_DISCRIMINATOR_MISMATCH,
    ACCOUNT_NOT_INITIALIZED,
    ACCOUNT_NOT_SIGNER,
    ACCOUNT_OWNED_BY_WRONG_PROGRAM,
    CONSTRAINT_ADDRESS,
    CONSTRAINT_HAS_ONE,
    CONSTRAINT_MUT,
    CONSTRAINT_SEEDS,
    CONSTRAINT_TOKEN_MINT,
    AccountsView,
    Meta,
    anchor_error,
    apply_token_moves,
    check_transfer,
    load_token_account,
    swap_args,
    with_data,
)
from local.chain.programs.token import (
    TokenAccount,
    rent_exempt_lamports,
    token_account,
    with_amount,
)

PROGRAM_ID = Pubkey.from_string("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG")
Q128 = 1 << 128
FEE_DENOMINATOR = 1_000_000_000
LOCAL_PROTOCOL_FEE_PERCENT = 20  # constants.rs PROTOCOL_FEE_PERCENT
LOCAL_REFERRAL_FEE_PERCENT = 20  # constants.rs HOST_FEE_PERCENT
LOCAL_COLLECT_FEE_MODE = layout.COLLECT_FEE_ONLY_B  # fees in token B (USDC for SOL/USDC)
LOCAL_POOL_VERSION = 1


def _uint(data: bytes | bytearray, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


def _put(data: bytearray, offset: int, size: int, value: int) -> None:
    data[offset : offset + size] = value.to_bytes(size, "little")


def _mul_div(x: int, y: int, denominator: int, round_up: bool) -> int:
    """u128x128_math::mul_div_u256."""
    product = x * y
    return -(-product // denominator) if round_up else product // denominator


def _delta_amount_a(lower: int, upper: int, liquidity: int, round_up: bool) -> int:
    """curve.rs get_delta_amount_a_unsigned: L * (upper - lower) / (lower * upper)."""
    return _mul_div(liquidity, upper - lower, lower * upper, round_up)


def _delta_amount_b(lower: int, upper: int, liquidity: int, round_up: bool) -> int:
    """curve.rs get_delta_amount_b_unsigned: L * (upper - lower) >> 128."""
    product = liquidity * (upper - lower)
    return -(-product // Q128) if round_up else product >> 128


def _next_sqrt_price_from_input(sqrt_price: int, liquidity: int, amount: int, a_for_b: bool) -> int:
    if a_for_b:  # get_next_sqrt_price_from_amount_a_rounding_up
        if amount == 0:
            return sqrt_price
        return _mul_div(liquidity, sqrt_price, liquidity + amount * sqrt_price, round_up=True)
    # get_next_sqrt_price_from_amount_b_rounding_down
    return sqrt_price + (amount << 128) // liquidity


def _initialize_amounts(
    sqrt_min: int, sqrt_max: int, sqrt_price: int, liquidity: int
) -> tuple[int, int]:
    """curve.rs get_initialize_amounts: what the vaults must hold for this price and liquidity."""
    return (
        _delta_amount_a(sqrt_price, sqrt_max, liquidity, round_up=True),
        _delta_amount_b(sqrt_min, sqrt_price, liquidity, round_up=True),
    )


def _price_and_liquidity(reserve_a: int, reserve_b: int) -> tuple[int, int]:
    """Full-range sqrt price (Q64.64) and liquidity whose initialize amounts fit the reserves."""
    if reserve_a <= 0 or reserve_b <= 0:
        raise ValueError("both reserves must be positive")
    lo, hi = layout.MIN_SQRT_PRICE, layout.MAX_SQRT_PRICE
    sqrt_price = isqrt((reserve_b << 128) // reserve_a)
    if not lo < sqrt_price < hi:
        raise ValueError("the reserves' price is outside DAMM v2's sqrt price range")
    # Invert both delta formulas and keep the smaller liquidity, so neither side is short.
    from_a = reserve_a * sqrt_price * hi // (hi - sqrt_price)
    from_b = (reserve_b << 128) // (sqrt_price - lo)
    liquidity = min(from_a, from_b)
    while liquidity > 0:
        need_a, need_b = _initialize_amounts(lo, hi, sqrt_price, liquidity)
        if need_a <= reserve_a and need_b <= reserve_b:
            return sqrt_price, liquidity
        liquidity -= max(1, liquidity >> 64)  # rounding up can overshoot by a hair
    raise ValueError("the reserves are too small for a pool")


class MeteoraDammV2Program:
    def __init__(self, program_id: Pubkey) -> None:
        self.program_id: Pubkey = program_id
        self.pool_authority = Pubkey.find_program_address([layout.POOL_AUTHORITY_SEED], program_id)[
            0
        ]
        self.event_authority = Pubkey.find_program_address(
            [layout.EVENT_AUTHORITY_SEED], program_id
        )[0]

    def process(self, view: AccountsView, accounts: Sequence[Meta], data: bytes) -> list[str]:
        logs = ["Program log: Instruction: Swap"]
        amount_in, minimum_amount_out = swap_args(
            data, accounts, layout.SWAP_DISCRIMINATOR, 14, logs
        )
        (
            authority,
            pool_meta,
            user_in_meta,
            user_out_meta,
            vault_a_meta,
            vault_b_meta,
            mint_a,
            mint_b,
            payer,
            program_a,
            program_b,
            referral,
            event_authority,
            _program,
        ) = accounts[:14]

        if authority.pubkey != self.pool_authority:
            raise anchor_error(
                logs,
                CONSTRAINT_ADDRESS,
                "ConstraintAddress",
                "An address constraint was violated",
                "pool_authority",
            )
        pool_account = view.get(pool_meta.pubkey)
        if pool_account is None:
            raise anchor_error(
                logs,
                ACCOUNT_NOT_INITIALIZED,
                "AccountNotInitialized",
                "The program expected this account to be already initialized",
                "pool",
            )
        if pool_account.owner != self.program_id:
            raise anchor_error(
                logs,
                ACCOUNT_OWNED_BY_WRONG_PROGRAM,
                "AccountOwnedByWrongProgram",
                "The given account is owned by a different program than expected",
                "pool",
            )
        pool_data = bytearray(bytes(pool_account.data))
        if pool_data[:8] != layout.POOL_DISCRIMINATOR:
            raise anchor_error(
                logs,
                ACCOUNT_DISCRIMINATOR_MISMATCH,
                "AccountDiscriminatorMismatch",
                "Account discriminator did not match what was expected",
                "pool",
            )
        pool = layout.decode(bytes(pool_data), self.program_id, pool_meta.pubkey)
        if vault_a_meta.pubkey != pool.token_a_vault or vault_b_meta.pubkey != pool.token_b_vault:
            raise anchor_error(
                logs,
                CONSTRAINT_HAS_ONE,
                "ConstraintHasOne",
                "A has one constraint was violated",
                "pool",
            )
        for meta, name in (
            (pool_meta, "pool"),
            (user_in_meta, "input_token_account"),
            (user_out_meta, "output_token_account"),
            (vault_a_meta, "token_a_vault"),
            (vault_b_meta, "token_b_vault"),
        ):
            if not meta.is_writable:
                raise anchor_error(
                    logs, CONSTRAINT_MUT, "ConstraintMut", "A mut constraint was violated", name
                )
        user_in_account, user_in = load_token_account(
            view, user_in_meta, logs, "input_token_account"
        )
        user_out_account, user_out = load_token_account(
            view, user_out_meta, logs, "output_token_account"
        )
        vault_a_account, vault_a = load_token_account(view, vault_a_meta, logs, "token_a_vault")
        vault_b_account, vault_b = load_token_account(view, vault_b_meta, logs, "token_b_vault")
        if mint_a.pubkey != vault_a.mint or mint_b.pubkey != vault_b.mint:
            raise anchor_error(
                logs,
                CONSTRAINT_TOKEN_MINT,
                "ConstraintTokenMint",
                "A token mint constraint was violated",
                "token_a_mint",
            )
        if not payer.is_signer:
            raise anchor_error(
                logs,
                ACCOUNT_NOT_SIGNER,
                "AccountNotSigner",
                "The given account did not sign",
                "payer",
            )
        if event_authority.pubkey != self.event_authority:
            raise anchor_error(
                logs,
                CONSTRAINT_SEEDS,
                "ConstraintSeeds",
                "A seeds constraint was violated",
                "event_authority",
            )
        if referral.pubkey != self.program_id:
            raise anchor_error(
                [*logs, "Program log: referral accounts are not simulated on the local chain"],
                layout.INVALID_INPUT,
                "InvalidInput",
                "Invalid input",
            )

        if pool.pool_status != layout.POOL_STATUS_ENABLED:
            raise anchor_error(logs, layout.POOL_DISABLED, "PoolDisabled", "Pool disabled")
        if amount_in == 0:
            raise anchor_error(logs, layout.AMOUNT_IS_ZERO, "AmountIsZero", "Amount is zero")
        # ix_p_swap.rs get_trade_direction: by the input account's mint.
        a_to_b = user_in.mint == pool.token_a_mint
        if pool.collect_fee_mode == layout.COLLECT_FEE_BOTH_TOKEN:
            fees_on_input, fees_on_token_a = False, not a_to_b
        elif pool.collect_fee_mode == layout.COLLECT_FEE_ONLY_B:
            fees_on_input, fees_on_token_a = not a_to_b, False
        else:
            raise anchor_error(
                logs,
                layout.INVALID_COLLECT_FEE_MODE,
                "InvalidCollectFeeMode",
                "Invalid collect fee mode",
            )
        fee_numerator = self._fee_numerator(pool_data, logs)

        def split(amount: int) -> tuple[int, int, int, int]:
            """get_fee_on_amount: (amount after fee, lp fee, protocol fee, partner fee)."""
            trading_fee = -(-amount * fee_numerator // FEE_DENOMINATOR)
            protocol_fee = trading_fee * pool.protocol_fee_percent // 100
            partner_fee = (
                protocol_fee * pool.partner_fee_percent // 100
                if pool.partner != Pubkey.default()
                else 0
            )
            return (
                amount - trading_fee,
                trading_fee - protocol_fee,
                protocol_fee - partner_fee,
                partner_fee,
            )

        fees = (0, 0, 0)
        curve_in = amount_in
        if fees_on_input:
            curve_in, *rest = split(amount_in)
            fees = (rest[0], rest[1], rest[2])
        sqrt_price, liquidity = pool.sqrt_price, pool.liquidity
        next_sqrt_price = _next_sqrt_price_from_input(sqrt_price, liquidity, curve_in, a_to_b)
        if a_to_b:
            if next_sqrt_price < pool.sqrt_min_price:
                raise anchor_error(
                    logs,
                    layout.PRICE_RANGE_VIOLATION,
                    "PriceRangeViolation",
                    "Trade is over price range",
                )
            output = _delta_amount_b(next_sqrt_price, sqrt_price, liquidity, round_up=False)
        else:
            if next_sqrt_price > pool.sqrt_max_price:
                raise anchor_error(
                    logs,
                    layout.PRICE_RANGE_VIOLATION,
                    "PriceRangeViolation",
                    "Trade is over price range",
                )
            output = _delta_amount_a(sqrt_price, next_sqrt_price, liquidity, round_up=False)
        if output > layout.U64_MAX:
            raise anchor_error(
                logs, layout.MATH_OVERFLOW, "MathOverflow", "Math operation overflow"
            )
        if not fees_on_input:
            output, *rest = split(output)
            fees = (rest[0], rest[1], rest[2])
        if output < minimum_amount_out:
            raise anchor_error(
                logs, layout.EXCEEDED_SLIPPAGE, "ExceededSlippage", "Exceeded slippage tolerance"
            )

        user_in_vault = (vault_a, vault_a_meta, vault_a_account, program_a, mint_a)
        user_out_vault = (vault_b, vault_b_meta, vault_b_account, program_b, mint_b)
        if not a_to_b:
            user_in_vault, user_out_vault = user_out_vault, user_in_vault
        in_vault, in_vault_meta, in_vault_account, in_program, in_mint = user_in_vault
        out_vault, out_vault_meta, out_vault_account, out_program, out_mint = user_out_vault
        transfer_in_logs = check_transfer(
            logs, in_program.pubkey, user_in, in_vault, in_mint.pubkey, payer.pubkey, amount_in
        )
        transfer_out_logs = check_transfer(
            [*logs, *transfer_in_logs],
            out_program.pubkey,
            out_vault,
            user_out,
            out_mint.pubkey,
            self.pool_authority,
            output,
        )

        self._apply_swap_result(pool_data, next_sqrt_price, liquidity, fees, fees_on_token_a)
        apply_token_moves(
            view,
            (
                (user_in_meta.pubkey, user_in_account, -amount_in),
                (in_vault_meta.pubkey, in_vault_account, amount_in),
                (out_vault_meta.pubkey, out_vault_account, -output),
                (user_out_meta.pubkey, user_out_account, output),
            ),
        )
        view.set(pool_meta.pubkey, with_data(pool_account, bytes(pool_data)))
        # emit_cpi!: the EvtSwap2 event is a self-invocation signed by the event authority.
        event_logs = [f"Program {self.program_id} invoke [2]", f"Program {self.program_id} success"]
        return [*logs, *transfer_in_logs, *transfer_out_logs, *event_logs]

    def _fee_numerator(self, pool_data: bytearray, logs: list[str]) -> int:
        """The base fee numerator, capped by the pool version's maximum (fee.rs, constants.rs)."""
        if pool_data[layout.DYNAMIC_FEE_INITIALIZED_OFFSET]:
            raise anchor_error(
                [*logs, "Program log: the dynamic fee is not simulated on the local chain"],
                layout.INVALID_INPUT,
                "InvalidInput",
                "Invalid input",
            )
        mode = pool_data[layout.BASE_FEE_MODE_OFFSET]
        period_frequency = _uint(pool_data, layout.PERIOD_FREQUENCY_OFFSET, 8)
        if mode not in layout.BASE_FEE_TIME_SCHEDULER_MODES or period_frequency != 0:
            raise anchor_error(
                [*logs, "Program log: only a static base fee is simulated on the local chain"],
                layout.INVALID_INPUT,
                "InvalidInput",
                "Invalid input",
            )
        cap = layout.MAX_FEE_NUMERATOR_BY_VERSION.get(pool_data[layout.VERSION_OFFSET])
        if cap is None:
            raise anchor_error(
                logs, layout.INVALID_POOL_VERSION, "InvalidPoolVersion", "Invalid pool version"
            )
        return min(_uint(pool_data, layout.CLIFF_FEE_NUMERATOR_OFFSET, 8), cap)

    @staticmethod
    def _apply_swap_result(
        pool_data: bytearray,
        next_sqrt_price: int,
        liquidity: int,
        fees: tuple[int, int, int],
        fees_on_token_a: bool,
    ) -> None:
        """pool.rs apply_swap_result: new price, protocol/partner fees owed, LP fee growth."""
        lp_fee, protocol_fee, partner_fee = fees
        _put(pool_data, layout.SQRT_PRICE_OFFSET, 16, next_sqrt_price)
        if fees_on_token_a:
            protocol_at, partner_at = layout.PROTOCOL_A_FEE_OFFSET, layout.PARTNER_A_FEE_OFFSET
            per_liquidity_at, metric_lp_at = (
                layout.FEE_A_PER_LIQUIDITY_OFFSET,
                layout.METRICS_OFFSET,
            )
        else:
            protocol_at, partner_at = layout.PROTOCOL_B_FEE_OFFSET, layout.PARTNER_B_FEE_OFFSET
            per_liquidity_at, metric_lp_at = (
                layout.FEE_B_PER_LIQUIDITY_OFFSET,
                layout.METRICS_OFFSET + 16,
            )
        _put(pool_data, protocol_at, 8, _uint(pool_data, protocol_at, 8) + protocol_fee)
        _put(pool_data, partner_at, 8, _uint(pool_data, partner_at, 8) + partner_fee)
        growth = (lp_fee << layout.LIQUIDITY_SCALE) // liquidity  # shl_div_256, rounding down
        per_liquidity = (_uint(pool_data, per_liquidity_at, 32) + growth) % (1 << 256)
        _put(pool_data, per_liquidity_at, 32, per_liquidity)
        _put(pool_data, metric_lp_at, 16, _uint(pool_data, metric_lp_at, 16) + lp_fee)


PROGRAM: MeteoraDammV2Program = MeteoraDammV2Program(PROGRAM_ID)


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
) -> None:
    """A full-range, static-fee pool; token A and B keep the caller's order (the program does not
    sort them). Decimals are not part of the pool account."""
    program_id = PROGRAM.program_id
    sqrt_price, liquidity = _price_and_liquidity(reserve_a, reserve_b)
    programs = []
    for mint in (mint_a, mint_b):
        mint_account = view.get(mint)
        programs.append(mint_account.owner if mint_account is not None else None)
    token_programs = [p if p is not None else TOKEN_PROGRAM_ID for p in programs]

    def vault_of(mint: Pubkey) -> Pubkey:
        return Pubkey.find_program_address(
            [layout.TOKEN_VAULT_SEED, bytes(mint), bytes(pool)], program_id
        )[0]

    vault_a, vault_b = vault_of(mint_a), vault_of(mint_b)
    data = bytearray(layout.POOL_LEN)
    data[:8] = layout.POOL_DISCRIMINATOR
    # fee_rate_ppm is parts per million; DAMM v2 numerators are parts per billion.
    _put(data, layout.CLIFF_FEE_NUMERATOR_OFFSET, 8, fee_rate_ppm * 1000)
    data[layout.PROTOCOL_FEE_PERCENT_OFFSET] = LOCAL_PROTOCOL_FEE_PERCENT
    data[layout.REFERRAL_FEE_PERCENT_OFFSET] = LOCAL_REFERRAL_FEE_PERCENT
    for offset, key in (
        (layout.TOKEN_A_MINT_OFFSET, mint_a),
        (layout.TOKEN_B_MINT_OFFSET, mint_b),
        (layout.TOKEN_A_VAULT_OFFSET, vault_a),
        (layout.TOKEN_B_VAULT_OFFSET, vault_b),
    ):
        data[offset : offset + 32] = bytes(key)
    _put(data, layout.LIQUIDITY_OFFSET, 16, liquidity)
    _put(data, layout.SQRT_MIN_PRICE_OFFSET, 16, layout.MIN_SQRT_PRICE)
    _put(data, layout.SQRT_MAX_PRICE_OFFSET, 16, layout.MAX_SQRT_PRICE)
    _put(data, layout.SQRT_PRICE_OFFSET, 16, sqrt_price)
    data[layout.TOKEN_A_FLAG_OFFSET] = int(token_programs[0] == TOKEN_2022_PROGRAM_ID)
    data[layout.TOKEN_B_FLAG_OFFSET] = int(token_programs[1] == TOKEN_2022_PROGRAM_ID)
    data[layout.COLLECT_FEE_MODE_OFFSET] = LOCAL_COLLECT_FEE_MODE
    data[layout.POOL_TYPE_OFFSET] = 1  # Customizable: created with its own parameters
    data[layout.VERSION_OFFSET] = LOCAL_POOL_VERSION
    view.set(pool, Account(rent_exempt_lamports(len(data)), bytes(data), program_id, False, 0))
    view.set(vault_a, token_account(mint_a, PROGRAM.pool_authority, reserve_a, token_programs[0]))
    view.set(vault_b, token_account(mint_b, PROGRAM.pool_authority, reserve_b, token_programs[1]))


def set_pool_reserves(
    view: AccountsView, pool: Pubkey, reserve_a_for_mint: dict[Pubkey, int]
) -> None:
    """New reserves: recompute sqrt price and liquidity from them and set the vault balances."""
    account = view.get(pool)
    if account is None:
        raise ValueError(f"pool {pool} does not exist")
    state = layout.decode(bytes(account.data), account.owner, pool)
    unknown = set(reserve_a_for_mint) - {state.token_a_mint, state.token_b_mint}
    if unknown:
        raise ValueError(f"mints {unknown} are not in pool {pool}")
    vault_accounts = [view.get(state.token_a_vault), view.get(state.token_b_vault)]
    if vault_accounts[0] is None or vault_accounts[1] is None:
        raise ValueError(f"a vault of pool {pool} does not exist")
    current = [TokenAccount.unpack(bytes(v.data)).amount for v in vault_accounts if v is not None]
    reserve_a = reserve_a_for_mint.get(state.token_a_mint, current[0])
    reserve_b = reserve_a_for_mint.get(state.token_b_mint, current[1])
    sqrt_price, liquidity = _price_and_liquidity(reserve_a, reserve_b)
    data = bytearray(bytes(account.data))
    _put(data, layout.SQRT_PRICE_OFFSET, 16, sqrt_price)
    _put(data, layout.LIQUIDITY_OFFSET, 16, liquidity)
    view.set(
        pool,
        Account(
            account.lamports, bytes(data), account.owner, account.executable, account.rent_epoch
        ),
    )
    view.set(state.token_a_vault, with_amount(vault_accounts[0], reserve_a))
    view.set(state.token_b_vault, with_amount(vault_accounts[1], reserve_b))
