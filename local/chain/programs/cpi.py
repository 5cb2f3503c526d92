"""What the DEX programs' cross-program invocations into the System, SPL Token / Token-2022 and
Associated Token Account programs do, for the simulated initialize instructions.

A simulated program cannot invoke LiteSVM's real programs (it would need to sign for its PDAs),
so each helper here writes the accounts exactly as the invoked program would leave them and
returns the log lines the invocation prints, checking what the invoked program checks where a
wrong transaction could get there:
- System `create_account` (and Anchor's / CPMM's transfer-allocate-assign path for an address
  that already holds lamports): the payer must hold the rent, and an address already in use
  fails with `AccountAlreadyInUse` (custom 0), `Transfer: insufficient lamports` is custom 1
  (solana system program, system_processor.rs);
- Token `InitializeMint2` / `InitializeAccount3` (the created account's bytes, extensions
  included), `MintTo`, `SyncNative`; Token-2022's metadata-pointer, close-authority and
  TokenMetadata `Initialize` on a mint;
- the ATA program's `Create` (the address must be the derived one: `InvalidSeeds`).
Rent is what LiteSVM charges: (128 + size) x 3480 x 2 lamports.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import replace

from solders.account import Account
from solders.pubkey import Pubkey

from local.chain.programs import (
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
    Pending,
    ProgramError,
    builtin_error,
)
from local.chain.programs.token import (
    ACCOUNT_TYPE_MINT,
    EXT_IMMUTABLE_OWNER,
    EXT_TRANSFER_FEE_CONFIG,
    MINT_LEN,
    NATIVE_MINT,
    TOKEN_ACCOUNT_LEN,
    Mint,
    TokenAccount,
    account_extensions_for_mint,
    pack_tlv,
    rent_exempt_lamports,
    tlv_entries,
    token_account,
)

ASSOCIATED_TOKEN_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSVAR_RENT = Pubkey.from_string("SysvarRent111111111111111111111111111111111")

# solana system program SystemError (custom program errors of the System program).
ACCOUNT_ALREADY_IN_USE = 0
RESULT_WITH_NEGATIVE_LAMPORTS = 1

# token-2022 ExtensionType numbers a created mint may carry.
EXT_MINT_CLOSE_AUTHORITY = 3
EXT_METADATA_POINTER = 18
EXT_TOKEN_METADATA = 19


def invoked(program: Pubkey, depth: int, lines: Sequence[str] = ()) -> list[str]:
    """The log lines of one successful invocation at stack height `depth`."""
    return [f"Program {program} invoke [{depth}]", *lines, f"Program {program} success"]


def _system_failure(logs: list[str], depth: int, line: str, code: int) -> ProgramError:
    failed = f"Program {SYSTEM_PROGRAM} failed: custom program error: {code:#x}"
    head = f"Program {SYSTEM_PROGRAM} invoke [{depth}]"
    return ProgramError(code, [*logs, head, line, failed])


def _debit(pending: Pending, payer: Pubkey, lamports: int, logs: list[str], depth: int) -> None:
    """system_processor transfer: the payer gives `lamports` or the CPI fails (custom 1)."""
    account = pending.get(payer)
    have = account.lamports if account is not None else 0
    if have < lamports:
        line = f"Transfer: insufficient lamports {have}, need {lamports}"
        raise _system_failure(logs, depth, line, RESULT_WITH_NEGATIVE_LAMPORTS)
    if account is not None and lamports:
        pending.set(payer, _with_lamports(account, have - lamports))


def _with_lamports(account: Account, lamports: int) -> Account:
    return Account(lamports, bytes(account.data), account.owner, account.executable, 0)


def transfer_lamports(
    pending: Pending, payer: Pubkey, to: Pubkey, lamports: int, logs: list[str], depth: int = 2
) -> list[str]:
    """System `transfer` from a system account to any account."""
    _debit(pending, payer, lamports, logs, depth)
    target = pending.get(to)
    if target is None:
        target = Account(0, b"", SYSTEM_PROGRAM, False, 0)
    pending.set(to, _with_lamports(target, target.lamports + lamports))
    return invoked(SYSTEM_PROGRAM, depth)


def create_account(
    pending: Pending,
    payer: Pubkey,
    target: Pubkey,
    data: bytes,
    owner: Pubkey,
    logs: list[str],
    depth: int = 2,
) -> list[str]:
    """Create `target` holding `data`, owned by `owner`, rent paid by `payer`.

    An address with no lamports gets `create_account`; one that already holds lamports but no
    data (someone sent it SOL first) is topped up to the rent, allocated and assigned, as
    Anchor's `init` and CPMM's `create_or_allocate_account` do; one already holding data or
    owned by a program is in use: `Allocate: ... already in use`, custom error 0. The whole
    rent-exempt balance stays with the account (`data` is what the initializing CPIs that
    follow leave in it)."""
    rent = rent_exempt_lamports(len(data))
    existing = pending.get(target)
    if existing is None:
        _debit(pending, payer, rent, logs, depth)
        pending.set(target, Account(rent, data, owner, False, 0))
        return invoked(SYSTEM_PROGRAM, depth)
    if bytes(existing.data) or existing.owner != SYSTEM_PROGRAM:
        line = f"Allocate: account Address {{ address: {target}, base: None }} already in use"
        raise _system_failure(logs, depth, line, ACCOUNT_ALREADY_IN_USE)
    top_up = max(rent - existing.lamports, 0)
    out: list[str] = []
    if top_up:
        _debit(pending, payer, top_up, logs, depth)
        out += invoked(SYSTEM_PROGRAM, depth)
    pending.set(target, Account(existing.lamports + top_up, data, owner, False, 0))
    return [*out, *invoked(SYSTEM_PROGRAM, depth), *invoked(SYSTEM_PROGRAM, depth)]


def vault_extensions(mint_data: bytes) -> list[tuple[int, bytes]]:
    """get_required_init_account_extensions for a mint: what its token accounts must carry."""
    return account_extensions_for_mint(mint_data)


def token_account_data(
    mint: Pubkey, owner: Pubkey, program: Pubkey, mint_data: bytes, immutable_owner: bool = False
) -> bytes:
    """An `InitializeAccount3`ed account's bytes for a mint of `program`: a Token-2022 account
    carries the mint's required extensions (and ImmutableOwner first when the ATA program
    made it)."""
    extensions: list[tuple[int, bytes]] = []
    if program == TOKEN_2022_PROGRAM:
        extensions = [(EXT_IMMUTABLE_OWNER, b"")] if immutable_owner else []
        extensions += vault_extensions(mint_data)
    return bytes(token_account(mint, owner, 0, program, extensions or None).data)


def initialize_account_logs(program: Pubkey, depth: int = 2) -> list[str]:
    return invoked(program, depth, ["Program log: Instruction: InitializeAccount3"])


def create_token_account(
    pending: Pending,
    payer: Pubkey,
    target: Pubkey,
    mint: Pubkey,
    owner: Pubkey,
    program: Pubkey,
    logs: list[str],
) -> list[str]:
    """System `create_account` sized for the mint's required extensions, then the token
    program's `InitializeAccount3`, which refuses a mint its program does not own."""
    mint_account = pending.get(mint)
    if (
        mint_account is None
        or mint_account.owner != program
        or program
        not in (
            TOKEN_PROGRAM,
            TOKEN_2022_PROGRAM,
        )
    ):
        error = builtin_error([], "IncorrectProgramId")
        failed = f"Program {program} failed: {error.message}"
        error.logs = [*logs, f"Program {program} invoke [2]", failed]
        raise error
    data = token_account_data(mint, owner, program, bytes(mint_account.data))
    out = create_account(pending, payer, target, data, program, logs)
    if mint == NATIVE_MINT:
        # A native account's amount is what it holds above its rent reserve.
        created = pending.get(target)
        if created is not None:
            state = TokenAccount.unpack(bytes(created.data))
            reserve = rent_exempt_lamports(len(data))
            native = replace(state, is_native=reserve, amount=created.lamports - reserve)
            pending.set(target, Account(created.lamports, native.pack() + data[165:], program))
    return [*out, *initialize_account_logs(program)]


def spl_mint_data(decimals: int, authority: Pubkey, freeze: Pubkey | None = None) -> bytes:
    return Mint(decimals=decimals, mint_authority=authority, freeze_authority=freeze).pack()


def mint_to(
    pending: Pending,
    program: Pubkey,
    mint: Pubkey,
    destination: Pubkey,
    amount: int,
    depth: int = 2,
) -> list[str]:
    """`MintTo` signed by the mint authority (the program's PDA): supply and balance grow."""
    mint_account = pending.get(mint)
    dest_account = pending.get(destination)
    if mint_account is None or dest_account is None:
        raise builtin_error([], "InvalidAccountData")
    mint_data = bytearray(bytes(mint_account.data))
    supply = struct.unpack_from("<Q", mint_data, 36)[0] + amount
    mint_data[36:44] = struct.pack("<Q", supply)
    pending.set(mint, Account(mint_account.lamports, bytes(mint_data), mint_account.owner))
    dest_data = bytearray(bytes(dest_account.data))
    balance = struct.unpack_from("<Q", dest_data, 64)[0] + amount
    dest_data[64:72] = struct.pack("<Q", balance)
    pending.set(destination, Account(dest_account.lamports, bytes(dest_data), dest_account.owner))
    return invoked(program, depth, ["Program log: Instruction: MintTo"])


def sync_native(pending: Pending, account: Pubkey, depth: int = 2) -> list[str]:
    """`SyncNative`: a wrapped-SOL account's amount becomes its lamports above the reserve."""
    found = pending.get(account)
    if found is None:
        raise builtin_error([], "InvalidAccountData")
    data = bytearray(bytes(found.data))
    state = TokenAccount.unpack(bytes(data))
    if state.is_native is not None:
        data[:TOKEN_ACCOUNT_LEN] = replace(state, amount=found.lamports - state.is_native).pack()
        pending.set(account, Account(found.lamports, bytes(data), found.owner))
    return invoked(found.owner, depth, ["Program log: Instruction: SyncNative"])


def associated_token_address(owner: Pubkey, mint: Pubkey, program: Pubkey) -> Pubkey:
    seeds = [bytes(owner), bytes(program), bytes(mint)]
    return Pubkey.find_program_address(seeds, ASSOCIATED_TOKEN_PROGRAM)[0]


def create_associated_token_account(
    pending: Pending,
    payer: Pubkey,
    target: Pubkey,
    owner: Pubkey,
    mint: Pubkey,
    program: Pubkey,
    logs: list[str],
) -> list[str]:
    """The ATA program's `Create` (not idempotent): the address must be the derived one
    (`InvalidSeeds`), then the account is created and initialized for `owner`."""
    head = [f"Program {ASSOCIATED_TOKEN_PROGRAM} invoke [2]", "Program log: Create"]
    if target != associated_token_address(owner, mint, program):
        error = builtin_error([], "InvalidSeeds")
        error.logs = [
            *logs,
            *head,
            f"Program {ASSOCIATED_TOKEN_PROGRAM} failed: {error.message}",
        ]
        raise error
    mint_account = pending.get(mint)
    mint_data = bytes(mint_account.data) if mint_account is not None else b""
    data = token_account_data(mint, owner, program, mint_data, immutable_owner=True)
    size_logs = invoked(program, 3, ["Program log: Instruction: GetAccountDataSize"])
    created = create_account(pending, payer, target, data, program, [*logs, *head, *size_logs], 3)
    init = [
        "Program log: Initialize the associated token account",
        *invoked(program, 3, ["Program log: Instruction: InitializeImmutableOwner"]),
        *initialize_account_logs(program, 3),
    ]
    return [*head, *size_logs, *created, *init, f"Program {ASSOCIATED_TOKEN_PROGRAM} success"]


def metadata_value(
    update_authority: Pubkey, mint: Pubkey, name: str, symbol: str, uri: str
) -> bytes:
    """A TokenMetadata extension's value (spl-token-metadata-interface state.rs, borsh)."""

    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<I", len(raw)) + raw

    return (
        bytes(update_authority)
        + bytes(mint)
        + string(name)
        + string(symbol)
        + string(uri)
        + struct.pack("<I", 0)
    )


def mint_2022_with_extensions(mint: Mint, extensions: list[tuple[int, bytes]]) -> bytes:
    """A Token-2022 mint: the base, zero padding to 165, AccountType::Mint, then the TLV
    entries in the order their initializing instructions ran."""
    padding = bytes(TOKEN_ACCOUNT_LEN - MINT_LEN)
    return mint.pack() + padding + pack_tlv(ACCOUNT_TYPE_MINT, extensions)


def mint_extension_types(mint_data: bytes) -> list[int]:
    """The extension types of a Token-2022 mint (none for an 82-byte mint)."""
    if len(mint_data) <= MINT_LEN:
        return []
    return [kind for kind, _, _ in tlv_entries(mint_data)]


def has_transfer_fee(mint_data: bytes) -> bool:
    return EXT_TRANSFER_FEE_CONFIG in mint_extension_types(mint_data)
