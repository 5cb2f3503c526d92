"""The local chain's Solana JSON-RPC 2.0 server (ASGI), so solana-py's AsyncClient - the engine's
production client - and the clients users bring (@solana/web3.js, the explorer) run against it
unchanged.

Results are built with `solders.rpc.responses` classes where solders has one (solana-py parses
replies with the same classes, so what it reads is exactly what it expects from a real node), and
otherwise in the node's JSON as `local.chain.wire`, `parsers` and `transactions` render it.

Commitment (default `finalized`, as a node's): processed = the newest produced block, confirmed
= LOCAL_CHAIN_CONFIRMED_LAG blocks below it (default 1, as on a cluster; statuses say confirmed
from then on), finalized = the root, 32 blocks below the open one; a block exists for each.
getSlot, getBlockHeight, getLatestBlockhash, getEpochInfo, getBlocks, getBlocksWithLimit,
getBlock, getTransaction and getSignaturesForAddress answer at that slot, and so do the account
reads (getAccountInfo, getBalance, getMultipleAccounts, getProgramAccounts and the token reads)
at confirmed and finalized: the state at the end of that slot, which their context names
(`Ledger.view`). At processed they see the newest state, the open block's transactions included
(a validator's working bank: what a processed status promises), as simulateTransaction does;
their context says the open slot. getBlock, getTransaction and getSignaturesForAddress refuse
`processed` like a node. Statuses carry the real level and PubSub notifications wait for the
level asked for.

Errors are agave's: its TransactionError/InstructionError texts (`local.chain.errors`), -32003
for a bad signature, -32602 for bad params, -32700/-32600 for bad JSON or requests (never an HTTP
500), and its limits: 50 KiB bodies, 100 keys for getMultipleAccounts, 256 signatures for
getSignatureStatuses; a batch holds at most LOCAL_CHAIN_MAX_BATCH requests (ours, default 100).
A request without an id (a notification) gets no reply.

The same app answers a WebSocket upgrade with the PubSub server (`local.chain.pubsub`), as a
validator's RPC port does; the chain also serves PubSub on the next port (see `serve`).
Browsers may call it: CORS for any origin, including Chrome's private-network preflight.

Also served, without CORS and behind the chain's admin token: `/admin/*` (`local.chain.admin`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from solders.account_decoder import UiTokenAmount
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, MessageV0, MessageV1, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.rpc.responses import (
    GetBalanceResp,
    GetBlockHeightResp,
    GetFeeForMessageResp,
    GetLatestBlockhashResp,
    GetMinimumBalanceForRentExemptionResp,
    GetSignatureStatusesResp,
    GetSlotResp,
    GetTokenAccountBalanceResp,
    GetVersionResp,
    RequestAirdropResp,
    RpcBlockhash,
    RpcResponseContext,
    RpcSimulateTransactionResult,
    RpcVersionInfo,
    SendTransactionResp,
    SimulateTransactionResp,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionStatus,
)
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from local.chain import parsers
from local.chain import transactions as txjson
from local.chain.admin import Admin
from local.chain.cluster import Cluster
from local.chain.ledger import (
    COMMITMENTS,
    GENESIS_HASH,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    AccountView,
    Faults,
    Ledger,
    Outcome,
    SendError,
    full_keys,
)
from local.chain.wire import (
    BLOCK_CLEANED_UP,
    BLOCK_NOT_AVAILABLE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    Json,
    RpcError,
    account_encoding,
    account_filters,
    config,
    data_slice,
    decode,
    encode_account,
    error_response,
    matches_all,
    pubkey,
    result_of,
    ui_token_amount,
)

log = logging.getLogger("local.chain.rpc")

SOLANA_CORE_VERSION = "2.2.0"  # what getVersion reports; the local chain mimics a 2.x validator
MIN_CONTEXT_SLOT_NOT_REACHED = -32016
MAX_MULTIPLE_ACCOUNTS = 100
MAX_SIGNATURE_STATUSES = 256
MAX_REQUEST_BODY_BYTES = 50 * 1024  # agave's MAX_REQUEST_BODY_SIZE
MAX_BATCH_ENV = "LOCAL_CHAIN_MAX_BATCH"
DEFAULT_MAX_BATCH = 100  # ours: a node has none, but its 50 KiB body bounds a batch anyway
SIGNATURE_VERIFICATION_FAILURE = -32003
U64_MAX = 2**64 - 1
MAX_PRIORITIZATION_FEE_ACCOUNTS = 128
MAX_SIGNATURES_LIMIT = 1000
MAX_BLOCKS_RANGE = 500_000
TOKEN_LARGEST_ACCOUNTS = 20
# Fixed public seeds: this chain's identity and genesis never change between runs, so a browser
# or wallet that remembered the cluster still recognises it.
IDENTITY = Keypair.from_seed(hashlib.sha256(b"local-chain/identity").digest()).pubkey()


def _transaction(params: list[Any]) -> VersionedTransaction:
    if not params:
        raise RpcError(INVALID_PARAMS, "Invalid params: missing transaction")
    # The JSON-RPC default encoding is base58 (deprecated but still the default).
    raw = decode(params[0], config(params, 1).get("encoding", "base58"))
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"failed to deserialize transaction: {exc}") from None


def _simulate_result(outcome_err: Any, logs: list[str], units: int) -> RpcSimulateTransactionResult:
    return RpcSimulateTransactionResult(
        err=outcome_err, logs=logs, accounts=None, units_consumed=units
    )


def _simulation_json(outcome: Outcome) -> Json:
    """A simulation's result as agave writes it, `loadedAccountsDataSize` included (solders'
    class has no setter for it)."""
    value: Json = json.loads(_simulate_result(outcome.err, outcome.logs, outcome.units).to_json())
    value["loadedAccountsDataSize"] = outcome.loaded_size
    return value


def _no_processed(cfg: Json) -> None:
    if cfg.get("commitment") == "processed":
        raise RpcError(INVALID_PARAMS, "Method does not support commitment below `confirmed`")


def check_commitment(value: Any) -> str:
    """A commitment level as a node reads it (its CommitmentLevel has three variants)."""
    if value not in COMMITMENTS:
        shown = value if isinstance(value, str) else json.dumps(value)
        raise RpcError(
            INVALID_PARAMS,
            f"Invalid params: unknown variant `{shown}`, expected one of `processed`, "
            "`confirmed`, `finalized`.",
        )
    return str(value)


def commitment(cfg: Json) -> str:
    """The request's commitment; a node's default is `finalized`."""
    value = cfg.get("commitment")
    return "finalized" if value is None else check_commitment(value)


def unsigned(value: Any, kind: str = "u64", maximum: int = U64_MAX) -> int:
    """A JSON number as serde reads an unsigned integer, with serde's error text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = json.dumps(value) if isinstance(value, str) else value
        raise RpcError(INVALID_PARAMS, f"Invalid params: invalid type: {shown!r}, expected {kind}.")
    if isinstance(value, float):
        raise RpcError(
            INVALID_PARAMS,
            f"Invalid params: invalid type: floating point `{value:g}`, expected {kind}.",
        )
    if not 0 <= value <= maximum:
        raise RpcError(
            INVALID_PARAMS, f"Invalid params: invalid value: integer `{value}`, expected {kind}."
        )
    return value


def _check_commitments(params: list[Any]) -> None:
    for item in params:
        if isinstance(item, dict):
            for key in ("commitment", "preflightCommitment"):
                if item.get(key) is not None:
                    check_commitment(item[key])


def max_batch_setting() -> int:
    """LOCAL_CHAIN_MAX_BATCH (default 100): the most requests one batch may hold."""
    raw = os.environ.get(MAX_BATCH_ENV, "")
    try:
        value = int(raw) if raw else DEFAULT_MAX_BATCH
    except ValueError:
        raise ValueError(f"{MAX_BATCH_ENV} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{MAX_BATCH_ENV} must be at least 1")
    return value


def _verify_signatures(tx: VersionedTransaction) -> None:
    """agave's verify_transaction: a bad or missing signature is -32003, with no data."""
    try:
        valid = all(tx.verify_with_results())
    except ValueError:
        valid = False
    if not valid or len(tx.signatures) < tx.message.header.num_required_signatures:
        raise RpcError(SIGNATURE_VERIFICATION_FAILURE, "Transaction signature verification failure")


class Rpc:
    """The JSON-RPC methods over one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getProgramAccounts": self.get_program_accounts,
            "getBalance": self.get_balance,
            "getLatestBlockhash": self.get_latest_blockhash,
            "getBlockHeight": self.get_block_height,
            "getSlot": self.get_slot,
            "getEpochInfo": self.get_epoch_info,
            "getEpochSchedule": self.get_epoch_schedule,
            "getGenesisHash": lambda _params: str(GENESIS_HASH),
            "getIdentity": lambda _params: {"identity": str(IDENTITY)},
            "getBlockTime": self.get_block_time,
            "getBlock": self.get_block,
            "getBlocks": self.get_blocks,
            "getBlocksWithLimit": self.get_blocks_with_limit,
            "getFirstAvailableBlock": lambda _params: self.ledger.first_available_slot,
            "minimumLedgerSlot": lambda _params: self.ledger.first_available_slot,
            "getTransactionCount": lambda _params: self.ledger.transaction_count,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getTransaction": self.get_transaction,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getTokenLargestAccounts": self.get_token_largest_accounts,
            "getTokenSupply": self.get_token_supply,
            "getSupply": self.get_supply,
            "getRecentPrioritizationFees": self.get_recent_prioritization_fees,
            "requestAirdrop": self.request_airdrop,
            "getHealth": lambda _params: "ok",
            "getVersion": self.get_version,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance,
            "getFeeForMessage": self.get_fee_for_message,
            "isBlockhashValid": self.is_blockhash_valid,
            "getTokenAccountsByDelegate": self.get_token_accounts_by_delegate,
        }
        level_slot = lambda cfg: self.ledger.commitment_slot(commitment(cfg))  # noqa: E731
        cluster = Cluster(ledger, IDENTITY, SOLANA_CORE_VERSION, self.wrap, level_slot)
        self.methods.update(cluster.methods())

    def context(self) -> RpcResponseContext:
        return RpcResponseContext(self.ledger.slot, SOLANA_CORE_VERSION)

    def wrap(self, value: Any, slot: int | None = None) -> Json:
        """An RpcResponse: {"context": {"apiVersion", "slot"}, "value": value}; the slot is the
        one the value was read at (default: the open slot)."""
        return {
            "context": {
                "apiVersion": SOLANA_CORE_VERSION,
                "slot": self.ledger.slot if slot is None else slot,
            },
            "value": value,
        }

    def call(self, request: Any) -> Json | None:
        """One JSON-RPC request object -> one response object (None for a notification: a
        request without an id gets no reply)."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return error_response(None, INVALID_REQUEST, "Invalid request")
        reply = self._answer(request)
        return reply if "id" in request else None

    def _answer(self, request: Json) -> Json:
        request_id = request.get("id")
        params = request.get("params")
        if params is None:
            params = []
        method = self.methods.get(request["method"])
        if method is None or self.ledger.faults.refuses(request["method"]):
            return error_response(request_id, METHOD_NOT_FOUND, "Method not found")
        if not isinstance(params, list):
            return error_response(request_id, INVALID_PARAMS, "Invalid params: expected an array")
        try:
            _check_commitments(params)
            with self.ledger.lock:
                self._check_min_context_slot(params)
                result = method(params)
        except RpcError as exc:
            return error_response(request_id, exc.code, exc.message, exc.data)
        except SendError as exc:
            data = None
            if exc.outcome is not None:
                data = _simulation_json(exc.outcome)
            return error_response(request_id, exc.code, exc.message, data)
        except (ValueError, IndexError, TypeError, KeyError, OverflowError) as exc:
            return error_response(request_id, INVALID_PARAMS, f"Invalid params: {exc}")
        except Exception:  # never an HTTP 500: a node answers an internal error
            log.exception("%s failed", request["method"])
            return error_response(request_id, INTERNAL_ERROR, "Internal error")
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _check_min_context_slot(self, params: list[Any]) -> None:
        for item in params:
            wanted = item.get("minContextSlot") if isinstance(item, dict) else None
            if wanted is not None and unsigned(wanted) > self.ledger.slot:
                raise RpcError(
                    MIN_CONTEXT_SLOT_NOT_REACHED,
                    "Minimum context slot has not been reached",
                    {"contextSlot": self.ledger.slot},
                )

    # ------------------------------------------------------------------------------ accounts
    def _view(self, cfg: Json) -> AccountView:
        """The accounts as of the request's commitment slot (the ledger keeps each block's
        writes): a read at `confirmed` does not see the newest block's transactions."""
        return self.ledger.view(commitment(cfg))

    def _encode(
        self, account: Any, cfg: Json, default: str = "binary", view: AccountView | None = None
    ) -> Json | None:
        if account is None:
            return None
        return encode_account(
            account,
            account_encoding(cfg, default),
            slice_=data_slice(cfg),
            lookup=view.get if view is not None else self.ledger.get_account,
        )

    def get_account_info(self, params: list[Any]) -> Any:
        cfg = config(params, 1)
        view = self._view(cfg)
        return self.wrap(self._encode(view.get(pubkey(params[0])), cfg, view=view), view.slot)

    def get_multiple_accounts(self, params: list[Any]) -> Any:
        cfg = config(params, 1)
        if not isinstance(params[0], list):
            raise RpcError(INVALID_PARAMS, "Invalid params: expected an array of pubkeys")
        if len(params[0]) > MAX_MULTIPLE_ACCOUNTS:
            raise RpcError(INVALID_PARAMS, f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        keys = [pubkey(k) for k in params[0]]
        view = self._view(cfg)
        return self.wrap([self._encode(view.get(k), cfg, view=view) for k in keys], view.slot)

    def get_program_accounts(self, params: list[Any]) -> Any:
        program = pubkey(params[0])
        cfg = config(params, 1)
        filters = account_filters(cfg.get("filters"))
        view = self._view(cfg)
        found = []
        for key, account in view.program_accounts(program):
            if not matches_all(filters, bytes(account.data)):
                continue
            found.append({"account": self._encode(account, cfg, view=view), "pubkey": str(key)})
        return self.wrap(found, view.slot) if cfg.get("withContext") else found

    def get_balance(self, params: list[Any]) -> Any:
        view = self._view(config(params, 1))
        context = RpcResponseContext(view.slot, SOLANA_CORE_VERSION)
        return result_of(GetBalanceResp(view.balance(pubkey(params[0])), context))

    def _token_account(self, key: Pubkey, view: AccountView) -> tuple[bytes, int]:
        account = view.get(key)
        if account is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: could not find account")
        if account.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token account")
        data = bytes(account.data)
        if not (len(data) == 165 or (len(data) > 165 and data[165] == 2)):
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token account")
        return data, self._mint_decimals(Pubkey.from_bytes(data[0:32]), view)

    def _mint_decimals(
        self, mint: Pubkey, view: AccountView, missing: str = "could not find mint"
    ) -> int:
        """A mint's decimals, refused in agave's words (get_mint_owner_and_additional_data)."""
        account = view.get(mint)
        if account is None:
            raise RpcError(INVALID_PARAMS, f"Invalid param: {missing}")
        if account.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token mint")
        data = bytes(account.data)
        # A Mint unpacks from 82 bytes, or (Token-2022) more with account type 1 at byte 165.
        is_mint = len(data) == 82 or (len(data) > 165 and data[165] == 1)
        decimals = parsers.mint_decimals(view.get, mint) if is_mint else None
        if decimals is None or data[45] != 1:
            raise RpcError(INVALID_PARAMS, "Invalid param: mint could not be unpacked")
        return decimals

    def get_token_account_balance(self, params: list[Any]) -> Any:
        view = self._view(config(params, 1))
        data, decimals = self._token_account(pubkey(params[0]), view)
        amount = int.from_bytes(data[64:72], "little")
        ui = ui_token_amount(amount, decimals)
        value = UiTokenAmount(ui["uiAmount"], decimals, ui["amount"], ui["uiAmountString"])
        context = RpcResponseContext(view.slot, SOLANA_CORE_VERSION)
        return result_of(GetTokenAccountBalanceResp(value, context))

    def get_token_accounts_by_owner(self, params: list[Any]) -> Any:
        owner = bytes(pubkey(params[0]))
        return self._token_accounts(params, lambda data: data[32:64] == owner)

    def get_token_accounts_by_delegate(self, params: list[Any]) -> Any:
        """Token accounts whose delegate (COption<Pubkey> at 72: tag 1, then the key) is it."""
        delegate = b"\x01\x00\x00\x00" + bytes(pubkey(params[0]))
        return self._token_accounts(params, lambda data: data[72:108] == delegate)

    def _token_accounts(self, params: list[Any], matches: Callable[[bytes], bool]) -> Any:
        selector = config(params, 1)
        cfg = config(params, 2)
        mint = pubkey(selector["mint"]) if "mint" in selector else None
        view = self._view(cfg)
        if mint is not None:
            mint_account = view.get(mint)
            if mint_account is None:
                raise RpcError(INVALID_PARAMS, "Invalid param: could not find mint")
            if mint_account.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
                raise RpcError(INVALID_PARAMS, "Invalid param: not a Token mint")
            program = mint_account.owner
        elif "programId" in selector:
            program = pubkey(selector["programId"])
        else:
            raise RpcError(INVALID_PARAMS, "Invalid params: mint or programId required")
        if program not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            raise RpcError(INVALID_PARAMS, "Invalid param: unrecognized Token program id")
        found = []
        for key, account in view.program_accounts(program):
            data = bytes(account.data)
            if len(data) < 165 or not matches(data):
                continue
            if len(data) > 165 and data[165] != 2:
                continue  # a Token-2022 mint, not an account
            if mint is not None and data[0:32] != bytes(mint):
                continue
            found.append({"account": self._encode(account, cfg, view=view), "pubkey": str(key)})
        return self.wrap(found, view.slot)

    def get_token_largest_accounts(self, params: list[Any]) -> Any:
        mint = pubkey(params[0])
        view = self._view(config(params, 1))
        decimals = self._mint_decimals(mint, view)
        mint_account = view.get(mint)
        assert mint_account is not None  # _mint_decimals found it
        holders = []
        for key, account in view.program_accounts(mint_account.owner):
            data = bytes(account.data)
            if len(data) < 165 or data[0:32] != bytes(mint):
                continue
            if len(data) > 165 and data[165] != 2:
                continue
            holders.append((int.from_bytes(data[64:72], "little"), str(key)))
        holders.sort(key=lambda h: (-h[0], h[1]))
        return self.wrap(
            [
                {"address": address, **ui_token_amount(amount, decimals)}
                for amount, address in holders[:TOKEN_LARGEST_ACCOUNTS]
            ],
            view.slot,
        )

    def get_token_supply(self, params: list[Any]) -> Any:
        mint = pubkey(params[0])
        view = self._view(config(params, 1))
        self._mint_decimals(mint, view, missing="could not find account")
        account = view.get(mint)
        assert account is not None  # _mint_decimals found it
        data = bytes(account.data)
        supply = ui_token_amount(int.from_bytes(data[36:44], "little"), data[44])
        return self.wrap(supply, view.slot)

    def get_supply(self, params: list[Any]) -> Any:
        """Lamports held by every account of the System, Token and Token-2022 programs and the
        DEX programs; the faucets' balances are the non-circulating supply."""
        cfg = config(params, 0)
        owners = [Pubkey.default(), TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, *self.ledger.programs]
        total = sum(
            account.lamports
            for owner in owners
            for _key, account in self.ledger.svm.get_program_accounts(owner)
        )
        faucets = self.ledger.faucets()
        non_circulating = sum(self.ledger.balance(k) for k in faucets)
        listed = [] if cfg.get("excludeNonCirculatingAccountsList") else [str(k) for k in faucets]
        return self.wrap(
            {
                "circulating": total - non_circulating,
                "nonCirculating": non_circulating,
                "nonCirculatingAccounts": listed,
                "total": total,
            }
        )

    def get_minimum_balance(self, params: list[Any]) -> Any:
        size = unsigned(params[0], "usize")
        if size > 10 * 1024 * 1024:  # past any account's size: the rent formula, saturated
            return min((128 + size) * 6960, U64_MAX)
        return result_of(
            GetMinimumBalanceForRentExemptionResp(self.ledger.rent_exempt_minimum(size))
        )

    def request_airdrop(self, params: list[Any]) -> Any:
        sig = self.ledger.airdrop(pubkey(params[0]), unsigned(params[1]))
        return result_of(RequestAirdropResp(sig))

    # ------------------------------------------------------------------------------ blocks
    def _block_at(self, params: list[Any], index: int = 0) -> Any:
        """The block at the slot the request's commitment sees."""
        return self.ledger.blocks[self.ledger.commitment_slot(commitment(config(params, index)))]

    def get_latest_blockhash(self, params: list[Any]) -> Any:
        block = self._block_at(params)
        last_valid = self.ledger.blockhashes[block.blockhash]
        return result_of(
            GetLatestBlockhashResp(
                RpcBlockhash(block.blockhash, last_valid),
                RpcResponseContext(block.slot, SOLANA_CORE_VERSION),
            )
        )

    def get_block_height(self, params: list[Any]) -> Any:
        return result_of(GetBlockHeightResp(self._block_at(params).height))

    def get_slot(self, params: list[Any]) -> Any:
        return result_of(GetSlotResp(self._block_at(params).slot))

    def get_epoch_info(self, params: list[Any]) -> Any:
        schedule = self.ledger.svm.get_epoch_schedule()
        block = self._block_at(params)
        epoch, index = schedule.get_epoch_and_slot_index(block.slot)
        return {
            "absoluteSlot": block.slot,
            "blockHeight": block.height,
            "epoch": epoch,
            "slotIndex": index,
            "slotsInEpoch": schedule.get_slots_in_epoch(epoch),
            "transactionCount": self.ledger.transaction_count,
        }

    def get_epoch_schedule(self, params: list[Any]) -> Any:
        schedule = self.ledger.svm.get_epoch_schedule()
        return {
            "firstNormalEpoch": schedule.first_normal_epoch,
            "firstNormalSlot": schedule.first_normal_slot,
            "leaderScheduleSlotOffset": schedule.leader_schedule_slot_offset,
            "slotsPerEpoch": schedule.slots_per_epoch,
            "warmup": schedule.warmup,
        }

    def _produced_block(self, slot: int, newest: int | None = None) -> Any:
        """A produced block (the open slot is still filling) no newer than `newest` (the
        commitment's slot), or the node's error for it."""
        ledger = self.ledger
        slot = unsigned(slot)
        if slot < ledger.first_available_slot:
            raise RpcError(
                BLOCK_CLEANED_UP,
                f"Block {slot} cleaned up, does not exist on node. First available block: "
                f"{ledger.first_available_slot}",
            )
        block = ledger.blocks.get(slot)
        if block is None or slot >= ledger.slot or (newest is not None and slot > newest):
            raise RpcError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")
        return block

    def get_block_time(self, params: list[Any]) -> Any:
        return self._produced_block(params[0]).time

    def get_block(self, params: list[Any]) -> Any:
        cfg = config(params, 1)
        if len(params) > 1 and isinstance(params[1], str):
            cfg = {"encoding": params[1]}  # the deprecated positional encoding
        _no_processed(cfg)
        block = self._produced_block(params[0], self.ledger.commitment_slot(commitment(cfg)))
        rewards = cfg.get("rewards")
        return txjson.block(
            block,
            txjson.transaction_encoding(cfg),
            str(cfg.get("transactionDetails") or "full"),
            txjson.max_version(cfg),
            True if rewards is None else bool(rewards),  # a node includes them unless told not to
        )

    def _produced_slots(self, start: int, end: int, cfg: Json) -> list[int]:
        level = commitment(cfg)
        if level == "processed":
            raise RpcError(INVALID_PARAMS, "Method does not support commitment below `confirmed`")
        end = min(end, self.ledger.commitment_slot(level))
        if end - start > MAX_BLOCKS_RANGE:
            raise RpcError(INVALID_PARAMS, f"Slot range too large; max {MAX_BLOCKS_RANGE}")
        return [s for s in self.ledger.blocks if start <= s <= end and s < self.ledger.slot]

    def get_blocks(self, params: list[Any]) -> Any:
        start = unsigned(params[0])
        has_end = len(params) > 1 and not isinstance(params[1], dict) and params[1] is not None
        end = unsigned(params[1]) if has_end else U64_MAX
        return self._produced_slots(start, end, config(params, 2 if len(params) > 2 else 1))

    def get_blocks_with_limit(self, params: list[Any]) -> Any:
        start, limit = unsigned(params[0]), unsigned(params[1], "usize")
        if limit > MAX_BLOCKS_RANGE:
            raise RpcError(INVALID_PARAMS, f"Limit too large; max {MAX_BLOCKS_RANGE}")
        return self._produced_slots(start, U64_MAX, config(params, 2))[:limit]

    def is_blockhash_valid(self, params: list[Any]) -> Any:
        try:
            blockhash = Hash.from_string(params[0] if isinstance(params[0], str) else "?")
        except Exception:  # solders' ParseHashError is no ValueError
            raise RpcError(INVALID_PARAMS, "Invalid params: invalid hash") from None
        return self.wrap(self.ledger.blockhash_valid(blockhash))

    def get_version(self, params: list[Any]) -> Any:
        return result_of(GetVersionResp(RpcVersionInfo(SOLANA_CORE_VERSION, 0)))

    def get_fee_for_message(self, params: list[Any]) -> Any:
        raw = base64.b64decode(str(params[0]))
        try:
            message: Message | MessageV0 | MessageV1 = from_bytes_versioned(raw)
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, f"failed to deserialize message: {exc}") from None
        if not self.ledger.blockhash_valid(message.recent_blockhash):
            return self.wrap(None)  # a node knows no fee for a blockhash it does not have
        fee = self.ledger.fee_for(message)
        return result_of(GetFeeForMessageResp(fee, self.context()))

    def get_recent_prioritization_fees(self, params: list[Any]) -> Any:
        keys = [pubkey(k) for k in (params[0] if params else [])]
        if len(keys) > MAX_PRIORITIZATION_FEE_ACCOUNTS:
            raise RpcError(
                INVALID_PARAMS, f"Too many inputs provided; max {MAX_PRIORITIZATION_FEE_ACCOUNTS}"
            )
        return [
            {"prioritizationFee": fee, "slot": slot}
            for slot, fee in self.ledger.recent_prioritization_fees(keys)
        ]

    # ------------------------------------------------------------------------------ transactions
    def send_transaction(self, params: list[Any]) -> Any:
        tx = _transaction(params)
        skip = bool(config(params, 1).get("skipPreflight", False))
        if not skip:
            _verify_signatures(tx)
        # maxRetries is ignored: the local chain lands or drops on the spot.
        return result_of(SendTransactionResp(self.ledger.send(tx, skip_preflight=skip)))

    def simulate_transaction(self, params: list[Any]) -> Any:
        tx = _transaction(params)
        cfg = config(params, 1)
        sig_verify = bool(cfg.get("sigVerify", False))
        replace = bool(cfg.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise RpcError(INVALID_PARAMS, "sigVerify may not be used with replaceRecentBlockhash")
        if sig_verify:
            _verify_signatures(tx)
        accounts_cfg = cfg.get("accounts") or None
        addresses: list[Pubkey] = []
        encoding = "base64"
        if accounts_cfg is not None:
            addresses = [pubkey(a) for a in accounts_cfg.get("addresses", [])]
            encoding = account_encoding(accounts_cfg, "base64")
            if encoding in ("binary", "base58"):
                raise RpcError(INVALID_PARAMS, "base58 encoding not supported")
        if not replace and not self.ledger.blockhash_valid(tx.message.recent_blockhash):
            result = _simulate_result(TransactionErrorFieldless.BlockhashNotFound, [], 0)
            # The stub omits `context`, which the runtime class takes (and solana-py needs).
            return result_of(SimulateTransactionResp(result, self.context()))  # type: ignore[call-arg]
        # With replaceRecentBlockhash the message is run as if it named the latest blockhash
        # (the local chain executes with LiteSVM's blockhash check off, so it runs as it is).
        # On the newest state (the open block's transactions included): context.slot says so.
        outcome = self.ledger.simulate(tx, sig_verify=sig_verify, addresses=addresses)
        value = _simulation_json(outcome)
        if accounts_cfg is not None:
            value["accounts"] = (
                None
                if outcome.err is not None
                else [self._encode(a, {"encoding": encoding}, "base64") for a in outcome.accounts]
            )
        if replace:
            blockhash, last_valid = self.ledger.latest_blockhash()
            value["replacementBlockhash"] = {
                "blockhash": str(blockhash),
                "lastValidBlockHeight": last_valid,
            }
        if cfg.get("innerInstructions"):
            # agave's simulation lists them parsed (UiInnerInstructions::parse).
            keys = full_keys(tx.message, self.ledger.loaded_addresses(tx.message))
            value["innerInstructions"] = txjson.inner_instructions(
                outcome.inner, keys, "jsonParsed"
            )
        return self.wrap(value)

    def get_signature_statuses(self, params: list[Any]) -> Any:
        statuses: list[TransactionStatus | None] = []
        levels = {
            "processed": TransactionConfirmationStatus.Processed,
            "confirmed": TransactionConfirmationStatus.Confirmed,
            "finalized": TransactionConfirmationStatus.Finalized,
        }
        if not isinstance(params[0], list):
            raise RpcError(INVALID_PARAMS, "Invalid params: expected an array of signatures")
        if len(params[0]) > MAX_SIGNATURE_STATUSES:
            raise RpcError(
                INVALID_PARAMS, f"Too many inputs provided; max {MAX_SIGNATURE_STATUSES}"
            )
        for raw in params[0]:
            found = self.ledger.status(Signature.from_string(str(raw)))
            if found is None:
                statuses.append(None)
                continue
            record, confirmations, level = found
            statuses.append(
                TransactionStatus(record.slot, confirmations, None, record.err, levels[level])
            )
        return result_of(GetSignatureStatusesResp(statuses, self.context()))

    def get_signatures_for_address(self, params: list[Any]) -> Any:
        address = pubkey(params[0])
        cfg = config(params, 1)
        _no_processed(cfg)
        newest = self.ledger.commitment_slot(commitment(cfg))
        limit = unsigned(cfg.get("limit") or MAX_SIGNATURES_LIMIT, "usize")
        if not 1 <= limit <= MAX_SIGNATURES_LIMIT:
            raise RpcError(INVALID_PARAMS, f"Invalid limit; max {MAX_SIGNATURES_LIMIT}")
        before = Signature.from_string(cfg["before"]) if cfg.get("before") else None
        until = Signature.from_string(cfg["until"]) if cfg.get("until") else None
        records = self.ledger.signatures_for_address(
            address, before=before, until=until, limit=limit
        )
        return [txjson.signature_info(self.ledger, r) for r in records if r.slot <= newest]

    def get_transaction(self, params: list[Any]) -> Any:
        cfg = config(params, 1)
        if len(params) > 1 and isinstance(params[1], str):
            cfg = {"encoding": params[1]}  # the deprecated positional encoding
        _no_processed(cfg)
        found = self.ledger.status(Signature.from_string(str(params[0])))
        if found is None or found[0].transaction is None:
            return None
        if found[0].slot > self.ledger.commitment_slot(commitment(cfg)):
            return None  # not yet at the level asked for
        return txjson.confirmed_transaction(
            self.ledger, found[0], txjson.transaction_encoding(cfg), txjson.max_version(cfg)
        )


# ---------------------------------------------------------------------------------- CORS
class Cors:
    """Lets a browser page on any origin call the RPC (the explorer's custom-cluster view):
    answers preflights - including Chrome's private-network one, since the page is public and
    this chain is on loopback - and marks every response as readable by any origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            allowed = headers.get("access-control-request-headers", "content-type")
            reply = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
                "Access-Control-Allow-Headers": allowed,
                "Access-Control-Max-Age": "86400",
                "Vary": "Origin",
            }
            if headers.get("access-control-request-private-network", "").lower() == "true":
                reply["Access-Control-Allow-Private-Network"] = "true"
            await Response(status_code=200, headers=reply)(scope, receive, send)
            return

        async def send_with_cors(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"access-control-allow-origin", b"*"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _inject_faults(faults: Faults) -> JSONResponse | None:
    """What the fault knobs do to one RPC request (never to /admin: tests must reach it)."""
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.take_rate_limit():
        return JSONResponse(
            {"jsonrpc": "2.0", "error": {"code": 429, "message": "Too many requests"}},
            status_code=429,
        )
    if faults.take_timeout():
        # Longer than the client waits; afterwards the request is served as usual (a slow
        # node that still processes the request is what makes timeouts dangerous).
        await asyncio.sleep(faults.hang_seconds)
    return None


class _Endpoints:
    """The HTTP side: JSON-RPC on `POST /` (single or batch) and health."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.rpc = Rpc(ledger)
        self.faults = ledger.faults
        self.max_batch = max_batch_setting()

    async def jsonrpc(self, request: Request) -> Response:
        injected = await _inject_faults(self.faults)
        if injected is not None:
            return injected
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_REQUEST_BODY_BYTES:
                return JSONResponse(
                    error_response(
                        None,
                        INVALID_REQUEST,
                        f"Request body too large; max {MAX_REQUEST_BODY_BYTES} bytes",
                    ),
                    status_code=413,
                )
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return JSONResponse(error_response(None, PARSE_ERROR, "Parse error"))
        if not isinstance(body, list):
            reply = self.rpc.call(body)
            return Response(status_code=200) if reply is None else JSONResponse(reply)
        if not body:
            return JSONResponse(error_response(None, INVALID_REQUEST, "Invalid request"))
        if len(body) > self.max_batch:
            return JSONResponse(
                error_response(
                    None,
                    INVALID_REQUEST,
                    f"Invalid request: a batch of {len(body)} requests; this chain takes at most "
                    f"{self.max_batch} ({MAX_BATCH_ENV})",
                )
            )
        replies = [r for r in (self.rpc.call(item) for item in body) if r is not None]
        return JSONResponse(replies) if replies else Response(status_code=200)

    async def health(self, request: Request) -> Response:
        return Response("ok")

    def app(self) -> ASGIApp:
        return Cors(
            Starlette(
                routes=[
                    Route("/", self.jsonrpc, methods=["POST"]),
                    Route("/", self.health, methods=["GET"]),
                    Route("/health", self.health, methods=["GET"]),
                ]
            )
        )


def create_app(ledger: Ledger, admin_token: str | None = None) -> ASGIApp:
    """The JSON-RPC app (POST /, single or batch, with CORS and fault injection) and
    `/admin/*` (no CORS, behind the admin token: `local.chain.admin`); a WebSocket upgrade on
    any path is the PubSub server."""
    from local.chain import pubsub

    websocket = pubsub.create_endpoint(pubsub.Hub(ledger))
    http = _Endpoints(ledger).app()
    admin = Admin(ledger, admin_token).app()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await websocket(scope, receive, send)
        elif scope["type"] == "http" and str(scope.get("path", "")).startswith("/admin"):
            await admin(scope, receive, send)
        else:
            await http(scope, receive, send)

    return app
