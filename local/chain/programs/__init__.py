"""The DEX programs the local chain executes in Python, since their binaries cannot run here.

Each program checks its swap instruction like the on-chain program does, in the same order and
with the same error codes, reads the cluster clock from the Clock sysvar account as `Clock::get`
does, computes the result with its own port of the program's integer math (independent of the
engine's quoting code, so the two are checked against each other), moves tokens through a port
of the token programs' TransferChecked (Token-2022 transfer fees withheld in the destination's
TransferFeeAmount extension), and only writes once everything has passed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from solders.account import Account
from solders.pubkey import Pubkey

from local.chain.programs.token import (
    ACCOUNT_FROZEN,
    EXT_NON_TRANSFERABLE_ACCOUNT,
    EXT_PAUSABLE,
    EXT_TRANSFER_FEE_AMOUNT,
    INSUFFICIENT_FUNDS,
    INVALID_STATE,
    MINT_DECIMALS_MISMATCH,
    MINT_LEN,
    MINT_MISMATCH,
    MINT_PAUSED,
    NON_TRANSFERABLE,
    OWNER_MISMATCH,
    STATE_FROZEN,
    STATE_UNINITIALIZED,
    TOKEN_ACCOUNT_LEN,
    TOKEN_PROGRAMS,
    TokenAccount,
    epoch_transfer_fee,
    extension,
    tlv_entries,
    with_amount,
)

TOKEN_PROGRAM = TOKEN_PROGRAMS[0]
TOKEN_2022_PROGRAM = TOKEN_PROGRAMS[1]
SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
SYSVAR_CLOCK = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
SYSVAR_INSTRUCTIONS = Pubkey.from_string("Sysvar1nstructions1111111111111111111111111")


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
    """The instruction failed: with custom program error `code`, or (when `builtin` is set) with
    a runtime InstructionError such as `IncorrectProgramId`; `logs` are what it printed."""

    def __init__(
        self, code: int, logs: list[str], builtin: str | None = None, message: str = ""
    ) -> None:
        super().__init__(builtin or f"custom program error: {code:#x}")
        self.code = code
        self.logs = logs
        self.builtin = builtin
        self.message = message  # the runtime's wording of a builtin error


class Program(Protocol):
    program_id: Pubkey

    def process(self, view: AccountsView, accounts: Sequence[Meta], data: bytes) -> list[str]: ...


# Anchor's framework error codes (anchor-lang error.rs), shared by both Anchor programs.
INSTRUCTION_FALLBACK_NOT_FOUND = 101
INSTRUCTION_DID_NOT_DESERIALIZE = 102
CONSTRAINT_MUT = 2000
CONSTRAINT_HAS_ONE = 2001
CONSTRAINT_SIGNER = 2002
CONSTRAINT_RAW = 2003
CONSTRAINT_SEEDS = 2006
CONSTRAINT_ADDRESS = 2012
CONSTRAINT_TOKEN_MINT = 2014
CONSTRAINT_TOKEN_OWNER = 2015
CONSTRAINT_TOKEN_TOKEN_PROGRAM = 2021
CONSTRAINT_MINT_TOKEN_PROGRAM = 2022
REQUIRE_EQ_VIOLATED = 2501
REQUIRE_GT_VIOLATED = 2505
REQUIRE_GTE_VIOLATED = 2506
ACCOUNT_DISCRIMINATOR_NOT_FOUND = 3001
ACCOUNT_DISCRIMINATOR_MISMATCH = 3002
ACCOUNT_DID_NOT_DESERIALIZE = 3003
ACCOUNT_NOT_ENOUGH_KEYS = 3005
ACCOUNT_NOT_MUTABLE = 3006
ACCOUNT_OWNED_BY_WRONG_PROGRAM = 3007
INVALID_PROGRAM_ID = 3008
ACCOUNT_NOT_SIGNER = 3010
ACCOUNT_NOT_INITIALIZED = 3012

ANCHOR_MESSAGES = {
    INSTRUCTION_FALLBACK_NOT_FOUND: (
        "InstructionFallbackNotFound",
        "Fallback functions are not supported",
    ),
    INSTRUCTION_DID_NOT_DESERIALIZE: (
        "InstructionDidNotDeserialize",
        "The program could not deserialize the given instruction",
    ),
    CONSTRAINT_MUT: ("ConstraintMut", "A mut constraint was violated"),
    CONSTRAINT_HAS_ONE: ("ConstraintHasOne", "A has one constraint was violated"),
    CONSTRAINT_SIGNER: ("ConstraintSigner", "A signer constraint was violated"),
    CONSTRAINT_RAW: ("ConstraintRaw", "A raw constraint was violated"),
    CONSTRAINT_SEEDS: ("ConstraintSeeds", "A seeds constraint was violated"),
    CONSTRAINT_ADDRESS: ("ConstraintAddress", "An address constraint was violated"),
    CONSTRAINT_TOKEN_MINT: ("ConstraintTokenMint", "A token mint constraint was violated"),
    CONSTRAINT_TOKEN_OWNER: ("ConstraintTokenOwner", "A token owner constraint was violated"),
    CONSTRAINT_TOKEN_TOKEN_PROGRAM: (
        "ConstraintTokenTokenProgram",
        "A token account token program constraint was violated",
    ),
    CONSTRAINT_MINT_TOKEN_PROGRAM: (
        "ConstraintMintTokenProgram",
        "A mint token program constraint was violated",
    ),
    REQUIRE_EQ_VIOLATED: ("RequireEqViolated", "A require_eq expression was violated"),
    REQUIRE_GT_VIOLATED: ("RequireGtViolated", "A require_gt expression was violated"),
    REQUIRE_GTE_VIOLATED: ("RequireGteViolated", "A require_gte expression was violated"),
    ACCOUNT_DISCRIMINATOR_NOT_FOUND: (
        "AccountDiscriminatorNotFound",
        "No discriminator was found on the account",
    ),
    ACCOUNT_DISCRIMINATOR_MISMATCH: (
        "AccountDiscriminatorMismatch",
        "Account discriminator did not match what was expected",
    ),
    ACCOUNT_DID_NOT_DESERIALIZE: ("AccountDidNotDeserialize", "Failed to deserialize the account"),
    ACCOUNT_NOT_ENOUGH_KEYS: (
        "AccountNotEnoughKeys",
        "Not enough account keys given to the instruction",
    ),
    ACCOUNT_NOT_MUTABLE: ("AccountNotMutable", "The given account is not mutable"),
    ACCOUNT_OWNED_BY_WRONG_PROGRAM: (
        "AccountOwnedByWrongProgram",
        "The given account is owned by a different program than expected",
    ),
    INVALID_PROGRAM_ID: ("InvalidProgramId", "Program ID was not as expected"),
    ACCOUNT_NOT_SIGNER: ("AccountNotSigner", "The given account did not sign"),
    ACCOUNT_NOT_INITIALIZED: (
        "AccountNotInitialized",
        "The program expected this account to be already initialized",
    ),
}

# Runtime InstructionErrors a simulated instruction can end with, and how the runtime words them.
BUILTIN_MESSAGES = {
    "IncorrectProgramId": "incorrect program id for instruction",
    "InvalidAccountData": "invalid account data for instruction",
    "ExternalAccountDataModified": "instruction modified data of an account it does not own",
    "UnsupportedSysvar": "Unsupported sysvar",
    "ProgramFailedToComplete": "Program failed to complete",
    "NotEnoughAccountKeys": "insufficient account keys for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "InvalidSeeds": "Provided seeds do not result in a valid address",
    "PrivilegeEscalation": "Cross-program invocation with unauthorized signer or writable account",
    "InvalidArgument": "invalid program argument",
}


def anchor_error(
    logs: list[str], code: int, name: str = "", message: str = "", account: str | None = None
) -> ProgramError:
    """The error an Anchor program raises, with the log line Anchor prints for it."""
    if not name:
        name, message = ANCHOR_MESSAGES[code]
    where = f"caused by account: {account}" if account else "occurred"
    line = f"Program log: AnchorError {where}. Error Code: {name}. Error Number: {code}. "
    return ProgramError(code, [*logs, line + f"Error Message: {message}."])


def load_anchor_account(
    view: AccountsView, meta: Meta, program_id: Pubkey, disc: bytes, logs: list[str], name: str
) -> Account:
    """Anchor's `Account<T>` / `AccountLoader<T>::try_from`: initialized, owned by the program,
    carrying T's discriminator; else the Anchor error naming the account."""
    account = view.get(meta.pubkey)
    if account is None:
        raise anchor_error(logs, ACCOUNT_NOT_INITIALIZED, account=name)
    if account.owner != program_id:
        raise anchor_error(logs, ACCOUNT_OWNED_BY_WRONG_PROGRAM, account=name)
    data = bytes(account.data)
    if len(data) < 8:
        raise anchor_error(logs, ACCOUNT_DISCRIMINATOR_NOT_FOUND, account=name)
    if data[:8] != disc:
        raise anchor_error(logs, ACCOUNT_DISCRIMINATOR_MISMATCH, account=name)
    return account


def builtin_error(logs: list[str], name: str) -> ProgramError:
    return ProgramError(0, logs, builtin=name, message=BUILTIN_MESSAGES[name])


# ------------------------------------------------------------------------------ sysvars
@dataclass(frozen=True)
class ClockSysvar:
    slot: int
    epoch_start_timestamp: int
    epoch: int
    leader_schedule_epoch: int
    unix_timestamp: int


def read_clock(view: AccountsView, logs: list[str]) -> ClockSysvar:
    """`Clock::get()`: the Clock sysvar of the slot executing the instruction."""
    account = view.get(SYSVAR_CLOCK)
    if account is None or len(bytes(account.data)) < 40:
        raise builtin_error(logs, "UnsupportedSysvar")
    return ClockSysvar(*struct.unpack_from("<QqQQq", bytes(account.data), 0))


@dataclass(frozen=True)
class TransactionInstruction:
    program_id: Pubkey
    accounts: tuple[Pubkey, ...]
    data: bytes


def transaction_instructions(view: AccountsView) -> tuple[list[TransactionInstruction], int]:
    """What the instructions sysvar holds: the transaction's top-level instructions and the
    index of the one executing (the ledger's view provides them; a bare view has just one)."""
    instructions = getattr(view, "instructions", None)
    index = int(getattr(view, "instruction_index", 0))
    return (list(instructions) if instructions is not None else []), index


# ------------------------------------------------------------------------------ writes
class Pending:
    """The accounts a swap will write, applied together once every check has passed."""

    def __init__(self, view: AccountsView) -> None:
        self.view = view
        self.writes: dict[Pubkey, Account] = {}

    def get(self, key: Pubkey) -> Account | None:
        return self.writes[key] if key in self.writes else self.view.get(key)

    def set(self, key: Pubkey, account: Account) -> None:
        self.writes[key] = account

    def commit(self) -> None:
        for key, account in self.writes.items():
            self.view.set(key, account)


def with_data(account: Account, data: bytes) -> Account:
    return Account(account.lamports, data, account.owner, account.executable, account.rent_epoch)


# ------------------------------------------------------------------------------ Anchor helpers
def load_token_account(
    view: AccountsView, meta: Meta, logs: list[str], name: str
) -> tuple[Account, TokenAccount]:
    """The token account behind `meta`, failing as Anchor's InterfaceAccount<TokenAccount> does."""
    account = view.get(meta.pubkey)
    if account is None:
        raise anchor_error(logs, ACCOUNT_NOT_INITIALIZED, account=name)
    if account.owner not in TOKEN_PROGRAMS:
        raise anchor_error(logs, ACCOUNT_OWNED_BY_WRONG_PROGRAM, account=name)
    data = bytes(account.data)
    try:
        state = TokenAccount.unpack(data)
    except ValueError:
        raise anchor_error(logs, ACCOUNT_DID_NOT_DESERIALIZE, account=name) from None
    if state.state == STATE_UNINITIALIZED:
        raise anchor_error(logs, ACCOUNT_DID_NOT_DESERIALIZE, account=name)
    return account, state


def load_mint(view: AccountsView, meta: Meta, logs: list[str], name: str) -> Account:
    """Anchor's InterfaceAccount<Mint>: owned by a token program and a mint."""
    account = view.get(meta.pubkey)
    if account is None:
        raise anchor_error(logs, ACCOUNT_NOT_INITIALIZED, account=name)
    if account.owner not in TOKEN_PROGRAMS:
        raise anchor_error(logs, ACCOUNT_OWNED_BY_WRONG_PROGRAM, account=name)
    if len(bytes(account.data)) < MINT_LEN:
        raise anchor_error(logs, ACCOUNT_DID_NOT_DESERIALIZE, account=name)
    return account


def swap_args(
    data: bytes, accounts: Sequence[Meta], discriminator: bytes, min_accounts: int, logs: list[str]
) -> tuple[int, int]:
    """An Anchor swap instruction's entry checks, in the framework's order: the discriminator,
    then (amount_in, minimum_amount_out) as two u64, then enough accounts."""
    if data[:8] != discriminator:
        # Only the swap is simulated; any other instruction is unknown to the program.
        raise anchor_error([], INSTRUCTION_FALLBACK_NOT_FOUND)
    if len(data) < 24:
        raise anchor_error(logs, INSTRUCTION_DID_NOT_DESERIALIZE)
    amount_in, minimum_amount_out = struct.unpack_from("<QQ", data, 8)
    if len(accounts) < min_accounts:
        raise anchor_error(logs, ACCOUNT_NOT_ENOUGH_KEYS)
    return amount_in, minimum_amount_out


# ------------------------------------------------------------------------------ token CPI
@dataclass
class Transfer:
    """One TransferChecked CPI a swap makes."""

    token_program: Pubkey
    source: Pubkey
    mint: Pubkey
    destination: Pubkey
    authority: Pubkey
    amount: int
    decimals: int
    logs: list[str] = field(default_factory=list)


def token_transfer(
    pending: Pending, transfer: Transfer, epoch: int, logs_so_far: list[str]
) -> list[str]:
    """Run TransferChecked as the token program named by the CPI does, in its check order,
    writing to `pending`; returns the CPI's logs. Token-2022 withholds the mint's transfer fee
    for `epoch` in the destination's TransferFeeAmount (token-2022 processor.rs
    process_transfer); SPL Token (spl-token processor.rs) knows no extension."""
    program = transfer.token_program
    cpi = [f"Program {program} invoke [2]", "Program log: Instruction: TransferChecked"]

    def fail(code: int, message: str) -> ProgramError:
        failed = f"Program {program} failed: custom program error: {code:#x}"
        return ProgramError(code, [*logs_so_far, *cpi, f"Program log: Error: {message}", failed])

    def fail_builtin(name: str) -> ProgramError:
        error = builtin_error([], name)
        error.logs = [*logs_so_far, *cpi, f"Program {program} failed: {error.message}"]
        return error

    source_account = pending.get(transfer.source)
    dest_account = pending.get(transfer.destination)
    mint_account = pending.get(transfer.mint)
    if source_account is None or dest_account is None or mint_account is None:
        raise fail_builtin("InvalidAccountData")
    source_data, dest_data = bytes(source_account.data), bytes(dest_account.data)
    mint_data = bytes(mint_account.data)
    fee = 0
    if program == TOKEN_2022_PROGRAM:
        if source_account.owner != program or dest_account.owner != program:
            raise fail_builtin("IncorrectProgramId")
        source = _unpack_account(source_data)
        if source is None:
            raise fail_builtin("InvalidAccountData")
        if source.state == STATE_FROZEN:
            raise fail(ACCOUNT_FROZEN, "Account is frozen")
        if source.amount < transfer.amount:
            raise fail(INSUFFICIENT_FUNDS, "insufficient funds")
        if extension(source_data, EXT_NON_TRANSFERABLE_ACCOUNT) is not None:
            raise fail(NON_TRANSFERABLE, "Transfer is disabled for this mint")
        if mint_account.owner != program:
            raise fail_builtin("IncorrectProgramId")
        if source.mint != transfer.mint:
            raise fail(MINT_MISMATCH, "Account not associated with this Mint")
        if len(mint_data) < MINT_LEN:
            raise fail_builtin("InvalidAccountData")
        if mint_data[44] != transfer.decimals:
            raise fail(MINT_DECIMALS_MISMATCH, "The provided decimals value different")
        schedule = epoch_transfer_fee(mint_data, epoch)
        fee = schedule.calculate_fee(transfer.amount) if schedule is not None else 0
        pausable = extension(mint_data, EXT_PAUSABLE)
        if pausable is not None and len(pausable) >= 33 and pausable[32]:
            raise fail(MINT_PAUSED, "Transferring, minting, and burning is paused on this mint")
        if source.owner != transfer.authority:
            raise fail(OWNER_MISMATCH, "owner does not match")
        if transfer.source == transfer.destination:
            return [*cpi, f"Program {program} success"]
        dest = _unpack_account(dest_data)
        if dest is None:
            raise fail_builtin("InvalidAccountData")
        if dest.state == STATE_FROZEN:
            raise fail(ACCOUNT_FROZEN, "Account is frozen")
        if source.mint != dest.mint:
            raise fail(MINT_MISMATCH, "Account not associated with this Mint")
        if fee > 0 and extension(dest_data, EXT_TRANSFER_FEE_AMOUNT) is None:
            raise fail(INVALID_STATE, "State is invalid for requested operation")
    elif program == TOKEN_PROGRAM:
        source = _unpack_account(source_data) if len(source_data) == TOKEN_ACCOUNT_LEN else None
        dest = _unpack_account(dest_data) if len(dest_data) == TOKEN_ACCOUNT_LEN else None
        if source is None or dest is None:
            raise fail_builtin("InvalidAccountData")
        if source.state == STATE_FROZEN or dest.state == STATE_FROZEN:
            raise fail(ACCOUNT_FROZEN, "Account is frozen")
        if source.amount < transfer.amount:
            raise fail(INSUFFICIENT_FUNDS, "insufficient funds")
        if source.mint != dest.mint:
            raise fail(MINT_MISMATCH, "Account not associated with this Mint")
        if transfer.mint != source.mint:
            raise fail(MINT_MISMATCH, "Account not associated with this Mint")
        if len(mint_data) != MINT_LEN:
            raise fail_builtin("InvalidAccountData")
        if mint_data[44] != transfer.decimals:
            raise fail(MINT_DECIMALS_MISMATCH, "The provided decimals value different")
        if source.owner != transfer.authority:
            raise fail(OWNER_MISMATCH, "owner does not match")
        foreign = source_account.owner != program or dest_account.owner != program
        if foreign and (transfer.source == transfer.destination or transfer.amount == 0):
            raise fail_builtin("IncorrectProgramId")
        if transfer.source == transfer.destination:
            return [*cpi, f"Program {program} success"]
        if source_account.owner != program or dest_account.owner != program:
            # The runtime refuses a program writing accounts another program owns.
            raise fail_builtin("ExternalAccountDataModified")
    else:
        raise fail_builtin("IncorrectProgramId")

    pending.set(transfer.source, with_amount(source_account, source.amount - transfer.amount))
    dest_account = pending.get(transfer.destination)
    if dest_account is None:
        raise fail_builtin("InvalidAccountData")
    dest_now = TokenAccount.unpack(bytes(dest_account.data))
    credited = transfer.amount - fee
    pending.set(transfer.destination, with_amount(dest_account, dest_now.amount + credited, fee))
    return [*cpi, f"Program {program} success"]


def _unpack_account(data: bytes) -> TokenAccount | None:
    if len(data) < TOKEN_ACCOUNT_LEN:
        return None
    if len(data) > TOKEN_ACCOUNT_LEN and (len(data) == 166 or data[TOKEN_ACCOUNT_LEN] != 2):
        return None  # an extended account must say it is an Account
    state = TokenAccount.unpack(data)
    if state.state == STATE_UNINITIALIZED:
        return None
    return state


def account_extensions(data: bytes) -> list[int]:
    return [kind for kind, _, _ in tlv_entries(data)]


def transfer_fee_of(view: AccountsView, mint: Pubkey, amount: int, epoch: int) -> int:
    """The fee a transfer of `amount` of `mint` withholds in `epoch` (0 for SPL Token mints):
    both programs' get_transfer_fee / calculate_transfer_fee_excluded_amount."""
    account = view.get(mint)
    if account is None or account.owner != TOKEN_2022_PROGRAM:
        return 0
    schedule = epoch_transfer_fee(bytes(account.data), epoch)
    return schedule.calculate_fee(amount) if schedule is not None else 0


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
    **options: Any,
) -> None:
    """Write a ready-to-swap pool of `venue` at `pool`: state, config, vaults (and observation).
    `options` are the venue's own (raydium_cpmm.create_pool, meteora_damm_v2.create_pool)."""
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
        **options,
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
    "TOKEN_PROGRAMS",
    "AccountsView",
    "Meta",
    "Program",
    "ProgramError",
    "create_pool",
    "set_pool_reserves",
]
