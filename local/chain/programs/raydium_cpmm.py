"""Raydium CPMM `swap_base_input`, executed in Python for the local chain.

Follows raydium-cp-swap programs/cp-swap/src/instructions/swap_base_input.rs: the Anchor account
constraints, the swap-disabled bit, CurveCalculator::swap_base_input (curve/fees.rs and
curve/constant_product.rs), the zero-output and slippage requires, and the protocol/fund fee
accrual. Token-2022 transfer fees and the observation (TWAP) update are not simulated.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import isqrt

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from execution.venues import raydium_cpmm as layout
from local.chain.programs import (
    ACCOUNT_DISCRIMINATOR_MISMATCH,
    ACCOUNT_NOT_INITIALIZED,
    ACCOUNT_NOT_SIGNER,
    ACCOUNT_OWNED_BY_WRONG_PROGRAM,
    CONSTRAINT_ADDRESS,
    CONSTRAINT_MUT,
    CONSTRAINT_RAW,
    CONSTRAINT_SEEDS,
    REQUIRE_GT_VIOLATED,
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
    rent_exempt_lamports,
    token_account,
    with_amount,
)

PROGRAM_ID = Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb")  # devnet
OBSERVATION_STATE_LEN = 4075  # 8 + bool + u16 + pubkey + 100 x 40-byte observations + [u64; 4]
FEE_DENOMINATOR = 1_000_000


def _u64(data: bytes | bytearray, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 8], "little")


def _put_u64(data: bytearray, offset: int, value: int) -> None:
    data[offset : offset + 8] = value.to_bytes(8, "little")


def _swap_base_input(
    amount_in: int,
    reserve_in: int,
    reserve_out: int,
    trade_rate: int,
    protocol_rate: int,
    fund_rate: int,
) -> tuple[int, int, int, int]:
    """(amount_out, trade_fee, protocol_fee, fund_fee) as CurveCalculator computes them."""
    trade_fee = (amount_in * trade_rate + FEE_DENOMINATOR - 1) // FEE_DENOMINATOR  # ceil_div
    protocol_fee = trade_fee * protocol_rate // FEE_DENOMINATOR  # floor_div
    fund_fee = trade_fee * fund_rate // FEE_DENOMINATOR
    source_less_fees = amount_in - trade_fee
    # ConstantProductCurve::swap_base_input_without_fees
    amount_out = source_less_fees * reserve_out // (reserve_in + source_less_fees)
    return amount_out, trade_fee, protocol_fee, fund_fee


class RaydiumCpmmProgram:
    def __init__(self, program_id: Pubkey) -> None:
        self.program_id: Pubkey = program_id
        self.authority = Pubkey.find_program_address([layout.AUTH_SEED], program_id)[0]

    def process(self, view: AccountsView, accounts: Sequence[Meta], data: bytes) -> list[str]:
        logs = ["Program log: Instruction: SwapBaseInput"]
        amount_in, minimum_amount_out = swap_args(
            data, accounts, layout.SWAP_BASE_INPUT_DISCRIMINATOR, 13, logs
        )
        (
            payer,
            authority,
            amm_config,
            pool_meta,
            user_in_meta,
            user_out_meta,
            vault_in_meta,
            vault_out_meta,
            program_in,
            program_out,
            mint_in,
            mint_out,
            observation,
        ) = accounts[:13]

        if not payer.is_signer:
            raise anchor_error(
                logs,
                ACCOUNT_NOT_SIGNER,
                "AccountNotSigner",
                "The given account did not sign",
                "payer",
            )
        if authority.pubkey != self.authority:
            raise anchor_error(
                logs,
                CONSTRAINT_SEEDS,
                "ConstraintSeeds",
                "A seeds constraint was violated",
                "authority",
            )
        for meta, name in (
            (pool_meta, "pool_state"),
            (user_in_meta, "input_token_account"),
            (user_out_meta, "output_token_account"),
            (vault_in_meta, "input_vault"),
            (vault_out_meta, "output_vault"),
            (observation, "observation_state"),
        ):
            if not meta.is_writable:
                raise anchor_error(
                    logs, CONSTRAINT_MUT, "ConstraintMut", "A mut constraint was violated", name
                )

        pool_account = view.get(pool_meta.pubkey)
        if pool_account is None:
            raise anchor_error(
                logs,
                ACCOUNT_NOT_INITIALIZED,
                "AccountNotInitialized",
                "The program expected this account to be already initialized",
                "pool_state",
            )
        if pool_account.owner != self.program_id:
            raise anchor_error(
                logs,
                ACCOUNT_OWNED_BY_WRONG_PROGRAM,
                "AccountOwnedByWrongProgram",
                "The given account is owned by a different program than expected",
                "pool_state",
            )
        pool_data = bytearray(bytes(pool_account.data))
        if pool_data[:8] != layout.POOL_STATE_DISCRIMINATOR:
            raise anchor_error(
                logs,
                ACCOUNT_DISCRIMINATOR_MISMATCH,
                "AccountDiscriminatorMismatch",
                "Account discriminator did not match what was expected",
                "pool_state",
            )
        pool = layout.VENUE.decode_pool(bytes(pool_data), self.program_id, pool_meta.pubkey)

        if amm_config.pubkey != pool.amm_config:
            raise anchor_error(
                logs,
                CONSTRAINT_ADDRESS,
                "ConstraintAddress",
                "An address constraint was violated",
                "amm_config",
            )
        config_account = view.get(amm_config.pubkey)
        if config_account is None or config_account.owner != self.program_id:
            raise anchor_error(
                logs,
                ACCOUNT_OWNED_BY_WRONG_PROGRAM,
                "AccountOwnedByWrongProgram",
                "The given account is owned by a different program than expected",
                "amm_config",
            )
        config_data = bytes(config_account.data)
        trade_rate = _u64(config_data, layout.TRADE_FEE_RATE_OFFSET)
        protocol_rate = _u64(config_data, layout.PROTOCOL_FEE_RATE_OFFSET)
        fund_rate = _u64(config_data, layout.FUND_FEE_RATE_OFFSET)

        user_in_account, user_in = load_token_account(
            view, user_in_meta, logs, "input_token_account"
        )
        user_out_account, user_out = load_token_account(
            view, user_out_meta, logs, "output_token_account"
        )
        vault_in_account, vault_in = load_token_account(view, vault_in_meta, logs, "input_vault")
        vault_out_account, vault_out = load_token_account(
            view, vault_out_meta, logs, "output_vault"
        )
        pool_vaults = (pool.token_0_vault, pool.token_1_vault)
        for meta, name in ((vault_in_meta, "input_vault"), (vault_out_meta, "output_vault")):
            if meta.pubkey not in pool_vaults:
                raise anchor_error(
                    logs, CONSTRAINT_RAW, "ConstraintRaw", "A raw constraint was violated", name
                )
        if mint_in.pubkey != vault_in.mint:
            raise anchor_error(
                logs,
                CONSTRAINT_ADDRESS,
                "ConstraintAddress",
                "An address constraint was violated",
                "input_token_mint",
            )
        if mint_out.pubkey != vault_out.mint:
            raise anchor_error(
                logs,
                CONSTRAINT_ADDRESS,
                "ConstraintAddress",
                "An address constraint was violated",
                "output_token_mint",
            )
        if observation.pubkey != pool.observation_key:
            raise anchor_error(
                logs,
                CONSTRAINT_ADDRESS,
                "ConstraintAddress",
                "An address constraint was violated",
                "observation_state",
            )

        # The cluster clock is not visible here; local pools open at time 0.
        if pool.status & layout.SWAP_DISABLED_BIT:
            raise anchor_error(logs, layout.NOT_APPROVED, "NotApproved", "Not approved")
        if amount_in == 0:
            raise anchor_error(
                logs,
                REQUIRE_GT_VIOLATED,
                "RequireGtViolated",
                "A require_gt expression was violated",
            )
        if (
            vault_in_meta.pubkey == pool.token_0_vault
            and vault_out_meta.pubkey == pool.token_1_vault
        ):
            zero_for_one = True
        elif (
            vault_in_meta.pubkey == pool.token_1_vault
            and vault_out_meta.pubkey == pool.token_0_vault
        ):
            zero_for_one = False
        else:
            raise anchor_error(logs, layout.INVALID_VAULT, "InvalidVault", "invaild vault")

        owed_0 = (
            _u64(pool_data, layout.PROTOCOL_FEES_TOKEN_0_OFFSET)
            + _u64(pool_data, layout.FUND_FEES_TOKEN_0_OFFSET)
            + _u64(pool_data, layout.CREATOR_FEES_TOKEN_0_OFFSET)
        )
        owed_1 = (
            _u64(pool_data, layout.PROTOCOL_FEES_TOKEN_1_OFFSET)
            + _u64(pool_data, layout.FUND_FEES_TOKEN_1_OFFSET)
            + _u64(pool_data, layout.CREATOR_FEES_TOKEN_1_OFFSET)
        )
        owed_in, owed_out = (owed_0, owed_1) if zero_for_one else (owed_1, owed_0)
        reserve_in = vault_in.amount - owed_in
        reserve_out = vault_out.amount - owed_out
        amount_out, _, protocol_fee, fund_fee = _swap_base_input(
            amount_in, reserve_in, reserve_out, trade_rate, protocol_rate, fund_rate
        )
        if amount_out == 0:
            raise anchor_error(
                logs,
                REQUIRE_GT_VIOLATED,
                "RequireGtViolated",
                "A require_gt expression was violated",
            )
        if amount_out < minimum_amount_out:
            raise anchor_error(
                logs, layout.EXCEEDED_SLIPPAGE, "ExceededSlippage", "Exceeds desired slippage limit"
            )

        transfer_in_logs = check_transfer(
            logs, program_in.pubkey, user_in, vault_in, mint_in.pubkey, payer.pubkey, amount_in
        )
        transfer_out_logs = check_transfer(
            [*logs, *transfer_in_logs],
            program_out.pubkey,
            vault_out,
            user_out,
            mint_out.pubkey,
            self.authority,
            amount_out,
        )

        fees_offsets = (
            (layout.PROTOCOL_FEES_TOKEN_0_OFFSET, layout.FUND_FEES_TOKEN_0_OFFSET)
            if zero_for_one
            else (layout.PROTOCOL_FEES_TOKEN_1_OFFSET, layout.FUND_FEES_TOKEN_1_OFFSET)
        )
        _put_u64(pool_data, fees_offsets[0], _u64(pool_data, fees_offsets[0]) + protocol_fee)
        _put_u64(pool_data, fees_offsets[1], _u64(pool_data, fees_offsets[1]) + fund_fee)

        # Everything is checked: write.
        moves = (
            (user_in_meta.pubkey, user_in_account, -amount_in),
            (vault_in_meta.pubkey, vault_in_account, amount_in),
            (vault_out_meta.pubkey, vault_out_account, -amount_out),
            (user_out_meta.pubkey, user_out_account, amount_out),
        )
        apply_token_moves(view, moves)
        view.set(pool_meta.pubkey, with_data(pool_account, bytes(pool_data)))
        return [*logs, *transfer_in_logs, *transfer_out_logs]


PROGRAM: RaydiumCpmmProgram = RaydiumCpmmProgram(PROGRAM_ID)


def _config_for_fee(view: AccountsView, program_id: Pubkey, fee_rate_ppm: int) -> Pubkey:
    """The AmmConfig at seeds ["amm_config", index u16 BE] with this trade fee, created at the
    first free index if none has it (on Raydium, pools of one fee tier share a config too)."""
    for index in range(1 << 16):
        address = Pubkey.find_program_address(
            [layout.AMM_CONFIG_SEED, index.to_bytes(2, "big")], program_id
        )[0]
        existing = view.get(address)
        if existing is not None:
            if _u64(bytes(existing.data), layout.TRADE_FEE_RATE_OFFSET) == fee_rate_ppm:
                return address
            continue
        data = bytearray(layout.AMM_CONFIG_LEN)
        data[:8] = layout.AMM_CONFIG_DISCRIMINATOR
        data[layout.CONFIG_INDEX_OFFSET : layout.CONFIG_INDEX_OFFSET + 2] = index.to_bytes(
            2, "little"
        )
        _put_u64(data, layout.TRADE_FEE_RATE_OFFSET, fee_rate_ppm)
        # Protocol and fund shares stay 0 locally: every fee remains with the liquidity.
        view.set(
            address,
            Account(rent_exempt_lamports(len(data)), bytes(data), program_id, False, 0),
        )
        return address
    raise ValueError("no free AmmConfig index")


def _token_program_of(view: AccountsView, mint: Pubkey) -> Pubkey:
    account = view.get(mint)
    return account.owner if account is not None else TOKEN_PROGRAM_ID


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
    program_id = PROGRAM.program_id
    # initialize.rs requires token_0_mint < token_1_mint, compared as bytes.
    if bytes(mint_a) < bytes(mint_b):
        (mint_0, dec_0, res_0), (mint_1, dec_1, res_1) = (
            (mint_a, decimals_a, reserve_a),
            (mint_b, decimals_b, reserve_b),
        )
    else:
        (mint_0, dec_0, res_0), (mint_1, dec_1, res_1) = (
            (mint_b, decimals_b, reserve_b),
            (mint_a, decimals_a, reserve_a),
        )
    config = _config_for_fee(view, program_id, fee_rate_ppm)
    authority, auth_bump = Pubkey.find_program_address([layout.AUTH_SEED], program_id)

    def pda(*seeds: bytes) -> Pubkey:
        return Pubkey.find_program_address(list(seeds), program_id)[0]

    vault_0 = pda(layout.POOL_VAULT_SEED, bytes(pool), bytes(mint_0))
    vault_1 = pda(layout.POOL_VAULT_SEED, bytes(pool), bytes(mint_1))
    lp_mint = pda(layout.POOL_LP_MINT_SEED, bytes(pool))
    observation = pda(layout.OBSERVATION_SEED, bytes(pool))
    program_0 = _token_program_of(view, mint_0)
    program_1 = _token_program_of(view, mint_1)

    data = bytearray(layout.POOL_STATE_LEN)
    data[:8] = layout.POOL_STATE_DISCRIMINATOR
    for offset, key in (
        (layout.AMM_CONFIG_OFFSET, config),
        (layout.POOL_CREATOR_OFFSET, authority),
        (layout.TOKEN_0_VAULT_OFFSET, vault_0),
        (layout.TOKEN_1_VAULT_OFFSET, vault_1),
        (layout.LP_MINT_OFFSET, lp_mint),
        (layout.TOKEN_0_MINT_OFFSET, mint_0),
        (layout.TOKEN_1_MINT_OFFSET, mint_1),
        (layout.TOKEN_0_PROGRAM_OFFSET, program_0),
        (layout.TOKEN_1_PROGRAM_OFFSET, program_1),
        (layout.OBSERVATION_KEY_OFFSET, observation),
    ):
        data[offset : offset + 32] = bytes(key)
    data[layout.AUTH_BUMP_OFFSET] = auth_bump
    data[layout.LP_MINT_DECIMALS_OFFSET] = 9
    data[layout.MINT_0_DECIMALS_OFFSET] = dec_0
    data[layout.MINT_1_DECIMALS_OFFSET] = dec_1
    _put_u64(data, layout.LP_SUPPLY_OFFSET, isqrt(res_0 * res_1))
    view.set(pool, Account(rent_exempt_lamports(len(data)), bytes(data), program_id, False, 0))

    view.set(vault_0, token_account(mint_0, authority, res_0, program_0))
    view.set(vault_1, token_account(mint_1, authority, res_1, program_1))

    obs = bytearray(OBSERVATION_STATE_LEN)
    obs[:8] = layout.OBSERVATION_STATE_DISCRIMINATOR
    obs[8] = 1  # initialized
    obs[11:43] = bytes(pool)  # pool_id, after initialized (bool) and observation_index (u16)
    view.set(observation, Account(rent_exempt_lamports(len(obs)), bytes(obs), program_id, False, 0))


def set_pool_reserves(
    view: AccountsView, pool: Pubkey, reserve_a_for_mint: dict[Pubkey, int]
) -> None:
    """Set the curve reserves; vault balances keep any fees owed on top, as on chain."""
    account = view.get(pool)
    if account is None:
        raise ValueError(f"pool {pool} does not exist")
    state = layout.VENUE.decode_pool(bytes(account.data), account.owner, pool)
    sides = (
        (state.token_0_mint, state.token_0_vault, state.fees_owed(0)),
        (state.token_1_mint, state.token_1_vault, state.fees_owed(1)),
    )
    unknown = set(reserve_a_for_mint) - {state.token_0_mint, state.token_1_mint}
    if unknown:
        raise ValueError(f"mints {unknown} are not in pool {pool}")
    updated: list[tuple[Pubkey, Account]] = []
    for mint, vault, owed in sides:
        if mint not in reserve_a_for_mint:
            continue
        vault_account = view.get(vault)
        if vault_account is None:
            raise ValueError(f"vault {vault} of pool {pool} does not exist")
        updated.append((vault, with_amount(vault_account, reserve_a_for_mint[mint] + owed)))
    for vault, vault_account in updated:
        view.set(vault, vault_account)
