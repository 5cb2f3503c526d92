"""Raydium CPMM `swap_base_input` and `initialize`, executed in Python for the local chain.

Ported from raydium-io/raydium-cp-swap (master), programs/cp-swap/src, independently of the
engine's quoting code:
- instructions/swap_base_input.rs: the `Swap` accounts as Anchor checks them (every account is
  deserialized in field order: Signer, Account<AmmConfig>, AccountLoader<PoolState>,
  InterfaceAccount<TokenAccount>, Interface<TokenInterface>, InterfaceAccount<Mint>,
  AccountLoader<ObservationState>; then the constraints in field order: seeds, address, mut,
  raw), then the handler: NotApproved while swaps are disabled or before `open_time`, the input
  transfer fee off before the curve, the output transfer fee off before the zero-output and
  slippage requires, the fee accrual, the constant-product check, the two TransferChecked CPIs;
- states/pool.rs (PoolState, packed), states/config.rs (AmmConfig), curve/calculator.rs and
  curve/fees.rs (trade, creator, protocol and fund fees);
- utils/token.rs get_transfer_fee;
- instructions/initialize.rs: the `Initialize` accounts in Anchor's order (deserialization, then
  the `init` accounts lp_mint, creator_lp_token and observation_state created at their PDAs,
  then the other constraints: mint order, mint token programs, the creator's token accounts,
  vault seeds, the create-pool fee receiver's address), then the handler: supported mints
  (utils/token.rs is_supported_mint), `disable_create_pool`, open time at least a second after
  the block, the vaults, the pool (its PDA, or a keypair that signs), the creator's deposits,
  EmptySupply, LP = sqrt(amount_0 * amount_1) less 100 locked, the pool creation fee in
  lamports, and PoolState::initialize. What its CPIs into System, Token and ATA do is written
  by local/chain/programs/cpi.py.
The observation (TWAP) account is checked but its ring buffer is not updated.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from math import isqrt
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from local.chain.programs import (
    ACCOUNT_DID_NOT_DESERIALIZE,
    ACCOUNT_NOT_ENOUGH_KEYS,
    ACCOUNT_NOT_SIGNER,
    CONSTRAINT_ADDRESS,
    CONSTRAINT_MINT_TOKEN_PROGRAM,
    CONSTRAINT_MUT,
    CONSTRAINT_RAW,
    CONSTRAINT_SEEDS,
    CONSTRAINT_TOKEN_MINT,
    CONSTRAINT_TOKEN_OWNER,
    INSTRUCTION_DID_NOT_DESERIALIZE,
    INVALID_PROGRAM_ID,
    REQUIRE_EQ_VIOLATED,
    REQUIRE_GT_VIOLATED,
    REQUIRE_GTE_VIOLATED,
    SYSTEM_PROGRAM,
    TOKEN_PROGRAMS,
    AccountsView,
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
    swap_args,
    token_transfer,
    transfer_fee_of,
    with_data,
)
from local.chain.programs.cpi import (
    ASSOCIATED_TOKEN_PROGRAM,
    SYSVAR_RENT,
    create_account,
    create_associated_token_account,
    create_token_account,
    invoked,
    mint_extension_types,
    mint_to,
    spl_mint_data,
    sync_native,
    transfer_lamports,
)
from local.chain.programs.token import (
    TokenAccount,
    account_extensions_for_mint,
    rent_exempt_lamports,
    token_account,
    with_amount,
)

PROGRAM_ID = Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb")  # devnet
FEE_RATE_DENOMINATOR = 1_000_000
U64 = (1 << 64) - 1
U128 = (1 << 128) - 1
Q32 = 1 << 32


def _disc(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


SWAP_BASE_INPUT = _disc("global:swap_base_input")
INITIALIZE = _disc("global:initialize")
POOL_STATE_DISC = _disc("account:PoolState")
AMM_CONFIG_DISC = _disc("account:AmmConfig")
OBSERVATION_DISC = _disc("account:ObservationState")
AUTH_SEED = b"vault_and_lp_mint_auth_seed"
AMM_CONFIG_SEED = b"amm_config"
POOL_VAULT_SEED = b"pool_vault"
POOL_LP_MINT_SEED = b"pool_lp_mint"
OBSERVATION_SEED = b"observation"
OBSERVATION_STATE_LEN = 4075  # 8 + bool + u16 + pubkey + 100 x 40-byte observations + [u64; 4]
POOL_SEED = b"pool"
INITIALIZE_ACCOUNTS = 20
LP_MINT_DECIMALS = 9
LOCK_LP_AMOUNT = 100  # initialize.rs: 100 LP units are never minted (locked)
# lib.rs create_pool_fee_reveiver (devnet build, like PROGRAM_ID): a WSOL token account.
CREATE_POOL_FEE_RECEIVER = Pubkey.from_string("3oE58BKVt8KuYkGxx8zBojugnymWmBiyafWgMrnb6eYy")
# utils/token.rs MINT_WHITELIST and the Token-2022 extensions is_supported_mint accepts
# (TransferFeeConfig 1, InterestBearingConfig 10, MetadataPointer 18, TokenMetadata 19,
# ScaledUiAmount 25).
MINT_WHITELIST = frozenset(
    {
        "HVbpJAQGNpkgBaYBZQBR1t7yFdvaYVp2vCQQfKKEN4tM",
        "Crn4x1Y2HUKko7ox2EZMT6N2t2ZyH7eKtwkBGVnhEq1g",
        "FrBfWJ4qE5sCzKm3k3JaAtqZcXUh4LvJygDeketsrsH4",
        "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo",
    }
)
SUPPORTED_EXTENSIONS = frozenset({1, 10, 18, 19, 25})

# error.rs ErrorCode numbers (6000 + declaration index)
NOT_APPROVED = 6000
EMPTY_SUPPLY = 6002
EXCEEDED_SLIPPAGE = 6005
ZERO_TRADING_TOKENS = 6006
NOT_SUPPORT_MINT = 6007
INVALID_VAULT = 6008
INIT_LP_AMOUNT_TOO_LESS = 6009
MATH_OVERFLOW = 6011
INSUFFICIENT_VAULT = 6012
INVALID_FEE_MODEL = 6013
INITIALIZE_ERRORS = {
    NOT_APPROVED: ("NotApproved", "Not approved"),
    EMPTY_SUPPLY: ("EmptySupply", "Input token account empty"),
    NOT_SUPPORT_MINT: ("NotSupportMint", "Not support token_2022 mint extension"),
    INIT_LP_AMOUNT_TOO_LESS: (
        "InitLpAmountTooLess",
        "Init lp amount is too less(Because 100 amount lp will be locked)",
    ),
}


def _fields(spec: Sequence[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    """Offsets of a repr(packed) struct (after the 8-byte discriminator)."""
    out: dict[str, tuple[int, int]] = {}
    at = 8
    for name, size in spec:
        out[name] = (at, size)
        at += size
    out["__len__"] = (at, 0)
    return out


POOL = _fields(
    [
        *[
            (name, 32)
            for name in [
                "amm_config",
                "pool_creator",
                "token_0_vault",
                "token_1_vault",
                "lp_mint",
                "token_0_mint",
                "token_1_mint",
                "token_0_program",
                "token_1_program",
                "observation_key",
            ]
        ],
        ("auth_bump", 1),
        ("status", 1),
        ("lp_mint_decimals", 1),
        ("mint_0_decimals", 1),
        ("mint_1_decimals", 1),
        ("lp_supply", 8),
        ("protocol_fees_token_0", 8),
        ("protocol_fees_token_1", 8),
        ("fund_fees_token_0", 8),
        ("fund_fees_token_1", 8),
        ("open_time", 8),
        ("recent_epoch", 8),
        ("creator_fee_on", 1),
        ("enable_creator_fee", 1),
        ("padding1", 6),
        ("creator_fees_token_0", 8),
        ("creator_fees_token_1", 8),
        ("padding", 8 * 28),
    ]
)
CONFIG = _fields(
    [
        ("bump", 1),
        ("disable_create_pool", 1),
        ("index", 2),
        ("trade_fee_rate", 8),
        ("protocol_fee_rate", 8),
        ("fund_fee_rate", 8),
        ("create_pool_fee", 8),
        ("protocol_owner", 32),
        ("fund_owner", 32),
        ("creator_fee_rate", 8),
        ("padding", 8 * 15),
    ]
)
POOL_LEN = POOL["__len__"][0]
CONFIG_LEN = CONFIG["__len__"][0]
assert POOL_LEN == 637
assert CONFIG_LEN == 236


class Struct:
    """Named little-endian fields over an account's bytes."""

    def __init__(self, layout: dict[str, tuple[int, int]], data: bytes) -> None:
        self.layout = layout
        self.data = bytearray(data)

    def uint(self, name: str) -> int:
        at, size = self.layout[name]
        return int.from_bytes(self.data[at : at + size], "little")

    def key(self, name: str) -> Pubkey:
        at, _ = self.layout[name]
        return Pubkey.from_bytes(bytes(self.data[at : at + 32]))

    def put(self, name: str, value: int | Pubkey) -> None:
        at, size = self.layout[name]
        raw = bytes(value) if isinstance(value, Pubkey) else value.to_bytes(size, "little")
        self.data[at : at + size] = raw


def _ceil_div(amount: int, numerator: int, denominator: int) -> int | None:
    if denominator == 0:
        return None
    return (amount * numerator + denominator - 1) // denominator


def _floor_div(amount: int, numerator: int, denominator: int) -> int | None:
    if denominator == 0:
        return None
    return amount * numerator // denominator


def curve_swap_base_input(
    input_amount: int,
    input_vault: int,
    output_vault: int,
    trade_rate: int,
    creator_rate: int,
    protocol_rate: int,
    fund_rate: int,
    creator_on_input: bool,
) -> dict[str, int] | None:
    """CurveCalculator::swap_base_input (None is the program's ZeroTradingTokens)."""
    creator_fee = 0
    if creator_on_input:
        total_fee = _ceil_div(input_amount, trade_rate + creator_rate, FEE_RATE_DENOMINATOR)
        if total_fee is None:
            return None
        split = _floor_div(total_fee, creator_rate, trade_rate + creator_rate)
        if split is None:
            return None
        creator_fee = split
        trade_fee = total_fee - creator_fee
        less_fees = input_amount - total_fee
    else:
        fee = _ceil_div(input_amount, trade_rate, FEE_RATE_DENOMINATOR)
        if fee is None:
            return None
        trade_fee = fee
        less_fees = input_amount - trade_fee
    if less_fees < 0:
        return None
    protocol_fee = trade_fee * protocol_rate // FEE_RATE_DENOMINATOR
    fund_fee = trade_fee * fund_rate // FEE_RATE_DENOMINATOR
    swapped = less_fees * output_vault // (input_vault + less_fees)
    if creator_on_input:
        output = swapped
    else:
        fee = _ceil_div(swapped, creator_rate, FEE_RATE_DENOMINATOR)
        if fee is None or swapped < fee:
            return None
        creator_fee = fee
        output = swapped - creator_fee
    if output_vault < swapped:
        return None
    return {
        "new_input_vault": input_vault + less_fees,
        "new_output_vault": output_vault - swapped,
        "output": output,
        "trade_fee": trade_fee,
        "protocol_fee": protocol_fee,
        "fund_fee": fund_fee,
        "creator_fee": creator_fee,
    }


class RaydiumCpmmProgram:
    def __init__(self, program_id: Pubkey) -> None:
        self.program_id: Pubkey = program_id
        self.authority, self.authority_bump = Pubkey.find_program_address([AUTH_SEED], program_id)

    def process(self, view: AccountsView, accounts: Sequence[Meta], data: bytes) -> list[str]:
        if data[:8] == INITIALIZE:
            return self._initialize(view, accounts, data)
        return self._swap_base_input(view, accounts, data)

    def _swap_base_input(
        self, view: AccountsView, accounts: Sequence[Meta], data: bytes
    ) -> list[str]:
        logs = ["Program log: Instruction: SwapBaseInput"]
        amount_in, minimum_amount_out = swap_args(data, accounts, SWAP_BASE_INPUT, 13, logs)
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

        # Deserialization, field by field.
        if not payer.is_signer:
            raise anchor_error(logs, ACCOUNT_NOT_SIGNER, account="payer")
        config_account = load_anchor_account(
            view, amm_config, self.program_id, AMM_CONFIG_DISC, logs, "amm_config"
        )
        pool_account = load_anchor_account(
            view, pool_meta, self.program_id, POOL_STATE_DISC, logs, "pool_state"
        )
        load_token_account(view, user_in_meta, logs, "input_token_account")
        load_token_account(view, user_out_meta, logs, "output_token_account")
        _, vault_in = load_token_account(view, vault_in_meta, logs, "input_vault")
        _, vault_out = load_token_account(view, vault_out_meta, logs, "output_vault")
        for meta, name in (
            (program_in, "input_token_program"),
            (program_out, "output_token_program"),
        ):
            if meta.pubkey not in TOKEN_PROGRAMS:  # Interface<TokenInterface>
                raise anchor_error(logs, INVALID_PROGRAM_ID, account=name)
        mint_in_account = load_mint(view, mint_in, logs, "input_token_mint")
        mint_out_account = load_mint(view, mint_out, logs, "output_token_mint")
        load_anchor_account(
            view, observation, self.program_id, OBSERVATION_DISC, logs, "observation_state"
        )

        # Constraints, field by field.
        pool = Struct(POOL, bytes(pool_account.data))
        config = Struct(CONFIG, bytes(config_account.data))
        if authority.pubkey != self.authority:
            raise anchor_error(logs, CONSTRAINT_SEEDS, account="authority")
        if amm_config.pubkey != pool.key("amm_config"):
            raise anchor_error(logs, CONSTRAINT_ADDRESS, account="amm_config")
        for meta, name in (
            (pool_meta, "pool_state"),
            (user_in_meta, "input_token_account"),
            (user_out_meta, "output_token_account"),
        ):
            if not meta.is_writable:
                raise anchor_error(logs, CONSTRAINT_MUT, account=name)
        vaults = (pool.key("token_0_vault"), pool.key("token_1_vault"))
        for meta, name in ((vault_in_meta, "input_vault"), (vault_out_meta, "output_vault")):
            if not meta.is_writable:
                raise anchor_error(logs, CONSTRAINT_MUT, account=name)
            if meta.pubkey not in vaults:
                raise anchor_error(logs, CONSTRAINT_RAW, account=name)
        if mint_in.pubkey != vault_in.mint:
            raise anchor_error(logs, CONSTRAINT_ADDRESS, account="input_token_mint")
        if mint_out.pubkey != vault_out.mint:
            raise anchor_error(logs, CONSTRAINT_ADDRESS, account="output_token_mint")
        if not observation.is_writable:
            raise anchor_error(logs, CONSTRAINT_MUT, account="observation_state")
        if observation.pubkey != pool.key("observation_key"):
            raise anchor_error(logs, CONSTRAINT_ADDRESS, account="observation_state")

        # The handler.
        clock = read_clock(view, logs)
        block_timestamp = clock.unix_timestamp % (1 << 64)  # `as u64`
        if pool.uint("status") & (1 << 2) or block_timestamp < pool.uint("open_time"):
            raise anchor_error(logs, NOT_APPROVED, "NotApproved", "Not approved")
        transfer_fee_in = transfer_fee_of(view, mint_in.pubkey, amount_in, clock.epoch)
        actual_in = max(amount_in - transfer_fee_in, 0)
        if actual_in <= 0:
            raise anchor_error(logs, REQUIRE_GT_VIOLATED)

        if vault_in_meta.pubkey == vaults[0] and vault_out_meta.pubkey == vaults[1]:
            zero_for_one = True
        elif vault_in_meta.pubkey == vaults[1] and vault_out_meta.pubkey == vaults[0]:
            zero_for_one = False
        else:
            raise anchor_error(logs, INVALID_VAULT, "InvalidVault", "invaild vault")
        side_in, side_out = ("0", "1") if zero_for_one else ("1", "0")
        owed = {
            side: sum(
                pool.uint(f"{kind}_fees_token_{side}") for kind in ("protocol", "fund", "creator")
            )
            for side in ("0", "1")
        }
        if owed["0"] > U64 or owed["1"] > U64:
            raise anchor_error(logs, MATH_OVERFLOW, "MathOverflow", "Math overflow")
        reserve_in = vault_in.amount - owed[side_in]
        reserve_out = vault_out.amount - owed[side_out]
        if reserve_in < 0 or reserve_out < 0:
            raise anchor_error(logs, INSUFFICIENT_VAULT, "InsufficientVault", "Insufficient vault")
        if reserve_in == 0 or reserve_out == 0:
            # token_price_x32 divides by each side: a panic.
            raise builtin_error(
                [*logs, "Program log: panicked: attempt to divide by zero"],
                "ProgramFailedToComplete",
            )
        fee_on = pool.uint("creator_fee_on")
        if fee_on == 0:
            creator_on_input = True
        elif fee_on in (1, 2):
            creator_on_input = zero_for_one if fee_on == 1 else not zero_for_one
        else:
            raise anchor_error(logs, INVALID_FEE_MODEL, "InvalidFeeModel", "Invalid fee model")
        constant_before = reserve_in * reserve_out
        creator_rate = config.uint("creator_fee_rate") if pool.uint("enable_creator_fee") else 0
        result = curve_swap_base_input(
            actual_in,
            reserve_in,
            reserve_out,
            config.uint("trade_fee_rate"),
            creator_rate,
            config.uint("protocol_fee_rate"),
            config.uint("fund_fee_rate"),
            creator_on_input,
        )
        if result is None:
            raise anchor_error(
                logs,
                ZERO_TRADING_TOKENS,
                "ZeroTradingTokens",
                "Given pool token amount results in zero trading tokens",
            )
        amount_out = result["output"]
        transfer_fee_out = transfer_fee_of(view, mint_out.pubkey, amount_out, clock.epoch)
        received = amount_out - transfer_fee_out
        if received <= 0:
            raise anchor_error(logs, REQUIRE_GT_VIOLATED)
        if received < minimum_amount_out:
            raise anchor_error(
                logs, EXCEEDED_SLIPPAGE, "ExceededSlippage", "Exceeds desired slippage limit"
            )
        # update_fees: protocol and fund fees on the input side; the creator fee on its side.
        for kind, side in (
            ("protocol", side_in),
            ("fund", side_in),
            ("creator", side_in if creator_on_input else side_out),
        ):
            name = f"{kind}_fees_token_{side}"
            pool.put(name, pool.uint(name) + result[f"{kind}_fee"])
        if result["new_input_vault"] * result["new_output_vault"] < constant_before:
            raise anchor_error(logs, REQUIRE_GTE_VIOLATED)

        pending = Pending(view)
        cpi_logs: list[str] = []
        for transfer in (
            Transfer(
                program_in.pubkey,
                user_in_meta.pubkey,
                mint_in.pubkey,
                vault_in_meta.pubkey,
                payer.pubkey,
                amount_in,
                bytes(mint_in_account.data)[44],
            ),
            Transfer(
                program_out.pubkey,
                vault_out_meta.pubkey,
                mint_out.pubkey,
                user_out_meta.pubkey,
                self.authority,
                amount_out,
                bytes(mint_out_account.data)[44],
            ),
        ):
            if transfer.amount == 0:
                continue  # transfer_from_*: nothing to move
            cpi_logs += token_transfer(pending, transfer, clock.epoch, [*logs, *cpi_logs])
        pool.put("recent_epoch", clock.epoch)
        pending.set(pool_meta.pubkey, with_data(pool_account, bytes(pool.data)))
        pending.commit()
        return [*logs, *cpi_logs]

    # ------------------------------------------------------------------------------ initialize
    def _initialize(self, view: AccountsView, accounts: Sequence[Meta], data: bytes) -> list[str]:
        """instructions/initialize.rs: a new pool with the creator's first liquidity.

        Anchor's order: the arguments, then each account deserialized in field order (the
        `init` ones taken raw), then the `init` accounts created in field order (lp_mint,
        creator_lp_token, observation_state), then the other fields' constraints in field
        order, then the handler."""
        logs = ["Program log: Instruction: Initialize"]
        if len(data) < 32:
            raise anchor_error(logs, INSTRUCTION_DID_NOT_DESERIALIZE)
        init_amount_0, init_amount_1, open_time = struct.unpack_from("<QQQ", data, 8)
        if len(accounts) < INITIALIZE_ACCOUNTS:
            raise anchor_error(logs, ACCOUNT_NOT_ENOUGH_KEYS)
        (
            creator,
            amm_config,
            authority,
            pool_meta,
            mint_0,
            mint_1,
            lp_mint,
            creator_0,
            creator_1,
            creator_lp,
            vault_0,
            vault_1,
            fee_meta,
            observation,
            token_program,
            program_0,
            program_1,
            ata_program,
            system_program,
            rent,
        ) = accounts[:INITIALIZE_ACCOUNTS]

        # Deserialization, field by field.
        if not creator.is_signer:
            raise anchor_error(logs, ACCOUNT_NOT_SIGNER, account="creator")
        config_account = load_anchor_account(
            view, amm_config, self.program_id, AMM_CONFIG_DISC, logs, "amm_config"
        )
        if len(bytes(config_account.data)) < CONFIG_LEN:
            raise anchor_error(logs, ACCOUNT_DID_NOT_DESERIALIZE, account="amm_config")
        mint_accounts = (
            load_mint(view, mint_0, logs, "token_0_mint"),
            load_mint(view, mint_1, logs, "token_1_mint"),
        )
        creator_states = (
            load_token_account(view, creator_0, logs, "creator_token_0")[1],
            load_token_account(view, creator_1, logs, "creator_token_1")[1],
        )
        load_token_account(view, fee_meta, logs, "create_pool_fee")
        for meta, wanted, name in (
            (token_program, (TOKEN_PROGRAM_ID,), "token_program"),  # Program<Token>
            (program_0, TOKEN_PROGRAMS, "token_0_program"),  # Interface<TokenInterface>
            (program_1, TOKEN_PROGRAMS, "token_1_program"),
            (ata_program, (ASSOCIATED_TOKEN_PROGRAM,), "associated_token_program"),
            (system_program, (SYSTEM_PROGRAM,), "system_program"),
        ):
            if meta.pubkey not in wanted:
                raise anchor_error(logs, INVALID_PROGRAM_ID, account=name)
        if rent.pubkey != SYSVAR_RENT:  # Sysvar<Rent>::from_account_info
            raise builtin_error(logs, "InvalidArgument")

        def pda(*seeds: bytes) -> Pubkey:
            return Pubkey.find_program_address(list(seeds), self.program_id)[0]

        pool = bytes(pool_meta.pubkey)
        pending = Pending(view)
        out: list[str] = []  # what the program logs after the instruction name

        # The `init` accounts, in field order.
        if lp_mint.pubkey != pda(POOL_LP_MINT_SEED, pool):
            raise anchor_error(logs, CONSTRAINT_SEEDS, account="lp_mint")
        lp_data = spl_mint_data(LP_MINT_DECIMALS, self.authority)
        out += create_account(
            pending, creator.pubkey, lp_mint.pubkey, lp_data, token_program.pubkey, [*logs, *out]
        )
        out += invoked(token_program.pubkey, 2, ["Program log: Instruction: InitializeMint2"])
        out += create_associated_token_account(
            pending,
            creator.pubkey,
            creator_lp.pubkey,
            creator.pubkey,
            lp_mint.pubkey,
            token_program.pubkey,
            [*logs, *out],
        )
        if observation.pubkey != pda(OBSERVATION_SEED, pool):
            raise anchor_error([*logs, *out], CONSTRAINT_SEEDS, account="observation_state")
        blank = OBSERVATION_DISC + bytes(OBSERVATION_STATE_LEN - 8)
        out += create_account(
            pending, creator.pubkey, observation.pubkey, blank, self.program_id, [*logs, *out]
        )

        # The other fields' constraints, in field order.
        def refuse(code: int, name: str) -> ProgramError:
            return anchor_error([*logs, *out], code, account=name)

        if not creator.is_writable:
            raise refuse(CONSTRAINT_MUT, "creator")
        if authority.pubkey != self.authority:
            raise refuse(CONSTRAINT_SEEDS, "authority")
        if not pool_meta.is_writable:
            raise refuse(CONSTRAINT_MUT, "pool_state")
        if not bytes(mint_0.pubkey) < bytes(mint_1.pubkey):
            raise refuse(CONSTRAINT_RAW, "token_0_mint")
        for mint_account, program, name in (
            (mint_accounts[0], program_0, "token_0_mint"),
            (mint_accounts[1], program_1, "token_1_mint"),
        ):
            if mint_account.owner != program.pubkey:
                raise refuse(CONSTRAINT_MINT_TOKEN_PROGRAM, name)
        for meta, state, mint, name in (
            (creator_0, creator_states[0], mint_0, "creator_token_0"),
            (creator_1, creator_states[1], mint_1, "creator_token_1"),
        ):
            if not meta.is_writable:
                raise refuse(CONSTRAINT_MUT, name)
            if state.mint != mint.pubkey:
                raise refuse(CONSTRAINT_TOKEN_MINT, name)
            if state.owner != creator.pubkey:
                raise refuse(CONSTRAINT_TOKEN_OWNER, name)
        for meta, mint, name in (
            (vault_0, mint_0, "token_0_vault"),
            (vault_1, mint_1, "token_1_vault"),
        ):
            if not meta.is_writable:
                raise refuse(CONSTRAINT_MUT, name)
            if meta.pubkey != pda(POOL_VAULT_SEED, pool, bytes(mint.pubkey)):
                raise refuse(CONSTRAINT_SEEDS, name)
        if not fee_meta.is_writable:
            raise refuse(CONSTRAINT_MUT, "create_pool_fee")
        if fee_meta.pubkey != CREATE_POOL_FEE_RECEIVER:
            raise refuse(CONSTRAINT_ADDRESS, "create_pool_fee")

        # The handler.
        def fail(code: int) -> ProgramError:
            name, message = INITIALIZE_ERRORS[code]
            return anchor_error([*logs, *out], code, name, message)

        if not all(
            supported_mint(meta.pubkey, account)
            for meta, account in zip((mint_0, mint_1), mint_accounts, strict=True)
        ):
            raise fail(NOT_SUPPORT_MINT)
        config = Struct(CONFIG, bytes(config_account.data))
        if config.uint("disable_create_pool"):
            raise fail(NOT_APPROVED)
        clock = read_clock(view, [*logs, *out])
        block_timestamp = clock.unix_timestamp % (1 << 64)
        if open_time <= block_timestamp:
            open_time = block_timestamp + 1
        for vault, mint, program in ((vault_0, mint_0, program_0), (vault_1, mint_1, program_1)):
            out += create_token_account(
                pending,
                creator.pubkey,
                vault.pubkey,
                mint.pubkey,
                self.authority,
                program.pubkey,
                [*logs, *out],
            )
        # create_pool: a system-owned address, the PDA or a keypair that signs.
        existing = pending.get(pool_meta.pubkey)
        if existing is not None and existing.owner != SYSTEM_PROGRAM:
            raise fail(NOT_APPROVED)
        expected = pda(POOL_SEED, bytes(amm_config.pubkey), *_keys(mint_0, mint_1))
        if pool_meta.pubkey != expected and not pool_meta.is_signer:
            error = anchor_error([*logs, *out], REQUIRE_EQ_VIOLATED)
            error.logs += ["Program log: Left:", "Program log: false"]
            error.logs += ["Program log: Right:", "Program log: true"]
            raise error
        blank_pool = bytes(POOL_LEN)
        out += create_account(
            pending, creator.pubkey, pool_meta.pubkey, blank_pool, self.program_id, [*logs, *out]
        )
        created = pending.get(observation.pubkey)
        if created is not None:
            obs = bytearray(bytes(created.data))
            obs[11:43] = pool  # pool_id, after initialized (bool) and observation_index (u16)
            pending.set(observation.pubkey, with_data(created, bytes(obs)))

        decimals = (bytes(mint_accounts[0].data)[44], bytes(mint_accounts[1].data)[44])
        for source, vault, mint, program, amount, places in (
            (creator_0, vault_0, mint_0, program_0, init_amount_0, decimals[0]),
            (creator_1, vault_1, mint_1, program_1, init_amount_1, decimals[1]),
        ):
            if amount == 0:
                continue  # transfer_from_user_to_pool_vault: nothing to move
            move = Transfer(
                program.pubkey,
                source.pubkey,
                mint.pubkey,
                vault.pubkey,
                creator.pubkey,
                amount,
                places,
            )
            out += token_transfer(pending, move, clock.epoch, [*logs, *out])
        amounts = []
        for vault in (vault_0, vault_1):
            vault_account = pending.get(vault.pubkey)
            assert vault_account is not None  # created above
            amounts.append(TokenAccount.unpack(bytes(vault_account.data)).amount)
        if amounts[0] == 0 or amounts[1] == 0:  # CurveCalculator::validate_supply
            raise fail(EMPTY_SUPPLY)
        liquidity = isqrt(amounts[0] * amounts[1])
        out.append(
            f"Program log: liquidity:{liquidity}, lock_lp_amount:{LOCK_LP_AMOUNT}, "
            f"vault_0_amount:{amounts[0]},vault_1_amount:{amounts[1]}"
        )
        if liquidity < LOCK_LP_AMOUNT:
            raise fail(INIT_LP_AMOUNT_TOO_LESS)
        out += mint_to(
            pending, token_program.pubkey, lp_mint.pubkey, creator_lp.pubkey, liquidity - 100
        )
        create_pool_fee = config.uint("create_pool_fee")
        if create_pool_fee:
            out += transfer_lamports(
                pending, creator.pubkey, fee_meta.pubkey, create_pool_fee, [*logs, *out]
            )
            out += sync_native(pending, fee_meta.pubkey)

        # PoolState::initialize
        pool_state = Struct(POOL, bytes(POOL_LEN))
        pool_state.data[:8] = POOL_STATE_DISC
        for name, value in (
            ("amm_config", amm_config.pubkey),
            ("pool_creator", creator.pubkey),
            ("token_0_vault", vault_0.pubkey),
            ("token_1_vault", vault_1.pubkey),
            ("lp_mint", lp_mint.pubkey),
            ("token_0_mint", mint_0.pubkey),
            ("token_1_mint", mint_1.pubkey),
            ("token_0_program", mint_accounts[0].owner),
            ("token_1_program", mint_accounts[1].owner),
            ("observation_key", observation.pubkey),
        ):
            pool_state.put(name, value)
        for name, number in (
            ("auth_bump", self.authority_bump),
            ("lp_mint_decimals", LP_MINT_DECIMALS),
            ("mint_0_decimals", decimals[0]),
            ("mint_1_decimals", decimals[1]),
            ("lp_supply", liquidity),
            ("open_time", open_time),
            ("recent_epoch", clock.epoch),
            ("creator_fee_on", 0),  # CreatorFeeOn::BothToken
            ("enable_creator_fee", 0),
        ):
            pool_state.put(name, number)
        pool_account = pending.get(pool_meta.pubkey)
        assert pool_account is not None  # created above
        pending.set(pool_meta.pubkey, with_data(pool_account, bytes(pool_state.data)))
        pending.commit()
        return [*logs, *out]


def _keys(*metas: Meta) -> list[bytes]:
    return [bytes(meta.pubkey) for meta in metas]


def supported_mint(mint: Pubkey, account: Account) -> bool:
    """utils/token.rs is_supported_mint: SPL Token mints, the whitelist, and Token-2022 mints
    whose extensions are all TransferFeeConfig, MetadataPointer, TokenMetadata,
    InterestBearingConfig or ScaledUiAmount."""
    if account.owner == TOKEN_PROGRAM_ID or str(mint) in MINT_WHITELIST:
        return True
    return all(kind in SUPPORTED_EXTENSIONS for kind in mint_extension_types(bytes(account.data)))


PROGRAM: RaydiumCpmmProgram = RaydiumCpmmProgram(PROGRAM_ID)


def amm_config_address(index: int, program_id: Pubkey = PROGRAM_ID) -> tuple[Pubkey, int]:
    """create_config.rs: the AmmConfig PDA of `index`, seeds ["amm_config", index u16 BE]."""
    return Pubkey.find_program_address([AMM_CONFIG_SEED, index.to_bytes(2, "big")], program_id)


def write_amm_config(
    view: AccountsView,
    index: int,
    *,
    trade_fee_rate: int,
    protocol_fee_rate: int = 0,
    fund_fee_rate: int = 0,
    create_pool_fee: int = 0,
    creator_fee_rate: int = 0,
    owner: Pubkey | None = None,
    program_id: Pubkey = PROGRAM_ID,
) -> Pubkey:
    """An AmmConfig as `create_amm_config` leaves it (bump, index, rates, the pool creation
    fee in lamports, the admin as protocol and fund owner), at its PDA."""
    address, bump = amm_config_address(index, program_id)
    config = Struct(CONFIG, bytes(CONFIG_LEN))
    config.data[:8] = AMM_CONFIG_DISC
    for name, value in (
        ("bump", bump),
        ("index", index),
        ("trade_fee_rate", trade_fee_rate),
        ("protocol_fee_rate", protocol_fee_rate),
        ("fund_fee_rate", fund_fee_rate),
        ("create_pool_fee", create_pool_fee),
        ("creator_fee_rate", creator_fee_rate),
    ):
        config.put(name, value)
    if owner is not None:
        config.put("protocol_owner", owner)
        config.put("fund_owner", owner)
    data = bytes(config.data)
    view.set(address, Account(rent_exempt_lamports(CONFIG_LEN), data, program_id, False, 0))
    return address


def config_for(
    view: AccountsView,
    program_id: Pubkey,
    trade_fee_rate: int,
    protocol_fee_rate: int = 0,
    fund_fee_rate: int = 0,
    creator_fee_rate: int = 0,
) -> Pubkey:
    """The AmmConfig with these rates, created at the first free index if none has them (on
    Raydium, pools of one fee tier share a config too)."""
    wanted = {
        "trade_fee_rate": trade_fee_rate,
        "protocol_fee_rate": protocol_fee_rate,
        "fund_fee_rate": fund_fee_rate,
        "creator_fee_rate": creator_fee_rate,
    }
    for index in range(1 << 16):
        address = amm_config_address(index, program_id)[0]
        existing = view.get(address)
        if existing is not None:
            config = Struct(CONFIG, bytes(existing.data))
            if all(config.uint(name) == value for name, value in wanted.items()):
                return address
            continue
        return write_amm_config(
            view,
            index,
            trade_fee_rate=trade_fee_rate,
            protocol_fee_rate=protocol_fee_rate,
            fund_fee_rate=fund_fee_rate,
            creator_fee_rate=creator_fee_rate,
            program_id=program_id,
        )
    raise ValueError("no free AmmConfig index")


def _token_program_of(view: AccountsView, mint: Pubkey) -> Pubkey:
    account = view.get(mint)
    return account.owner if account is not None else TOKEN_PROGRAM_ID


def _vault(view: AccountsView, mint: Pubkey, owner: Pubkey, amount: int) -> Account:
    """A pool vault as create_token_account makes it: the mint's required extensions."""
    mint_account = view.get(mint)
    extensions = account_extensions_for_mint(bytes(mint_account.data)) if mint_account else []
    return token_account(mint, owner, amount, _token_program_of(view, mint), extensions or None)


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
    open_time: int = 0,
    status: int = 0,
    protocol_fee_rate: int = 0,
    fund_fee_rate: int = 0,
    creator_fee_rate: int = 0,
    enable_creator_fee: bool = False,
    creator_fee_on: int = 0,
    fees_owed: dict[str, int] | None = None,
    **unknown: Any,
) -> None:
    """A pool as `initialize` leaves it, plus the options: `open_time` (unix seconds),
    `status` bits, the config's protocol / fund / creator rates (parts per million),
    `enable_creator_fee` and `creator_fee_on` (0 both, 1 token 0, 2 token 1), and fees already
    owed (`fees_owed`, e.g. {"protocol_fees_token_0": 5}) on top of the reserves in the vaults."""
    if unknown:
        raise TypeError(f"unknown Raydium CPMM pool options: {sorted(unknown)}")
    program_id = PROGRAM.program_id
    # initialize.rs requires token_0_mint < token_1_mint, compared as bytes.
    sides = sorted(
        ((mint_a, decimals_a, reserve_a), (mint_b, decimals_b, reserve_b)),
        key=lambda side: bytes(side[0]),
    )
    (mint_0, dec_0, res_0), (mint_1, dec_1, res_1) = sides
    config = config_for(
        view, program_id, fee_rate_ppm, protocol_fee_rate, fund_fee_rate, creator_fee_rate
    )
    authority, auth_bump = Pubkey.find_program_address([AUTH_SEED], program_id)

    def pda(*seeds: bytes) -> Pubkey:
        return Pubkey.find_program_address(list(seeds), program_id)[0]

    vault_0 = pda(POOL_VAULT_SEED, bytes(pool), bytes(mint_0))
    vault_1 = pda(POOL_VAULT_SEED, bytes(pool), bytes(mint_1))
    observation = pda(OBSERVATION_SEED, bytes(pool))
    state = Struct(POOL, bytes(POOL_LEN))
    state.data[:8] = POOL_STATE_DISC
    for name, value in (
        ("amm_config", config),
        ("pool_creator", authority),
        ("token_0_vault", vault_0),
        ("token_1_vault", vault_1),
        ("lp_mint", pda(POOL_LP_MINT_SEED, bytes(pool))),
        ("token_0_mint", mint_0),
        ("token_1_mint", mint_1),
        ("token_0_program", _token_program_of(view, mint_0)),
        ("token_1_program", _token_program_of(view, mint_1)),
        ("observation_key", observation),
    ):
        state.put(name, value)
    state.put("auth_bump", auth_bump)
    state.put("status", status)
    state.put("lp_mint_decimals", 9)
    state.put("mint_0_decimals", dec_0)
    state.put("mint_1_decimals", dec_1)
    state.put("lp_supply", isqrt(res_0 * res_1))
    state.put("open_time", open_time)
    state.put("creator_fee_on", creator_fee_on)
    state.put("enable_creator_fee", int(enable_creator_fee))
    owed = dict(fees_owed or {})
    for owed_name, owed_amount in owed.items():
        state.put(owed_name, owed_amount)
    view.set(pool, Account(rent_exempt_lamports(POOL_LEN), bytes(state.data), program_id, False, 0))
    for side, vault, mint, reserve in (
        ("0", vault_0, mint_0, res_0),
        ("1", vault_1, mint_1, res_1),
    ):
        extra = sum(v for k, v in owed.items() if k.endswith(f"_token_{side}"))
        view.set(vault, _vault(view, mint, authority, reserve + extra))

    obs = bytearray(OBSERVATION_STATE_LEN)
    obs[:8] = OBSERVATION_DISC
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
    state = Struct(POOL, bytes(account.data))
    sides = []
    for side in ("0", "1"):
        owed = sum(
            state.uint(f"{kind}_fees_token_{side}") for kind in ("protocol", "fund", "creator")
        )
        sides.append((state.key(f"token_{side}_mint"), state.key(f"token_{side}_vault"), owed))
    unknown = set(reserve_a_for_mint) - {mint for mint, _, _ in sides}
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


__all__ = [
    "CREATE_POOL_FEE_RECEIVER",
    "PROGRAM",
    "PROGRAM_ID",
    "TokenAccount",
    "amm_config_address",
    "create_pool",
    "set_pool_reserves",
    "write_amm_config",
]
