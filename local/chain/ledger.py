"""The local chain's ledger: LiteSVM for accounts and the native programs, plus everything a
validator adds on top that LiteSVM lacks: blocks (slot / block height, blockhash, parent, block
time), a blockhash window of 150 blocks, signature statuses that move processed -> confirmed ->
finalized, the accounts as of each unfinalized slot (each block keeps what it overwrote), duplicate
detection, fees, a history of the last LOCAL_CHAIN_HISTORY_SLOTS slots (blocks, transactions with
their metas and CPIs, signatures by address, prioritization fees), address lookup tables (the
SlotHashes sysvar, loaded addresses), a faucet, and the cluster clock. The DEX programs are the
real mainnet binaries (`local.chain.binaries`), deployed in LiteSVM as upgradeable programs:
every transaction runs in LiteSVM as it is.

Every public method takes one lock: the ticker thread, the ASGI app and tests may call in at
once, and LiteSVM itself is not meant to be shared between threads. Listeners (the PubSub server)
are told about received and landed transactions, written accounts and new slots while the lock
is held, so what they see is consistent with the ledger at that instant.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from solders.account import Account
from solders.address_lookup_table_account import ID as ADDRESS_LOOKUP_TABLE_ID
from solders.address_lookup_table_account import AddressLookupTable, SlotHashes
from solders.clock import Clock
from solders.compute_budget import ID as COMPUTE_BUDGET_ID
from solders.epoch_schedule import EpochSchedule
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0, MessageV1
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, InnerInstruction
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionErrorType,
)

from local.chain import binaries, errors
from local.chain.wire import error_to_json

log = logging.getLogger("local.chain")

FEE_PER_SIGNATURE = 5_000  # lamports; the cluster's base fee
BLOCKHASH_VALID_BLOCKS = 150  # a blockhash can land up to height_at_issue + 150
# `confirmed` trails `processed` (the newest produced block) by this many blocks, as the
# supermajority's votes trail the leader on a cluster (about one block); 0 makes them the same.
CONFIRMED_LAG_BLOCKS = 1
CONFIRMED_LAG_ENV = "LOCAL_CHAIN_CONFIRMED_LAG"
FINALIZE_AFTER_BLOCKS = 32  # a landed transaction is "finalized" 32 blocks later (a root)
DEFAULT_UNITS_PER_INSTRUCTION = 200_000
MAX_COMPUTE_UNITS = 1_400_000
GENESIS_HEIGHT = 1
# Blocks, transactions and signatures-by-address kept for the RPC's history methods.
HISTORY_SLOTS = 10_000
HISTORY_SLOTS_ENV = "LOCAL_CHAIN_HISTORY_SLOTS"
PRIORITY_FEE_SLOTS = 150  # a node's prioritization-fee cache holds the last 150 blocks
FAUCET_LAMPORTS = 500_000_000 * 1_000_000_000  # what requestAirdrop hands out from
# The cluster clock: 400 ms a slot from the ledger's creation (wall time), mainnet's epochs of
# 432,000 slots without warmup. Programs read it through the Clock sysvar (open times,
# activation points, fee schedulers, volatility decay, Token-2022 epoch fees), and block times
# come from it too (Ledger.slot_time).
MS_PER_SLOT = 400
SLOTS_PER_EPOCH = 432_000

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
WSOL_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")
# The cluster's genesis hash (getGenesisHash): fixed, so a browser or wallet that remembered the
# cluster still recognises it.
GENESIS_HASH = Hash(hashlib.sha256(b"local-chain/genesis").digest())
COMMITMENTS = ("processed", "confirmed", "finalized")
# A fixed public seed: the faucet (and the node identity) exist only on this machine's chain.
FAUCET_KEYPAIR = Keypair.from_seed(hashlib.sha256(b"local-chain/faucet").digest())

# Errors after which a real validator never includes the transaction in a block: no status,
# no fee. Everything else lands with its error and pays the fee.
_NOT_LANDING = [
    TransactionErrorFieldless.SignatureFailure,
    TransactionErrorFieldless.InsufficientFundsForFee,
    TransactionErrorFieldless.AccountNotFound,
    TransactionErrorFieldless.BlockhashNotFound,
    TransactionErrorFieldless.AlreadyProcessed,
    TransactionErrorFieldless.SanitizeFailure,
    TransactionErrorFieldless.AddressLookupTableNotFound,
    TransactionErrorFieldless.InvalidAddressLookupTableOwner,
    TransactionErrorFieldless.InvalidAddressLookupTableData,
    TransactionErrorFieldless.InvalidAddressLookupTableIndex,
]  # a list: the solders enum values are not hashable
SLOT_HASHES_KEPT = 512  # the SlotHashes sysvar's length (recent slots a lookup table may name)


@dataclass
class Faults:
    """Failures the RPC server injects on request (tests, demos). Counters count down; rates
    (0..1) apply to every request or send, drawn from a seeded generator so a run repeats."""

    latency_ms: int = 0
    rate_limit_next: int = 0
    timeout_next: int = 0
    hang_seconds: float = 30.0
    drop_next_sends: int = 0
    landing_delay_blocks: int = 0
    rate_limit_rate: float = 0.0  # share of RPC requests answered 429
    timeout_rate: float = 0.0  # share of RPC requests that hang for hang_seconds
    drop_rate: float = 0.0  # share of sends accepted and never landed
    expire_rate: float = 0.0  # share of sends dropped while the cluster jumps 151 blocks
    # Congestion: getRecentPrioritizationFees reports at least this many micro-lamports per CU
    # for every slot, whatever the landed transactions paid.
    priority_fee_level: int = 0
    # JSON-RPC methods answered -32601 "Method not found", as by a node without the full RPC
    # API or a provider whose plan leaves them out (getProgramAccounts, typically).
    refuse_methods: tuple[str, ...] = ()
    seed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _random: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    FIELDS = (
        "latency_ms",
        "rate_limit_next",
        "timeout_next",
        "hang_seconds",
        "drop_next_sends",
        "landing_delay_blocks",
        "rate_limit_rate",
        "timeout_rate",
        "drop_rate",
        "expire_rate",
        "priority_fee_level",
        "refuse_methods",
        "seed",
    )
    FLOATS = frozenset(
        {"hang_seconds", "rate_limit_rate", "timeout_rate", "drop_rate", "expire_rate"}
    )

    def update(self, **values: Any) -> None:
        with self._lock:
            for key, value in values.items():
                if key not in self.FIELDS:
                    raise ValueError(f"unknown fault {key!r}")
                if key == "refuse_methods":
                    self.refuse_methods = _method_names(value)
                    continue
                setattr(self, key, float(value) if key in self.FLOATS else int(value))
                if key == "seed":
                    self._random.seed(int(value))

    def clear(self) -> None:
        self.update(
            latency_ms=0,
            rate_limit_next=0,
            timeout_next=0,
            hang_seconds=30.0,
            drop_next_sends=0,
            landing_delay_blocks=0,
            rate_limit_rate=0.0,
            timeout_rate=0.0,
            drop_rate=0.0,
            expire_rate=0.0,
            priority_fee_level=0,
            refuse_methods=(),
        )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                key: list(value) if isinstance(value := getattr(self, key), tuple) else value
                for key in self.FIELDS
            }

    def refuses(self, method: str) -> bool:
        return method in self.refuse_methods

    def _take(self, counter: str | None, rate: str) -> bool:
        with self._lock:
            left = int(getattr(self, counter)) if counter else 0
            if counter and left > 0:
                setattr(self, counter, left - 1)
                return True
            chance = float(getattr(self, rate))
            return chance > 0 and self._random.random() < chance

    def take_rate_limit(self) -> bool:
        return self._take("rate_limit_next", "rate_limit_rate")

    def take_timeout(self) -> bool:
        return self._take("timeout_next", "timeout_rate")

    def take_drop(self) -> bool:
        return self._take("drop_next_sends", "drop_rate")

    def take_expire(self) -> bool:
        return self._take(None, "expire_rate")


def _present(account: Account) -> Account | None:
    """An account as getAccountInfo shows it: LiteSVM's 0-lamport account is no account."""
    return account if account.lamports > 0 else None


def _method_names(value: Any) -> tuple[str, ...]:
    """`refuse_methods` as a list of names, or one comma-separated string."""
    names = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) for n in names):
        raise ValueError("refuse_methods is a list of JSON-RPC method names")
    return tuple(n.strip() for n in names if n.strip())


@dataclass
class Outcome:
    """What running a transaction did (or would do): the validator's view of it."""

    err: TransactionErrorType | None
    logs: list[str]
    units: int
    fee: int
    landed: bool  # False: a real validator would not include it (no status, no fee)
    accounts: list[Account | None] = field(default_factory=list)  # simulate's post-state
    inner: list[InnerGroup] = field(default_factory=list)  # the CPIs, by top-level instruction
    loaded_size: int | None = None  # the bytes of account data it loaded (simulations)


@dataclass(frozen=True)
class InnerCall:
    """One CPI as LiteSVM's metadata records it: indexes into the transaction's full account
    list (static keys, then the lookup tables' writable and readonly ones)."""

    program_id_index: int
    accounts: list[int]
    data: bytes
    stack_height: int | None


InnerGroup = tuple[int, list[InnerCall]]  # (top-level instruction index, its CPIs in order)


@dataclass(frozen=True)
class Loaded:
    """The addresses a v0 message loads from its lookup tables (meta.loadedAddresses)."""

    writable: list[Pubkey] = field(default_factory=list)
    readonly: list[Pubkey] = field(default_factory=list)


NO_LOOKUPS = Loaded()


def inner_groups(groups: Sequence[Sequence[InnerInstruction]]) -> list[InnerGroup]:
    """LiteSVM's inner instructions (one list per top-level instruction) as the meta lists
    them: only instructions that made CPIs, with their index."""
    out: list[InnerGroup] = []
    for index, group in enumerate(groups):
        calls = []
        for inner in group:
            ix = inner.instruction()
            calls.append(
                InnerCall(
                    ix.program_id_index,
                    list(bytes(ix.accounts)),
                    bytes(ix.data),
                    inner.stack_height(),
                )
            )
        if calls:
            out.append((index, calls))
    return out


@dataclass(frozen=True)
class TokenBalance:
    """A token account named by a transaction, before or after it (a meta's token balances)."""

    account_index: int
    mint: Pubkey
    owner: Pubkey
    program_id: Pubkey
    amount: int
    decimals: int


@dataclass
class TxRecord:
    signature: Signature
    slot: int
    height: int
    err: TransactionErrorType | None
    logs: list[str]
    fee: int
    units: int
    transaction: VersionedTransaction | None
    pre_balances: list[int]
    post_balances: list[int]
    dex_instructions: list[dict[str, Any]]
    kind: str = "transaction"  # | "airdrop"
    pre_token_balances: list[TokenBalance] = field(default_factory=list)
    post_token_balances: list[TokenBalance] = field(default_factory=list)
    unit_price: int = 0  # micro-lamports per compute unit (SetComputeUnitPrice)
    writable: list[Pubkey] = field(default_factory=list)  # the accounts it write-locked
    # The written accounts right after it ran, for PubSub's processed-level notifications;
    # dropped once its block is finalized (nothing needs them after that).
    post_accounts: dict[Pubkey, Account | None] = field(default_factory=dict)
    loaded: Loaded = NO_LOOKUPS  # a v0 message's lookup-table addresses
    inner: list[InnerGroup] = field(default_factory=list)  # its CPIs (meta.innerInstructions)

    @property
    def account_keys(self) -> list[Pubkey]:
        """Every account the transaction named: its static keys, then the ones it loaded from
        lookup tables (writable, then readonly), the order instruction indexes count in."""
        if self.transaction is None:
            return []
        return full_keys(self.transaction.message, self.loaded)


@dataclass
class Block:
    """One slot's block. Transactions land in the newest (open) block; it is produced - and
    served by getBlock - once the next slot begins."""

    slot: int
    height: int
    parent_slot: int
    blockhash: Hash
    previous_blockhash: Hash
    time: int  # unix timestamp (see Ledger.slot_time)
    records: list[TxRecord] = field(default_factory=list)
    # Every account written in this slot with its state at the end of the slot, for PubSub's
    # confirmed/finalized notifications; dropped once the block is finalized.
    writes: dict[Pubkey, Account | None] = field(default_factory=dict)
    # Every account written in this slot with its state before the slot's first write to it:
    # what reads at an older slot see (`Ledger.view`). Dropped once the block is the root (no
    # read looks further back than the root).
    undo: dict[Pubkey, Account | None] = field(default_factory=dict)


class AccountView:
    """The accounts as of one slot: the newest state with every later block's writes undone
    (the state at the end of `slot`). How reads at a commitment see the chain."""

    def __init__(self, ledger: Ledger, slot: int, undone: dict[Pubkey, Account | None]) -> None:
        self.ledger = ledger
        self.slot = slot
        self._undone = undone

    def get(self, key: Pubkey) -> Account | None:
        if key in self._undone:
            return self._undone[key]
        return self.ledger.get_account(key)

    def balance(self, key: Pubkey) -> int:
        account = self.get(key)
        return account.lamports if account else 0

    def program_accounts(self, program: Pubkey) -> list[tuple[Pubkey, Account]]:
        """The accounts `program` owned at the slot (getProgramAccounts and the token reads)."""
        with self.ledger.lock:
            found = [
                (key, account)
                for key, account in self.ledger.svm.get_program_accounts(program)
                if key not in self._undone and account.lamports > 0
            ]
        found += [
            (key, account)
            for key, account in self._undone.items()
            if account is not None and account.owner == program and account.lamports > 0
        ]
        return found


class LedgerListener(Protocol):
    """Told, with the ledger's lock held, what happens on the chain (the PubSub server)."""

    def transaction_received(self, signature: Signature) -> None: ...

    def transaction_landed(self, record: TxRecord) -> None: ...

    def accounts_written(self, slot: int, writes: Mapping[Pubkey, Account | None]) -> None: ...

    def slot_advanced(
        self, block: Block, confirmed: Block | None, finalized: Block | None, root: int
    ) -> None: ...


class SendError(Exception):
    """A sendTransaction refused the way a real RPC refuses it (JSON-RPC error)."""

    def __init__(self, message: str, outcome: Outcome | None = None, code: int = -32002) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.outcome = outcome


def describe(err: TransactionErrorType) -> str:
    """The human part of a preflight failure message, in agave's words (its TransactionError
    Display: "Error processing Instruction 0: custom program error: 0x1", "Attempt to debit an
    account but found no record of a prior credit.")."""
    return errors.describe(error_to_json(err))


def _compute_budget(instructions: Sequence[Instruction]) -> tuple[int, int]:
    """(unit limit, unit price in micro-lamports) the way the runtime reads them."""
    limit: int | None = None
    price = 0
    others = 0
    for ix in instructions:
        if ix.program_id != COMPUTE_BUDGET_ID:
            others += 1
            continue
        data = bytes(ix.data)
        if data[:1] == b"\x02" and len(data) >= 5:
            limit = int.from_bytes(data[1:5], "little")
        elif data[:1] == b"\x03" and len(data) >= 9:
            price = int.from_bytes(data[1:9], "little")
    if limit is None:
        limit = DEFAULT_UNITS_PER_INSTRUCTION * others
    return min(limit, MAX_COMPUTE_UNITS), price


def writable_keys(
    message: Message | MessageV0 | MessageV1, loaded: Loaded = NO_LOOKUPS
) -> list[Pubkey]:
    """The account keys the message write-locks: static ones from its header, then the
    writable ones it loaded from lookup tables."""
    keys = list(message.account_keys)
    header = message.header
    signed = header.num_required_signatures
    writable_signed = signed - header.num_readonly_signed_accounts
    writable_unsigned = len(keys) - header.num_readonly_unsigned_accounts
    static = [
        k for i, k in enumerate(keys) if i < writable_signed or signed <= i < writable_unsigned
    ]
    return static + list(loaded.writable)


def full_keys(
    message: Message | MessageV0 | MessageV1, loaded: Loaded = NO_LOOKUPS
) -> list[Pubkey]:
    """The static keys, then the loaded writable and readonly ones (how indexes count)."""
    return [*message.account_keys, *loaded.writable, *loaded.readonly]


def confirmed_lag_setting() -> int:
    """LOCAL_CHAIN_CONFIRMED_LAG (default 1): how many blocks `confirmed` trails `processed`."""
    raw = os.environ.get(CONFIRMED_LAG_ENV, "")
    try:
        value = int(raw) if raw else CONFIRMED_LAG_BLOCKS
    except ValueError:
        raise ValueError(
            f"{CONFIRMED_LAG_ENV} must be a whole number of blocks, not {raw!r}"
        ) from None
    if not 0 <= value < FINALIZE_AFTER_BLOCKS - 1:
        raise ValueError(f"{CONFIRMED_LAG_ENV} must be from 0 to {FINALIZE_AFTER_BLOCKS - 2}")
    return value


def history_slots_setting() -> int:
    """LOCAL_CHAIN_HISTORY_SLOTS (default 10,000): how many recent slots the RPC remembers."""
    raw = os.environ.get(HISTORY_SLOTS_ENV, "")
    try:
        value = int(raw) if raw else HISTORY_SLOTS
    except ValueError:
        raise ValueError(
            f"{HISTORY_SLOTS_ENV} must be a whole number of slots, not {raw!r}"
        ) from None
    if value < 1:
        raise ValueError(f"{HISTORY_SLOTS_ENV} must be at least 1")
    return value


def _decompile(
    message: Message | MessageV0 | MessageV1, loaded: Loaded | None = None
) -> list[Instruction]:
    """The message's instructions with full account metas. Accounts from lookup tables come
    from `loaded`; without it (the fee of a message alone) they read as the default key."""
    static = list(message.account_keys)
    loaded = loaded or NO_LOOKUPS
    keys = full_keys(message, loaded)
    header = message.header
    signed = header.num_required_signatures

    def writable(i: int) -> bool:
        # From the header, which legacy and v0 messages share (legacy Message has no helper).
        if i < signed:
            return i < signed - header.num_readonly_signed_accounts
        if i < len(static):
            return i < len(static) - header.num_readonly_unsigned_accounts
        return i < len(static) + len(loaded.writable)

    def key(i: int) -> Pubkey:
        return keys[i] if i < len(keys) else Pubkey.default()

    out = []
    for ix in message.instructions:
        metas = [AccountMeta(key(i), i < signed, writable(i)) for i in bytes(ix.accounts)]
        out.append(Instruction(key(ix.program_id_index), bytes(ix.data), metas))
    return out


MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


def _memos(tx: VersionedTransaction | None) -> list[str]:
    if tx is None:
        return []
    return [
        ix.data.decode(errors="replace")
        for ix in _decompile(tx.message)
        if ix.program_id == MEMO_PROGRAM_ID
    ]


class Ledger:
    """LiteSVM with the real DEX programs, plus blocks, statuses and the clock. Thread-safe."""

    def __init__(self, history_slots: int | None = None, confirmed_lag: int | None = None) -> None:
        self.lock = threading.RLock()
        # A landed transaction's depth (blocks above its own, the open one included) at which
        # its block is confirmed: its block is produced (1) and `confirmed_lag` more are.
        lag = confirmed_lag if confirmed_lag is not None else confirmed_lag_setting()
        self.confirm_depth = 1 + lag
        # Blockhash check OFF: LiteSVM only knows its newest blockhash; we keep the 150-block
        # window ourselves. History 0: we detect duplicates ourselves (and simulations, rolled
        # back, must not make the transaction a duplicate).
        self.svm = (
            LiteSVM().with_blockhash_check(False).with_sigverify(True).with_transaction_history(0)
        )
        # The real DEX programs at their mainnet ids (their instructions are listed apart in
        # the transaction log).
        self.binaries = binaries.cached()
        binaries.load(self.svm, self.binaries)
        self.programs: frozenset[Pubkey] = frozenset(b.pin.program_id for b in self.binaries)
        self.faults = Faults()
        self.height = GENESIS_HEIGHT
        self.slot = GENESIS_HEIGHT
        self.genesis_time = int(time.time())
        self.svm.set_epoch_schedule(EpochSchedule.without_warmup())
        self._set_clock()
        self.blockhashes: dict[Hash, int] = {}
        self.records: dict[Signature, TxRecord] = {}
        self.log: list[TxRecord] = []
        self.delayed: list[tuple[int, VersionedTransaction]] = []
        self.history_slots = history_slots if history_slots is not None else history_slots_setting()
        self.blocks: dict[int, Block] = {}  # slot -> block, oldest first
        self._slot_at_height: dict[int, int] = {}
        # The blocks above the root, oldest first, whatever the history keeps: their `undo`
        # is what reads at confirmed and finalized take back (`view`).
        self._unrooted: deque[Block] = deque()
        self._by_address: dict[Pubkey, deque[Signature]] = {}
        self.transaction_count = 0  # landed without error since genesis (getEpochInfo)
        self.listeners: list[LedgerListener] = []
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._create_mint(WSOL_MINT, decimals=9)
        self.svm.set_account(
            FAUCET_KEYPAIR.pubkey(), Account(FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID, False, 0)
        )
        # The genesis block, slot 0: produced (and finalized) from the start, so every
        # commitment names a block that exists, as on a validator. Its blockhash is one LiteSVM
        # issued (LiteSVM accepts only its own), valid for 150 blocks like any other.
        self.svm.expire_blockhash()
        first = self.svm.latest_blockhash()
        self.blocks[0] = Block(0, 0, 0, first, Hash.default(), self.slot_time(0))
        self._slot_at_height[0] = 0
        # The SlotHashes sysvar (LiteSVM leaves it alone): the produced blocks, newest first,
        # which the lookup-table program checks a new table's recent slot against.
        self._slot_hashes: deque[tuple[int, Hash]] = deque(maxlen=SLOT_HASHES_KEPT)
        self._slot_hashes_written = 0  # how many of them the sysvar holds (see _sync_slot_hashes)
        self._record_slot_hash(self.blocks[0])
        self.blockhashes[first] = BLOCKHASH_VALID_BLOCKS
        self._issue_blockhash()
        self._open_block(parent_slot=0, previous=first)

    # ------------------------------------------------------------------------------ accounts
    def _create_mint(self, mint: Pubkey, decimals: int) -> None:
        data = bytearray(82)
        data[44] = decimals
        data[45] = 1  # is_initialized; no mint authority, no freeze authority
        lamports = self.svm.minimum_balance_for_rent_exemption(82)
        self.svm.set_account(mint, Account(lamports, bytes(data), TOKEN_PROGRAM_ID, False, 0))

    def get_account(self, key: Pubkey) -> Account | None:
        with self.lock:
            account = self.svm.get_account(key)
            return account if account is not None and account.lamports > 0 else None

    def set_account(self, key: Pubkey, account: Account) -> None:
        """Write an account out of band (seeding, tests); PubSub subscribers see the write."""
        with self.lock:
            self.blocks[self.slot].undo.setdefault(key, self.get_account(key))
            self.svm.set_account(key, account)
            state = self.get_account(key)
            self.blocks[self.slot].writes[key] = state
            self._tell("accounts_written", self.slot, {key: state})

    def balance(self, key: Pubkey) -> int:
        account = self.get_account(key)
        return account.lamports if account else 0

    def rent_exempt_minimum(self, size: int) -> int:
        with self.lock:
            return self.svm.minimum_balance_for_rent_exemption(size)

    def airdrop(self, key: Pubkey, lamports: int) -> Signature:
        """requestAirdrop: a System transfer from the faucet, landed now (a real transaction, so
        getTransaction, getSignaturesForAddress and subscriptions see it)."""
        with self.lock:
            faucet = FAUCET_KEYPAIR.pubkey()
            instructions = [
                transfer(TransferParams(from_pubkey=faucet, to_pubkey=key, lamports=lamports))
            ]
            tx = self._faucet_transaction(instructions)
            # The same airdrop twice in one slot would be the same signature (a duplicate):
            # a compute-unit limit that differs makes it a different transaction.
            bump = 0
            while tx.signatures[0] in self.records:
                bump += 1
                limit = (DEFAULT_UNITS_PER_INSTRUCTION - bump).to_bytes(4, "little")
                budget = Instruction(COMPUTE_BUDGET_ID, b"\x02" + limit, [])
                tx = self._faucet_transaction([budget, *instructions])
            outcome = self.simulate(tx, sig_verify=True)
            if outcome.err is not None:
                # A validator's faucet failure is a bare internal error; the reason is logged.
                log.info("airdrop to %s failed: %s", key, describe(outcome.err))
                raise SendError("Internal error", code=-32603)
            self._land(tx, kind="airdrop")
            return tx.signatures[0]

    def _faucet_transaction(self, instructions: list[Instruction]) -> VersionedTransaction:
        message = Message.new_with_blockhash(
            instructions, FAUCET_KEYPAIR.pubkey(), self.svm.latest_blockhash()
        )
        return VersionedTransaction(message, [FAUCET_KEYPAIR])

    def faucets(self) -> list[Pubkey]:
        """Accounts holding the chain's undistributed lamports (getSupply's non-circulating)."""
        return [FAUCET_KEYPAIR.pubkey(), self.svm.airdrop_pubkey()]

    # ------------------------------------------------------------------------------ clock
    def _set_clock(self) -> None:
        """The Clock sysvar for the current slot (LiteSVM's warp only moves the slot)."""
        epoch = self.slot // SLOTS_PER_EPOCH
        now = self.slot_time(self.slot)
        epoch_start = now - (self.slot - epoch * SLOTS_PER_EPOCH) * MS_PER_SLOT // 1000
        self.svm.set_clock(
            Clock(
                slot=self.slot,
                epoch_start_timestamp=epoch_start,
                epoch=epoch,
                leader_schedule_epoch=epoch + 1,
                unix_timestamp=now,
            )
        )

    def clock(self) -> Clock:
        with self.lock:
            return self.svm.get_clock()

    def shift_time(self, seconds: int) -> None:
        """Move the cluster's wall clock by `seconds` (as if the chain had started that much
        earlier or later): how tests reach an open time or a fee scheduler's next period
        without producing thousands of blocks."""
        with self.lock:
            self.genesis_time += seconds
            self._set_clock()

    def warp_slots(self, slots: int) -> int:
        """Produce the next block `slots` slots ahead (the slots between are skipped, as slots
        without a leader's block are; time follows at 400 ms a slot): how tests reach a later
        epoch (a Token-2022 mint's newer transfer fee) or a slot-based activation point without
        producing every block. Returns the new block height."""
        with self.lock:
            self._next_block(max(slots, 1))
            return self.height

    # ------------------------------------------------------------------------------ blocks
    def _issue_blockhash(self) -> None:
        self.svm.expire_blockhash()
        self.blockhashes[self.svm.latest_blockhash()] = self.height + BLOCKHASH_VALID_BLOCKS
        # Forget hashes long expired so the map stays small on a long-running stack.
        horizon = self.height - 2 * BLOCKHASH_VALID_BLOCKS
        for old in [h for h, valid in self.blockhashes.items() if valid < horizon]:
            del self.blockhashes[old]

    def advance(self, blocks: int = 1) -> int:
        """Produce `blocks` blocks; returns the new block height."""
        with self.lock:
            for _ in range(blocks):
                self._next_block(1)
            return self.height

    def _record_slot_hash(self, produced: Block) -> None:
        self._slot_hashes.appendleft((produced.slot, produced.blockhash))

    def _sync_slot_hashes(self, tx: VersionedTransaction) -> None:
        """Write the SlotHashes sysvar before a transaction that needs it: one naming the
        lookup-table program or loading addresses from a table. Writing its 512 entries at
        every block would make a block cost five times what it does."""
        message = tx.message
        needs = ADDRESS_LOOKUP_TABLE_ID in message.account_keys or (
            isinstance(message, MessageV0) and bool(message.address_table_lookups)
        )
        if needs and self._slot_hashes_written != self.height:
            self.svm.set_slot_hashes(list(self._slot_hashes))
            self._slot_hashes_written = self.height

    def _next_block(self, slots: int) -> None:
        """Open the next block, `slots` slots after the current one."""
        previous = self.blocks[self.slot]
        self._record_slot_hash(previous)
        self.height += 1
        self.slot += slots
        self.svm.warp_to_slot(self.slot)
        self._set_clock()
        self._issue_blockhash()
        block = self._open_block(parent_slot=previous.slot, previous=previous.blockhash)
        self._forget_old_slots()
        confirmed = self.block_at_height(self.height - self.confirm_depth)
        finalized = self.block_at_height(self.height - FINALIZE_AFTER_BLOCKS)
        self._tell("slot_advanced", block, confirmed, finalized, self.root_slot)
        while self._unrooted and self._unrooted[0].height <= self.height - FINALIZE_AFTER_BLOCKS:
            self._unrooted.popleft().undo = {}  # rooted: no read looks further back
        if finalized is not None:
            finalized.writes = {}
            for record in finalized.records:
                record.post_accounts = {}
        due = [tx for at, tx in self.delayed if at <= self.height]
        self.delayed = [(at, tx) for at, tx in self.delayed if at > self.height]
        for tx in due:
            self._land(tx)

    def _open_block(self, parent_slot: int, previous: Hash) -> Block:
        block = Block(
            slot=self.slot,
            height=self.height,
            parent_slot=parent_slot,
            blockhash=self.svm.latest_blockhash(),
            previous_blockhash=previous,
            time=self.slot_time(self.slot),
        )
        self.blocks[self.slot] = block
        self._slot_at_height[self.height] = self.slot
        self._unrooted.append(block)
        return block

    def _forget_old_slots(self) -> None:
        """Keep the last `history_slots` slots of blocks, transactions and signatures."""
        while len(self.blocks) > self.history_slots:
            slot = next(iter(self.blocks))
            old = self.blocks.pop(slot)
            self._slot_at_height.pop(old.height, None)
            for record in old.records:
                self.records.pop(record.signature, None)
                for key in record.account_keys:
                    signatures = self._by_address.get(key)
                    while signatures and signatures[0] not in self.records:
                        signatures.popleft()
                    if not signatures:
                        self._by_address.pop(key, None)

    def block_at_height(self, height: int) -> Block | None:
        slot = self._slot_at_height.get(height)
        return self.blocks.get(slot) if slot is not None else None

    @property
    def root_slot(self) -> int:
        """The newest finalized (rooted) slot; 0 (genesis) until a block is 32 deep."""
        rooted = self.block_at_height(self.height - FINALIZE_AFTER_BLOCKS)
        return rooted.slot if rooted is not None else 0

    @property
    def confirmed_slot(self) -> int:
        """The newest confirmed slot: `confirmed_lag` blocks below the newest produced one (the
        block whose transactions the statuses call confirmed)."""
        confirmed = self.block_at_height(self.height - self.confirm_depth)
        return confirmed.slot if confirmed is not None else 0

    @property
    def processed_slot(self) -> int:
        """The newest produced block (the open slot is still filling)."""
        return self.blocks[self.slot].parent_slot

    def commitment_slot(self, commitment: str) -> int:
        """The slot a read at `commitment` sees: processed = the newest produced block,
        confirmed = `confirmed_slot`, finalized = the root."""
        with self.lock:
            if commitment == "processed":
                return self.processed_slot
            if commitment == "confirmed":
                return min(self.confirmed_slot, self.processed_slot)
            return self.root_slot

    def settle_genesis(self) -> None:
        """Count every account written so far as genesis state, seen at every commitment (as a
        test validator's `--account`s are): the seed calls it once its accounts and pools are
        written, so reads at `finalized` see them before 32 blocks have passed."""
        with self.lock:
            for block in self.blocks.values():
                block.undo = {}

    def view(self, commitment: str | None = None) -> AccountView:
        """The accounts as a read at `commitment` sees them: `confirmed` and `finalized` as of
        their slot; `processed` (and None, how simulations run) the newest state, the open
        block's transactions included, as a validator's working bank is: a transaction whose
        status says processed shows in processed reads. The view's slot is then the open one."""
        with self.lock:
            if commitment in (None, "processed"):
                return AccountView(self, self.slot, {})
            slot = self.commitment_slot(commitment)
            undone: dict[Pubkey, Account | None] = {}
            for block in reversed(self._unrooted):
                if block.slot <= slot:
                    break
                undone.update(block.undo)  # newest first: an older block's "before" wins
            return AccountView(self, slot, undone)

    @property
    def first_available_slot(self) -> int:
        return next(iter(self.blocks))

    # ------------------------------------------------------------------------------ time
    def slot_time(self, slot: int) -> int:
        """The unix timestamp of `slot`: the genesis wall-clock time plus 400 ms per slot (moved
        by `shift_time`). The one place times come from: the Clock sysvar the programs read, and
        the block times of getBlockTime, getBlock, getTransaction, getSignaturesForAddress."""
        return self.genesis_time + (slot - GENESIS_HEIGHT) * MS_PER_SLOT // 1000

    def latest_blockhash(self) -> tuple[Hash, int]:
        with self.lock:
            blockhash = self.svm.latest_blockhash()
            return blockhash, self.blockhashes[blockhash]

    def blockhash_valid(self, blockhash: Hash) -> bool:
        with self.lock:
            valid = self.blockhashes.get(blockhash)
            return valid is not None and valid >= self.height

    def start_ticker(self, interval: float = 0.4) -> None:
        """Produce a block every `interval` seconds in a daemon thread (the running stack)."""
        with self.lock:
            if self._ticker is not None:
                return
            self._stop.clear()
            self._ticker = threading.Thread(
                target=self._tick, args=(interval,), name="local-chain-ticker", daemon=True
            )
            self._ticker.start()

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.advance(1)

    def stop(self) -> None:
        ticker = self._ticker
        self._stop.set()
        if ticker is not None:
            ticker.join(timeout=5)
        self._ticker = None

    # ------------------------------------------------------------------------------ listeners
    def _tell(self, event: str, *args: Any) -> None:
        for listener in list(self.listeners):
            try:
                getattr(listener, event)(*args)
            except Exception:  # a subscriber's bug must not stop the chain
                log.exception("ledger listener failed on %s", event)

    # ------------------------------------------------------------------------------ statuses
    def _record(self, record: TxRecord) -> None:
        self.records[record.signature] = record
        self.log.append(record)
        block = self.blocks[record.slot]
        block.records.append(record)
        block.writes.update(record.post_accounts)
        for key in dict.fromkeys(record.account_keys):
            self._by_address.setdefault(key, deque()).append(record.signature)
        if record.err is None:
            self.transaction_count += 1
        self._tell("transaction_landed", record)

    def signatures_for_address(
        self,
        address: Pubkey,
        *,
        before: Signature | None = None,
        until: Signature | None = None,
        limit: int = 1000,
    ) -> list[TxRecord]:
        """Landed transactions naming `address`, newest first (getSignaturesForAddress)."""
        with self.lock:
            found: list[TxRecord] = []
            started = before is None
            for sig in reversed(self._by_address.get(address, ())):
                if not started:
                    started = sig == before
                    continue
                if sig == until or len(found) >= limit:
                    break
                found.append(self.records[sig])
            return found

    def status(self, sig: Signature) -> tuple[TxRecord, int | None, str] | None:
        """(record, confirmations, "processed" | "confirmed" | "finalized") or None."""
        with self.lock:
            record = self.records.get(sig)
            if record is None:
                return None
            depth = self.height - record.height
            if depth >= FINALIZE_AFTER_BLOCKS:
                return record, None, "finalized"  # a real RPC reports null once rooted
            return record, depth, "confirmed" if depth >= self.confirm_depth else "processed"

    def txlog(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "signature": str(r.signature),
                    "slot": r.slot,
                    "kind": r.kind,
                    "err": error_to_json(r.err),
                    "fee": r.fee,
                    "feePayer": str(r.account_keys[0]) if r.account_keys else None,
                    "dexInstructions": r.dex_instructions,
                    # What each Memo instruction says: the engine's swaps carry their order id,
                    # so a test can count the swaps that landed for one order.
                    "memos": _memos(r.transaction),
                }
                for r in self.log
            ]

    # ------------------------------------------------------------------------------ fees
    def fee_for(self, message: Message | MessageV0 | MessageV1) -> int:
        limit, price = _compute_budget(_decompile(message))
        priority = math.ceil(limit * price / 1_000_000)
        return FEE_PER_SIGNATURE * message.header.num_required_signatures + priority

    def recent_prioritization_fees(self, accounts: Sequence[Pubkey]) -> list[tuple[int, int]]:
        """(slot, micro-lamports per CU) for each of the last 150 produced blocks, as a node's
        prioritization-fee cache answers: the lowest price any successful transaction in the
        block paid, raised to the lowest price paid by the transactions that write-locked each
        of `accounts` (the fee to land a transaction locking all of them), and never below the
        `priority_fee_level` fault (congestion)."""
        with self.lock:
            floor = self.faults.priority_fee_level
            produced = []
            for slot in reversed(self.blocks):  # newest first; stop after 150 produced ones
                if slot < self.slot:
                    produced.append(self.blocks[slot])
                if len(produced) == PRIORITY_FEE_SLOTS:
                    break
            out = []
            for block in reversed(produced):
                landed = [r for r in block.records if r.err is None and r.kind == "transaction"]
                fee = min((r.unit_price for r in landed), default=0)
                for key in accounts:
                    locking = [r.unit_price for r in landed if key in r.writable]
                    if locking:
                        fee = max(fee, min(locking))
                out.append((block.slot, max(fee, floor)))
            return out

    # ------------------------------------------------------------------------------ sending
    def send(self, tx: VersionedTransaction, *, skip_preflight: bool = False) -> Signature:
        """sendTransaction: preflight (unless skipped), then land it now or after a delay.

        Raises SendError (-32002) on a preflight failure, the way a real RPC does. With
        skip_preflight, a transaction that a validator would drop (unknown blockhash, bad
        signature, a duplicate) is accepted and silently never lands, also like a real RPC.
        """
        with self.lock:
            sig = tx.signatures[0]
            message = tx.message
            self._tell("transaction_received", sig)
            if sig in self.records:
                if skip_preflight:
                    return sig
                raise SendError(
                    "Transaction simulation failed: This transaction has already been processed",
                    Outcome(TransactionErrorFieldless.AlreadyProcessed, [], 0, 0, False),
                )
            if not self.blockhash_valid(message.recent_blockhash):
                if skip_preflight:
                    return sig
                raise SendError(
                    "Transaction simulation failed: Blockhash not found",
                    Outcome(TransactionErrorFieldless.BlockhashNotFound, [], 0, 0, False),
                )
            if not skip_preflight:
                outcome = self.simulate(tx, sig_verify=True)
                if outcome.err is not None:
                    raise SendError(
                        f"Transaction simulation failed: {describe(outcome.err)}", outcome
                    )
            if self.faults.take_drop():
                log.info("fault: dropping %s", sig)
                return sig
            if self.faults.take_expire():
                log.info("fault: dropping %s and jumping past its blockhash", sig)
                self.advance(BLOCKHASH_VALID_BLOCKS + 1)
                return sig
            delay = self.faults.landing_delay_blocks
            if delay > 0:
                self.delayed.append((self.height + delay, tx))
                return sig
            self._land(tx)
            return sig

    def land_now(self, tx: VersionedTransaction) -> TxRecord:
        """Preflight and land `tx` in the current block, whatever faults are injected: how the
        chain's own actors (the seed, the market maker) transact. Raises SendError when the
        preflight fails or the transaction is a duplicate or expired."""
        with self.lock:
            if tx.signatures[0] in self.records:
                raise SendError("This transaction has already been processed")
            if not self.blockhash_valid(tx.message.recent_blockhash):
                raise SendError("Blockhash not found")
            outcome = self.simulate(tx, sig_verify=True)
            if outcome.err is not None:
                raise SendError(f"Transaction simulation failed: {describe(outcome.err)}", outcome)
            self._tell("transaction_received", tx.signatures[0])
            self._land(tx)
            record = self.records.get(tx.signatures[0])
            if record is None:
                raise SendError("the transaction did not land")
            return record

    def _land(self, tx: VersionedTransaction, kind: str = "transaction") -> None:
        """Execute for real and record the status (unless a validator would drop it)."""
        sig = tx.signatures[0]
        if sig in self.records or not self.blockhash_valid(tx.message.recent_blockhash):
            return
        loaded = self.loaded_addresses(tx.message)
        keys = full_keys(tx.message, loaded)
        pre = [self.balance(k) for k in keys]
        pre_tokens = self._token_balances(keys)
        writable = writable_keys(tx.message, loaded)
        undo = self.blocks[self.slot].undo
        before = {k: self.get_account(k) for k in writable if k not in undo}
        outcome = self._execute(tx, sig_verify=True)
        if not outcome.landed:
            log.info("transaction %s dropped: %s", sig, outcome.err)
            return
        undo.update(before)
        self._record(
            TxRecord(
                sig,
                self.slot,
                self.height,
                outcome.err,
                outcome.logs,
                outcome.fee,
                outcome.units,
                tx,
                pre,
                [self.balance(k) for k in keys],
                self._dex_instructions(tx, loaded),
                kind=kind,
                pre_token_balances=pre_tokens,
                post_token_balances=self._token_balances(keys),
                unit_price=_compute_budget(_decompile(tx.message))[1],
                writable=writable,
                post_accounts={k: self.get_account(k) for k in writable},
                loaded=loaded,
                inner=outcome.inner,
            )
        )

    def _token_balances(self, keys: Sequence[Pubkey]) -> list[TokenBalance]:
        """The initialized SPL Token / Token-2022 accounts among `keys`, as a meta lists them."""
        found = []
        for index, key in enumerate(keys):
            account = self.get_account(key)
            if account is None or account.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
                continue
            data = bytes(account.data)
            is_account = len(data) == 165 or (len(data) > 165 and data[165] == 2)
            if not is_account or data[108] == 0:
                continue
            mint = Pubkey.from_bytes(data[0:32])
            mint_account = self.get_account(mint)
            if mint_account is None or len(mint_account.data) < 82:
                continue
            found.append(
                TokenBalance(
                    index,
                    mint,
                    Pubkey.from_bytes(data[32:64]),
                    account.owner,
                    int.from_bytes(data[64:72], "little"),
                    bytes(mint_account.data)[44],
                )
            )
        return found

    def _dex_instructions(self, tx: VersionedTransaction, loaded: Loaded) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "programId": str(ix.program_id),
                "accounts": [str(m.pubkey) for m in ix.accounts],
                "data": bytes(ix.data).hex(),
            }
            for i, ix in enumerate(_decompile(tx.message, loaded))
            if ix.program_id in self.programs
        ]

    def simulate(
        self,
        tx: VersionedTransaction,
        *,
        sig_verify: bool = False,
        addresses: Sequence[Pubkey] = (),
    ) -> Outcome:
        """Run the transaction without keeping anything it did (simulateTransaction and
        preflight). `addresses`' post-execution accounts are returned in `accounts`."""
        with self.lock:
            self._check_version(tx)
            self.svm.with_sigverify(sig_verify)
            try:
                self._sync_slot_hashes(tx)
                result = self.svm.simulate_transaction(tx)
            finally:
                self.svm.with_sigverify(True)
            loaded_size = self.loaded_data_size(tx.message)
            if isinstance(result, FailedTransactionMetadata):
                outcome = self._failed(result)
                outcome.loaded_size = loaded_size
                return outcome
            meta = result.meta()
            post = {key: account for key, account in result.post_accounts()}
            outcome = Outcome(
                None,
                list(meta.logs()),
                meta.compute_units_consumed(),
                meta.fee(),
                True,
                inner=inner_groups(meta.inner_instructions()),
                loaded_size=loaded_size,
            )
            outcome.accounts = [
                _present(post[a]) if a in post else self.get_account(a) for a in addresses
            ]
            return outcome

    def loaded_addresses(self, message: Message | MessageV0 | MessageV1) -> Loaded:
        """The addresses a v0 message loads from its lookup tables, resolved against the
        tables as they are now (only addresses extended before the current slot are active).
        A lookup that cannot resolve loads nothing here: LiteSVM refuses the transaction with
        the runtime's own error."""
        if not isinstance(message, MessageV0) or not message.address_table_lookups:
            return NO_LOOKUPS
        writable: list[Pubkey] = []
        readonly: list[Pubkey] = []
        with self.lock:
            for lookup in message.address_table_lookups:
                account = self.get_account(lookup.account_key)
                if account is None or account.owner != ADDRESS_LOOKUP_TABLE_ID:
                    return NO_LOOKUPS
                try:
                    table = AddressLookupTable.deserialize(bytes(account.data))
                    slot_hashes = SlotHashes(list(self._slot_hashes))
                    active = table.get_active_addresses_len(self.slot, slot_hashes)
                except Exception:  # not a table, or a deactivated one: the runtime says which
                    return NO_LOOKUPS
                addresses = list(table.addresses)[:active]
                for indexes, into in (
                    (lookup.writable_indexes, writable),
                    (lookup.readonly_indexes, readonly),
                ):
                    for index in bytes(indexes):
                        if index >= len(addresses):
                            return NO_LOOKUPS
                        into.append(addresses[index])
        return Loaded(writable, readonly)

    def loaded_data_size(self, message: Message | MessageV0 | MessageV1) -> int:
        """What agave reports as `loadedAccountsDataSize`: the data bytes of every account the
        transaction loads (its static keys and the lookup tables' addresses), as they are now.
        LiteSVM does not report it; the loaders' own accounts, which agave also counts for
        each program's owner, are left out."""
        with self.lock:
            return sum(
                len(account.data)
                for key in dict.fromkeys(full_keys(message, self.loaded_addresses(message)))
                if (account := self.get_account(key)) is not None
            )

    @staticmethod
    def _check_version(tx: VersionedTransaction) -> None:
        if isinstance(tx.message, MessageV1):
            raise SendError("transaction version 1 is not supported here", code=-32602)

    @staticmethod
    def _failed(result: FailedTransactionMetadata) -> Outcome:
        meta = result.meta()
        err = result.err()
        return Outcome(
            err,
            list(meta.logs()),
            meta.compute_units_consumed(),
            meta.fee(),
            err not in _NOT_LANDING,
            inner=inner_groups(meta.inner_instructions()),
        )

    def _execute(self, tx: VersionedTransaction, *, sig_verify: bool) -> Outcome:
        """LiteSVM runs the transaction as it is, the DEX programs' instructions included (its
        fees are a validator's: 5000 per signature plus the priority fee)."""
        self._check_version(tx)
        self.svm.with_sigverify(sig_verify)
        try:
            self._sync_slot_hashes(tx)
            result = self.svm.send_transaction(tx)
        finally:
            self.svm.with_sigverify(True)
        if isinstance(result, FailedTransactionMetadata):
            return self._failed(result)
        return Outcome(
            None,
            list(result.logs()),
            result.compute_units_consumed(),
            result.fee(),
            True,
            inner=inner_groups(result.inner_instructions()),
        )
