"""Solana over JSON-RPC (solana-py AsyncClient): the few calls the executor makes, with every
failure sorted into transient (retry) or permanent (fail the order now)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts, TxOpts
from solders.account import Account
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.errors import KeyExcludedFromSecondaryIndexMessage, MethodNotFoundMessage
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from engine.errors import (
    AlreadyProcessed,
    ChainError,
    InternalError,
    PermanentChainError,
    RpcMethodRefused,
    TransientChainError,
)
from engine.observability import async_span

RPC_TIMEOUT_SECONDS = 5.0
RPC_RETRIES = 2  # in-place retries of one call before the order's attempt is given up
RPC_BACKOFF_SECONDS = 0.1
MAX_FEE_ACCOUNTS = 128  # getRecentPrioritizationFees takes at most 128 addresses
# HTTP answers a provider gives a method it does not serve on this plan or endpoint.
REFUSING_HTTP_STATUSES = frozenset({401, 403, 405, 410})
_REFUSING_WORDING = re.compile(r"not (available|allowed|supported|enabled)|disabled", re.I)
T = TypeVar("T")


@dataclass(frozen=True)
class SignatureInfo:
    """One entry of getSignaturesForAddress: a landed transaction naming the address."""

    signature: Signature
    slot: int
    failed: bool


@dataclass(frozen=True)
class LandedTransaction:
    """A landed transaction as getTransaction returns it: its slot, the transaction, and every
    account key its instructions index (the static keys, then those loaded from lookup tables,
    writable first, as the runtime orders them)."""

    slot: int
    transaction: VersionedTransaction
    keys: list[Pubkey]
    failed: bool


@dataclass(frozen=True)
class Landed:
    slot: int
    confirmation: str  # "processed" | "confirmed" | "finalized"
    err: Any  # None when the transaction succeeded

    @property
    def confirmed(self) -> bool:
        return self.confirmation in ("confirmed", "finalized")


def _classify(exc: BaseException, doing: str) -> ChainError:
    cause = exc.__cause__ if isinstance(exc, SolanaRpcException) else exc
    if isinstance(cause, httpx2.HTTPStatusError) and cause.response.status_code == 429:
        return TransientChainError(f"RPC rate limited while {doing}", "rpc_rate_limited")
    if isinstance(cause, httpx2.TimeoutException):
        return TransientChainError(f"RPC timed out while {doing}", "rpc_timeout")
    if isinstance(cause, httpx2.HTTPError):
        return TransientChainError(
            f"RPC unavailable while {doing} ({type(cause).__name__})", "rpc_unavailable"
        )
    return TransientChainError(f"RPC error while {doing} ({type(exc).__name__})", "rpc_error")


def error_json(err: Any) -> Any:
    """A transaction error in the RPC's JSON form, e.g. {"InstructionError":[3,{"Custom":6005}]}.

    (solders' error classes' own to_json is not that form; a simulate result serialises it.)"""
    if err is None or isinstance(err, dict | str):
        return err
    from solders.rpc.responses import RpcSimulateTransactionResult

    result = RpcSimulateTransactionResult(err=err, logs=None, accounts=None, units_consumed=None)
    return json.loads(result.to_json())["err"]


class Chain:
    """One RPC endpoint. Create it inside the event loop that uses it."""

    def __init__(self, url: str, client: AsyncClient | None = None) -> None:
        self.url = url
        self.client = client or AsyncClient(url, commitment=Confirmed, timeout=RPC_TIMEOUT_SECONDS)

    async def close(self) -> None:
        await self.client.close()

    async def _rpc(self, doing: str, call: Callable[[], Awaitable[T]]) -> T:
        """One RPC call, retried in place on a 429, a timeout or a dropped connection (with a
        short exponential backoff), so a brief hiccup does not cost the order a whole attempt.
        What still fails is raised as a TransientChainError for the queue's slower retry."""
        attempt = 0
        while True:
            try:
                async with async_span(f"rpc {doing}"):
                    return await call()
            except (SolanaRpcException, RPCException, httpx2.HTTPError) as exc:
                if attempt == RPC_RETRIES:
                    raise _classify(exc, doing) from exc
                await asyncio.sleep(RPC_BACKOFF_SECONDS * 2**attempt)
                attempt += 1

    async def accounts(self, keys: Sequence[Pubkey]) -> dict[Pubkey, Account | None]:
        """Every account in ONE getMultipleAccounts call (the RPC allows 100 keys)."""
        if len(keys) > 100:
            raise InternalError("getMultipleAccounts takes at most 100 keys")
        resp = await self._rpc(
            "reading pools",
            lambda: self.client.get_multiple_accounts(list(keys), commitment=Confirmed),
        )
        return dict(zip(keys, resp.value, strict=True))

    async def program_accounts(
        self, program: Pubkey, *, data_size: int, memcmp: Sequence[tuple[int, Pubkey]]
    ) -> list[tuple[Pubkey, Account]]:
        """getProgramAccounts of `program` with a `dataSize` filter and a `memcmp` filter per
        (offset, key) pair (the node applies them all, so only matching accounts travel).

        Raises RpcMethodRefused when the endpoint does not serve the method (many providers
        restrict it): asking again cannot help, so that is not retried. Rate limits, timeouts
        and outages are retried in place like every call, then raised as TransientChainError."""
        filters: list[int | MemcmpOpts] = [data_size]
        filters += [MemcmpOpts(offset=offset, bytes=str(key)) for offset, key in memcmp]

        async def call() -> list[tuple[Pubkey, Account]]:
            try:
                resp = await self.client.get_program_accounts(
                    program, commitment=Confirmed, encoding="base64", filters=filters
                )
            except RPCException as exc:
                refused = _refusal(exc)
                if refused is not None:
                    raise RpcMethodRefused(
                        f"the RPC endpoint refuses getProgramAccounts: {refused}"
                    ) from exc
                raise
            except SolanaRpcException as exc:
                cause = exc.__cause__
                if isinstance(cause, httpx2.HTTPStatusError):
                    status = cause.response.status_code
                    if status in REFUSING_HTTP_STATUSES:
                        raise RpcMethodRefused(
                            f"the RPC endpoint refuses getProgramAccounts: HTTP {status}"
                        ) from exc
                raise
            return [(keyed.pubkey, keyed.account) for keyed in resp.value]

        return await self._rpc("finding pools", call)

    async def signatures(
        self,
        address: Pubkey,
        *,
        before: Signature | None = None,
        until: Signature | None = None,
        limit: int = 1000,
    ) -> list[SignatureInfo]:
        """getSignaturesForAddress, newest first: at most `limit` (1000) landed transactions
        naming `address`, older than `before`, back to (not including) `until`."""
        resp = await self._rpc(
            "reading signatures",
            lambda: self.client.get_signatures_for_address(
                address, before=before, until=until, limit=limit, commitment=Confirmed
            ),
        )
        return [SignatureInfo(s.signature, s.slot, s.err is not None) for s in resp.value]

    async def transaction(self, signature: Signature) -> LandedTransaction | None:
        """getTransaction (base64, v0 allowed); None when the node has no such transaction."""
        resp = await self._rpc(
            "reading a transaction",
            lambda: self.client.get_transaction(
                signature,
                encoding="base64",
                commitment=Confirmed,
                max_supported_transaction_version=0,
            ),
        )
        found = resp.value
        if found is None or not isinstance(found.transaction.transaction, VersionedTransaction):
            return None
        tx = found.transaction.transaction
        meta = found.transaction.meta
        keys = list(tx.message.account_keys)
        loaded = meta.loaded_addresses if meta is not None else None
        if loaded is not None:
            keys += [Pubkey.from_string(str(k)) for k in (*loaded.writable, *loaded.readonly)]
        failed = meta is not None and meta.err is not None
        return LandedTransaction(found.slot, tx, keys, failed)

    async def latest_blockhash(self) -> tuple[Hash, int]:
        resp = await self._rpc(
            "fetching a blockhash", lambda: self.client.get_latest_blockhash(commitment=Confirmed)
        )
        return resp.value.blockhash, resp.value.last_valid_block_height

    async def finalized_slot(self) -> int:
        """The newest rooted slot: one the SlotHashes sysvar holds (a lookup table's
        creation names it)."""
        resp = await self._rpc(
            "reading the finalized slot", lambda: self.client.get_slot(commitment=Finalized)
        )
        return resp.value

    async def block_height(self) -> int:
        resp = await self._rpc(
            "reading the block height", lambda: self.client.get_block_height(commitment=Confirmed)
        )
        return resp.value

    async def send(self, raw_tx: bytes) -> None:
        """Send signed bytes (maxRetries 0: we rebroadcast ourselves), with preflight.

        A preflight failure that is the transaction's own fault is permanent; an expired blockhash
        or an already-processed signature is reported as such so the caller can look it up.
        Resending the same bytes is always safe: one signature lands at most once.
        """
        opts = TxOpts(skip_preflight=False, preflight_commitment=Confirmed, max_retries=0)

        async def send_once() -> None:
            try:
                await self.client.send_raw_transaction(raw_tx, opts=opts)
            except RPCException as exc:  # the node answered: its verdict is not retried here
                raise classify_send_error(exc, instruction_program_ids(raw_tx)) from exc

        await self._rpc("sending the transaction", send_once)

    async def status(self, signature: Signature) -> Landed | None:
        resp = await self._rpc(
            "reading the transaction status",
            lambda: self.client.get_signature_statuses(
                [signature], search_transaction_history=True
            ),
        )
        # The wire JSON, not solders' objects: its `err` is the RPC's own form
        # ({"InstructionError":[3,{"Custom":6005}]}), which the error classifier reads.
        found = json.loads(resp.to_json())["result"]["value"][0]
        if found is None:
            return None
        return Landed(
            slot=int(found["slot"]),
            confirmation=found.get("confirmationStatus") or "processed",
            err=found.get("err"),
        )

    async def simulate(self, tx: VersionedTransaction) -> Simulated:
        """simulateTransaction (no signature check, the cluster's latest blockhash in place of
        the transaction's): what the swap would do now, at no cost."""
        resp = await self._rpc(
            "simulating the transaction",
            lambda: self.client.simulate_transaction(
                tx, sig_verify=False, commitment=Confirmed, replace_recent_blockhash=True
            ),
        )
        value = json.loads(resp.to_json())["result"]
        result = value["value"]
        return Simulated(
            slot=int(value["context"]["slot"]),
            err=result.get("err"),
            units_consumed=int(result.get("unitsConsumed") or 0),
            logs=tuple(result.get("logs") or ()),
        )

    async def recent_prioritization_fees(self, accounts: Sequence[Pubkey]) -> list[int]:
        """getRecentPrioritizationFees for transactions that lock `accounts` (at most 128):
        one micro-lamports-per-CU figure per recent slot (the node keeps 150)."""
        resp = await self._rpc(
            "reading recent priority fees",
            lambda: self.client.get_recent_prioritization_fees(list(accounts)[:MAX_FEE_ACCOUNTS]),
        )
        return [int(item.prioritization_fee) for item in resp.value]

    async def transaction_json(self, signature: Signature) -> dict[str, Any] | None:
        """getTransaction (json, v0 allowed) as the wire JSON: the slot, the message's account
        keys and the meta (fee, computeUnitsConsumed, pre/post balances and token balances)."""
        resp = await self._rpc(
            "reading the landed transaction",
            lambda: self.client.get_transaction(
                signature,
                encoding="json",
                commitment=Confirmed,
                max_supported_transaction_version=0,
            ),
        )
        found: dict[str, Any] | None = json.loads(resp.to_json())["result"]
        return found


@dataclass(frozen=True)
class Simulated:
    slot: int  # the slot the simulation ran at (just before the first send)
    err: Any  # the RPC's JSON form of the error, None when it would succeed
    units_consumed: int
    logs: tuple[str, ...]


def _refusal(exc: RPCException) -> str | None:
    """What a JSON-RPC error says if it means "this method is not served here", else None.
    -32601 is a node without the full RPC API (or a provider's plan); -32010 is a node whose
    secondary index excludes the key (public mainnet endpoints for the largest programs)."""
    payload = exc.args[0] if exc.args else None
    message = str(getattr(payload, "message", payload))
    if isinstance(payload, MethodNotFoundMessage | KeyExcludedFromSecondaryIndexMessage):
        return message
    return message if _REFUSING_WORDING.search(message) else None


def classify_send_error(exc: RPCException, program_ids: Sequence[str] | None = None) -> ChainError:
    """Sort a sendTransaction JSON-RPC error (-32002 preflight failure, ...) by what it means.
    `program_ids` (the transaction's instruction program ids) let a custom error be decoded by
    the program that raised it when the logs do not say."""
    payload = exc.args[0] if exc.args else None
    to_json = getattr(payload, "to_json", None)
    text = to_json() if callable(to_json) else str(payload)
    if "AlreadyProcessed" in text:
        return AlreadyProcessed("the transaction was already processed", "already_processed")
    if "BlockhashNotFound" in text:
        return TransientChainError(
            "the blockhash expired before the transaction landed", "blockhash_expired"
        )
    return transaction_error(text, program_ids)


# ------------------------------------------------------------------------------ failure reasons
# A custom error number means nothing without the program that raised it: 6002 is DAMM v2's
# ExceededSlippage but CPMM's EmptySupply, and 1 is the token programs' InsufficientFunds but the
# System program's ResultWithNegativeLamports. The tables name each program's errors.
SYSTEM_PROGRAM = "11111111111111111111111111111111"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
ASSOCIATED_TOKEN_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"

# spl-token / token-2022 TokenError, numbered from 0 in declaration order (interface/src/error.rs;
# the first 20 are the same in both programs).
TOKEN_ERRORS = [
    "NotRentExempt",
    "InsufficientFunds",
    "InvalidMint",
    "MintMismatch",
    "OwnerMismatch",
    "FixedSupply",
    "AlreadyInUse",
    "InvalidNumberOfProvidedSigners",
    "InvalidNumberOfRequiredSigners",
    "UninitializedState",
    "NativeNotSupported",
    "NonNativeHasBalance",
    "InvalidInstruction",
    "InvalidState",
    "Overflow",
    "AuthorityTypeNotSupported",
    "MintCannotFreeze",
    "AccountFrozen",
    "MintDecimalsMismatch",
    "NonNativeNotSupported",
    "ExtensionTypeMismatch",
    "ExtensionBaseMismatch",
    "ExtensionAlreadyInitialized",
    "ConfidentialTransferAccountHasBalance",
    "ConfidentialTransferAccountNotApproved",
    "ConfidentialTransferDepositsAndTransfersDisabled",
    "ConfidentialTransferElGamalPubkeyMismatch",
    "ConfidentialTransferBalanceMismatch",
    "MintHasSupply",
    "NoAuthorityExists",
    "TransferFeeExceedsMaximum",
    "MintRequiredForTransfer",
    "FeeMismatch",
    "FeeParametersMismatch",
    "ImmutableOwner",
    "AccountHasWithheldTransferFees",
    "NoMemo",
    "NonTransferable",
    "NonTransferableNeedsImmutableOwnership",
    "MaximumPendingBalanceCreditCounterExceeded",
    "MaximumDepositAmountExceeded",
    "CpiGuardSettingsLocked",
    "CpiGuardTransferBlocked",
    "CpiGuardBurnBlocked",
    "CpiGuardCloseAccountBlocked",
    "CpiGuardApproveBlocked",
    "CpiGuardSetAuthorityBlocked",
    "CpiGuardOwnerChangeBlocked",
    "ExtensionNotFound",
    "NonConfidentialTransfersDisabled",
    "ConfidentialTransferFeeAccountHasWithheldFee",
    "InvalidExtensionCombination",
    "InvalidLengthForAlloc",
    "AccountDecryption",
    "ProofGeneration",
    "InvalidProofInstructionOffset",
    "HarvestToMintDisabled",
    "SplitProofContextStateAccountsNotSupported",
    "NotEnoughProofContextStateAccounts",
    "MalformedCiphertext",
    "CiphertextArithmeticFailed",
    "PedersenCommitmentMismatch",
    "RangeProofLengthMismatch",
    "IllegalBitLength",
    "FeeCalculation",
    "IllegalMintBurnConversion",
    "InvalidScale",
    "MintPaused",
    "PendingBalanceNonZero",
]
# solana-system-interface SystemError.
SYSTEM_ERRORS = [
    "AccountAlreadyInUse",
    "ResultWithNegativeLamports",
    "InvalidProgramId",
    "InvalidAccountDataLength",
    "MaxSeedLengthExceeded",
    "AddressWithSeedMismatch",
    "NonceNoRecentBlockhashes",
    "NonceBlockhashNotExpired",
    "NonceUnexpectedBlockhashValue",
]
# anchor-lang ErrorCode: the framework's own errors, shared by every Anchor program.
ANCHOR_ERRORS: dict[int, str] = {
    100: "InstructionMissing",
    101: "InstructionFallbackNotFound",
    102: "InstructionDidNotDeserialize",
    103: "InstructionDidNotSerialize",
    **{
        2000 + i: name
        for i, name in enumerate(
            [
                "ConstraintMut",
                "ConstraintHasOne",
                "ConstraintSigner",
                "ConstraintRaw",
                "ConstraintOwner",
                "ConstraintRentExempt",
                "ConstraintSeeds",
                "ConstraintExecutable",
                "ConstraintState",
                "ConstraintAssociated",
                "ConstraintAssociatedInit",
                "ConstraintClose",
                "ConstraintAddress",
                "ConstraintZero",
                "ConstraintTokenMint",
                "ConstraintTokenOwner",
                "ConstraintMintMintAuthority",
                "ConstraintMintFreezeAuthority",
                "ConstraintMintDecimals",
                "ConstraintSpace",
                "ConstraintAccountIsNone",
                "ConstraintTokenTokenProgram",
                "ConstraintMintTokenProgram",
                "ConstraintAssociatedTokenTokenProgram",
            ]
        )
    },
    **{
        2500 + i: name
        for i, name in enumerate(
            [
                "RequireViolated",
                "RequireEqViolated",
                "RequireKeysEqViolated",
                "RequireNeqViolated",
                "RequireKeysNeqViolated",
                "RequireGtViolated",
                "RequireGteViolated",
            ]
        )
    },
    **{
        3000 + i: name
        for i, name in enumerate(
            [
                "AccountDiscriminatorAlreadySet",
                "AccountDiscriminatorNotFound",
                "AccountDiscriminatorMismatch",
                "AccountDidNotDeserialize",
                "AccountDidNotSerialize",
                "AccountNotEnoughKeys",
                "AccountNotMutable",
                "AccountOwnedByWrongProgram",
                "InvalidProgramId",
                "InvalidProgramExecutable",
                "AccountNotSigner",
                "AccountNotSystemOwned",
                "AccountNotInitialized",
                "AccountNotProgramData",
                "AccountNotAssociatedTokenAccount",
                "AccountSysvarMismatch",
                "AccountReallocExceedsLimit",
                "AccountDuplicateReallocs",
            ]
        )
    },
    4100: "DeclaredProgramIdMismatch",
    4101: "TryingToInitPayerAsProgramAccount",
    4102: "InvalidNumericConversion",
    5000: "Deprecated",
}
# Error names that mean something to the order, per code the order fails with.
_SLIPPAGE = "slippage_exceeded"
_FUNDS = "insufficient_funds"
_NOT_TRADABLE = "pool_not_tradable"
_ACCOUNT = "invalid_account"
_FAILED = "transaction_failed"
_TOKEN_CODES = {
    "InsufficientFunds": _FUNDS,
    "InvalidMint": _ACCOUNT,
    "MintMismatch": _ACCOUNT,
    "OwnerMismatch": _ACCOUNT,
    "UninitializedState": _ACCOUNT,
    "AccountFrozen": _ACCOUNT,
    "MintDecimalsMismatch": _ACCOUNT,
    "NonTransferable": _NOT_TRADABLE,
    "MintPaused": _NOT_TRADABLE,
}
_DEX_CODES = {
    "ExceededSlippage": _SLIPPAGE,
    "NotApproved": _NOT_TRADABLE,  # CPMM: swaps disabled or before open_time
    "PoolDisabled": _NOT_TRADABLE,  # DAMM v2: disabled or before activation_point
    "InvalidVault": _ACCOUNT,
    "InsufficientVault": _NOT_TRADABLE,
    "InvalidActivationType": _NOT_TRADABLE,
    "PriceRangeViolation": _NOT_TRADABLE,
}
# Builtin (non-custom) instruction errors, in the RPC's JSON spelling.
_BUILTIN_CODES = {
    "InsufficientFunds": _FUNDS,
    "IncorrectProgramId": _ACCOUNT,
    "InvalidAccountData": _ACCOUNT,
    "InvalidAccountOwner": _ACCOUNT,
    "AccountNotFound": _ACCOUNT,
    "UninitializedAccount": _ACCOUNT,
    "NotEnoughAccountKeys": _ACCOUNT,
    "MissingRequiredSignature": _ACCOUNT,
    "ReadonlyDataModified": _ACCOUNT,
    "ExternalAccountDataModified": _ACCOUNT,
    "UnsupportedSysvar": _ACCOUNT,
}
_TOP_LEVEL_CODES = {
    "InsufficientFundsForFee": _FUNDS,
    "InsufficientFundsForRent": _FUNDS,
    # "Attempt to debit an account but found no record of a prior credit": the fee payer (the
    # wallet) has never held a lamport, which is what a validator answers for an unfunded one.
    "AccountNotFound": _FUNDS,
    "ProgramAccountNotFound": _ACCOUNT,
    "InvalidAccountForFee": _ACCOUNT,
}
_MESSAGES = {
    _SLIPPAGE: "the price moved beyond the order's slippage",
    _FUNDS: "the wallet has insufficient funds",
    _NOT_TRADABLE: "the pool refused the swap",
    _ACCOUNT: "a pool or account is missing or invalid",
    _FAILED: "the transaction failed",
}
_INSTRUCTION_ERROR = re.compile(
    r'"InstructionError"\s*:\s*\[\s*(\d+)\s*,\s*(?:\{\s*"(\w+)"\s*:\s*(\d+)\s*\}|"(\w+)")'
)
_INSTRUCTION_ERROR_DEBUG = re.compile(r"InstructionError\(\s*(\d+)\s*,\s*(?:Custom\((\d+)\)|(\w+))")
_FAILED_LOG = re.compile(r"Program (\w+) failed: custom program error: 0x([0-9a-fA-F]+)")


@dataclass(frozen=True)
class ProgramErrors:
    """How one program numbers its custom errors."""

    label: str
    names: dict[int, str]
    anchor: bool  # an Anchor program: framework errors below 6000, its own from 6000
    codes: dict[str, str]  # error name -> order failure code


def _programs() -> dict[str, ProgramErrors]:
    from execution.venues import meteora_damm_v2, raydium_cpmm

    token = ProgramErrors("SPL Token", dict(enumerate(TOKEN_ERRORS[:20])), False, _TOKEN_CODES)
    token_2022 = ProgramErrors("Token-2022", dict(enumerate(TOKEN_ERRORS)), False, _TOKEN_CODES)
    system = ProgramErrors(
        "System", dict(enumerate(SYSTEM_ERRORS)), False, {"ResultWithNegativeLamports": _FUNDS}
    )
    ata = ProgramErrors("Associated Token", {0: "InvalidOwner"}, False, {"InvalidOwner": _ACCOUNT})
    cpmm = ProgramErrors("Raydium CPMM", raydium_cpmm.ERRORS, True, _DEX_CODES)
    damm = ProgramErrors("Meteora DAMM v2", meteora_damm_v2.ERRORS, True, _DEX_CODES)
    table = {
        SYSTEM_PROGRAM: system,
        TOKEN_PROGRAM: token,
        TOKEN_2022_PROGRAM: token_2022,
        ASSOCIATED_TOKEN_PROGRAM: ata,
    }
    table.update({str(p): cpmm for p in raydium_cpmm.PROGRAM_IDS})
    table.update({str(p): damm for p in meteora_damm_v2.PROGRAM_IDS})
    return table


_TABLE: dict[str, ProgramErrors] = {}


def _program_table() -> dict[str, ProgramErrors]:
    if not _TABLE:
        _TABLE.update(_programs())
    return _TABLE


def instruction_program_ids(raw_tx: bytes) -> list[str]:
    """The program id of each top-level instruction of a signed transaction, by index."""
    from solders.transaction import VersionedTransaction

    message = VersionedTransaction.from_bytes(raw_tx).message
    keys = list(message.account_keys)
    return [str(keys[ix.program_id_index]) for ix in message.instructions]


def _raiser(
    index: int, code: int, program_ids: Sequence[str] | None, text: str
) -> tuple[str | None, ProgramErrors | None]:
    """The program that raised custom error `code` in instruction `index`: the innermost one
    that logged `failed: custom program error: 0x<code>` (a token CPI inside a swap), else the
    instruction's own program, else (a swap program returning a token program's small code
    from its CPI) the token program."""
    table = _program_table()
    for program, hex_code in _FAILED_LOG.findall(text):
        if int(hex_code, 16) == code:
            return program, table.get(program)
    top = program_ids[index] if program_ids is not None and index < len(program_ids) else None
    errors = table.get(top) if top else None
    if errors is not None and errors.anchor and code < 100:
        return TOKEN_PROGRAM, table[TOKEN_PROGRAM]  # no Anchor program returns such a code
    return top, errors


def _custom_error(
    index: int, code: int, program_ids: Sequence[str] | None, text: str
) -> ChainError:
    program, errors = _raiser(index, code, program_ids, text)
    if errors is None:
        where = f"program {program}" if program else "an unknown program"
        return PermanentChainError(
            f"the transaction failed: {where} returned custom error {code} (instruction {index})",
            _FAILED,
        )
    name = errors.names.get(code)
    if name is None and errors.anchor:
        name = ANCHOR_ERRORS.get(code)
        # Constraint (2000s) and account (3000s) errors: an account is not what was expected.
        account_error = 2000 <= code < 2500 or 3000 <= code < 4000
        order_code = _ACCOUNT if name and account_error else _FAILED
    else:
        order_code = errors.codes.get(name or "", _FAILED)
    label = f"{errors.label} {name or 'error'} ({code})"
    return PermanentChainError(f"{_MESSAGES[order_code]}: {label}", order_code)


def transaction_error(text: str, program_ids: Sequence[str] | None = None) -> ChainError:
    """A landed or simulated transaction's error, as a typed, permanent reason.

    `text` holds the error in the RPC's JSON form (`{"InstructionError":[3,{"Custom":6005}]}`),
    possibly within a whole preflight failure (whose logs then name the failing program).
    `program_ids` are the transaction's top-level instruction program ids by index
    (`instruction_program_ids`); with neither them nor logs a custom error cannot be decoded."""
    found = _INSTRUCTION_ERROR.search(text)
    if found:
        index = int(found.group(1))
        if found.group(2) == "Custom":
            return _custom_error(index, int(found.group(3)), program_ids, text)
        builtin = found.group(4) or found.group(2) or ""
    else:
        debug = _INSTRUCTION_ERROR_DEBUG.search(text)
        if debug and debug.group(2) is not None:
            return _custom_error(int(debug.group(1)), int(debug.group(2)), program_ids, text)
        builtin = debug.group(3) if debug else ""
        index = int(debug.group(1)) if debug else -1
    if builtin:
        order_code = _BUILTIN_CODES.get(builtin, _FAILED)
        return PermanentChainError(
            f"{_MESSAGES[order_code]}: {builtin} (instruction {index})", order_code
        )
    for name, order_code in _TOP_LEVEL_CODES.items():
        if name in text:
            return PermanentChainError(f"{_MESSAGES[order_code]}: {name}", order_code)
    if "insufficient funds" in text.lower():
        return PermanentChainError(_MESSAGES[_FUNDS], _FUNDS)
    return PermanentChainError(f"the transaction failed: {text[:300]}", _FAILED)
