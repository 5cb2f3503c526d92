"""The DEX programs the local chain executes in Python, since their binaries cannot run here.

Each program checks its swap instruction like the on-chain program does, computes the result with
its own port of the program's integer math (independent of the engine's quoting code, so the two
are checked against each other), and only then writes the token and pool accounts it changes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from solders.account import Account
from solders.pubkey import Pubkey

from local.chain.programs.token import (
    ACCOUNT_FROZEN,
    INSUFFICIENT_FUNDS,
    MINT_MISMATCH,
    OWNER_MISMATCH,
    STATE_FROZEN,
    STATE_UNINITIALIZED,
    TOKEN_PROGRAMS,
    TokenAccount,
    with_amount,
)


class AccountsView(Protocol):
    def get(self, key: Pubkey) -> Account | None: ...

    def set(self, key: Pubkey, account: Account) -> None: ...


@dataclass(frozen=True)
class Meta:
    """One account of an instruction, as the program sees it."""

    pubkey: Pubkey
    is_signer: bool
    is_writable: bool


class ProgramError(Exception):
    """The instruction failed with custom program error `code`; `logs` are what it printed."""

    def __init__(self, code: int, logs: list[str]) -> None:
        super().__init__(f"custom program error: {code:#x}")
        self.code = code
        self.logs = logs


class Program(Protocol):
    program_id: Pubkey

    def process(self, view: AccountsView, accounts: Sequence[Meta], data: bytes) -> list[str]: ...


# Anchor's framework error codes (anchor-lang error.rs), shared by both Anchor programs.
INSTRUCTION_FALLBACK_NOT_FOUND = 101
INSTRUCTION_DID_NOT_DESERIALIZE = 102
CONSTRAINT_MUT = 2000
CONSTRAINT_HAS_ONE = 2001
CONSTRAINT_RAW = 2003
CONSTRAINT_SEEDS = 2006
CONSTRAINT_ADDRESS = 2012
CONSTRAINT_TOKEN_MINT = 2014
REQUIRE_GT_VIOLATED = 2505
ACCOUNT_DISCRIMINATOR_MISMATCH = 3002
ACCOUNT_DID_NOT_DESERIALIZE = 3003
ACCOUNT_NOT_ENOUGH_KEYS = 3005
ACCOUNT_OWNED_BY_WRONG_PROGRAM = 3007
ACCOUNT_NOT_SIGNER = 3010
ACCOUNT_NOT_INITIALIZED = 3012


def anchor_error(
    logs: list[str], code: int, name: str, message: str, account: str | None = None
) -> ProgramError:
    """The error an Anchor program raises, with the log line Anchor prints for it."""
    where = f"caused by account: {account}" if account else "occurred"
    line = f"Program log: AnchorError {where}. Error Code: {name}. Error Number: {code}. "
    return ProgramError(code, [*logs, line + f"Error Message: {message}."])


def load_token_account(
    view: AccountsView, meta: Meta, logs: list[str], name: str
) -> tuple[Account, TokenAccount]:
    """The token account behind `meta`, failing as Anchor's InterfaceAccount<TokenAccount> does."""
    account = view.get(meta.pubkey)
    if account is None:
        raise anchor_error(
            logs,
            ACCOUNT_NOT_INITIALIZED,
            "AccountNotInitialized",
            "The program expected this account to be already initialized",
            name,
        )
    if account.owner not in TOKEN_PROGRAMS:
        raise anchor_error(
            logs,
            ACCOUNT_OWNED_BY_WRONG_PROGRAM,
            "AccountOwnedByWrongProgram",
            "The given account is owned by a different program than expected",
            name,
        )
    try:
        state = TokenAccount.unpack(bytes(account.data))
    except ValueError:
        raise anchor_error(
            logs,
            ACCOUNT_DID_NOT_DESERIALIZE,
            "AccountDidNotDeserialize",
            "Failed to deserialize the account",
            name,
        ) from None
    if state.state == STATE_UNINITIALIZED:
        raise anchor_error(
            logs,
            ACCOUNT_NOT_INITIALIZED,
            "AccountNotInitialized",
            "The program expected this account to be already initialized",
            name,
        )
    return account, state


def check_transfer(
    logs: list[str],
    token_program: Pubkey,
    source: TokenAccount,
    destination: TokenAccount,
    mint: Pubkey,
    authority: Pubkey,
    amount: int,
) -> list[str]:
    """What spl-token's TransferChecked rejects, in its order; returns the CPI's logs."""
    cpi = [f"Program {token_program} invoke [2]", "Program log: Instruction: TransferChecked"]

    def fail(code: int, message: str) -> ProgramError:
        failed = f"Program {token_program} failed: custom program error: {code:#x}"
        return ProgramError(code, [*logs, *cpi, f"Program log: Error: {message}", failed])

    if source.state == STATE_FROZEN or destination.state == STATE_FROZEN:
        raise fail(ACCOUNT_FROZEN, "Account is frozen")
    if source.amount < amount:
        raise fail(INSUFFICIENT_FUNDS, "insufficient funds")
    if source.mint != destination.mint or source.mint != mint:
        raise fail(MINT_MISMATCH, "Account not associated with this Mint")
    if source.owner != authority:
        raise fail(OWNER_MISMATCH, "owner does not match")
    return [*cpi, f"Program {token_program} success"]


def swap_args(
    data: bytes, accounts: Sequence[Meta], discriminator: bytes, min_accounts: int, logs: list[str]
) -> tuple[int, int]:
    """An Anchor swap instruction's entry checks, in the framework's order: the discriminator,
    then (amount_in, minimum_amount_out) as two u64, then enough accounts."""
    if data[:8] != discriminator:
        # Only the swap is simulated; any other instruction is unknown to the program.
        raise anchor_error(
            [],
            INSTRUCTION_FALLBACK_NOT_FOUND,
            "InstructionFallbackNotFound",
            "Fallback functions are not supported",
        )
    if len(data) < 24:
        raise anchor_error(
            logs,
            INSTRUCTION_DID_NOT_DESERIALIZE,
            "InstructionDidNotDeserialize",
            "The program could not deserialize the given instruction",
        )
    amount_in, minimum_amount_out = struct.unpack_from("<QQ", data, 8)
    if len(accounts) < min_accounts:
        raise anchor_error(
            logs,
            ACCOUNT_NOT_ENOUGH_KEYS,
            "AccountNotEnoughKeys",
            "Not enough account keys given to the instruction",
        )
    return amount_in, minimum_amount_out


def with_data(account: Account, data: bytes) -> Account:
    return Account(account.lamports, data, account.owner, account.executable, account.rent_epoch)


def apply_token_moves(view: AccountsView, moves: Sequence[tuple[Pubkey, Account, int]]) -> None:
    """Write a swap's token movements (account, its state before, amount delta). The same
    account may appear twice (a user swapping into their own input account), so each move
    applies to the latest version."""
    latest: dict[Pubkey, Account] = {}
    for key, account, delta in moves:
        current = latest.get(key, account)
        amount = TokenAccount.unpack(bytes(current.data)).amount
        latest[key] = with_amount(current, amount + delta)
    for key, account in latest.items():
        view.set(key, account)


# The program modules import the names above from this package, so they come after them.
from local.chain.programs import meteora_damm_v2, raydium_cpmm  # noqa: E402

PROGRAMS: dict[Pubkey, Program] = {
    raydium_cpmm.PROGRAM.program_id: raydium_cpmm.PROGRAM,
    meteora_damm_v2.PROGRAM.program_id: meteora_damm_v2.PROGRAM,
}


def create_pool(
    view: AccountsView,
    venue: str,
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
    """Write a ready-to-swap pool of `venue` at `pool`: state, config, vaults (and observation)."""
    creators = {
        "raydium_cpmm": raydium_cpmm.create_pool,
        "meteora_damm_v2": meteora_damm_v2.create_pool,
    }
    if venue not in creators:
        raise ValueError(f"unknown venue {venue!r}")
    creators[venue](
        view,
        pool=pool,
        mint_a=mint_a,
        mint_b=mint_b,
        decimals_a=decimals_a,
        decimals_b=decimals_b,
        reserve_a=reserve_a,
        reserve_b=reserve_b,
        fee_rate_ppm=fee_rate_ppm,
    )


def set_pool_reserves(
    view: AccountsView, pool: Pubkey, reserve_a_for_mint: dict[Pubkey, int]
) -> None:
    """Give `pool` new reserves (mint -> amount), moving its price (tests cause slippage so)."""
    account = view.get(pool)
    if account is None:
        raise ValueError(f"pool {pool} does not exist")
    if account.owner == raydium_cpmm.PROGRAM.program_id:
        raydium_cpmm.set_pool_reserves(view, pool, reserve_a_for_mint)
    elif account.owner == meteora_damm_v2.PROGRAM.program_id:
        meteora_damm_v2.set_pool_reserves(view, pool, reserve_a_for_mint)
    else:
        raise ValueError(f"{pool} is not a pool of a simulated program")


__all__ = [
    "PROGRAMS",
    "AccountsView",
    "Meta",
    "Program",
    "ProgramError",
    "create_pool",
    "set_pool_reserves",
]
