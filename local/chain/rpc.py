"""The local chain's Solana JSON-RPC 2.0 server (ASGI), so solana-py's AsyncClient - the engine's
production client - and the clients users bring (@solana/web3.js, the explorer) run against it
unchanged.

Results are built with `solders.rpc.responses` classes where solders has one (solana-py parses
replies with the same classes, so what it reads is exactly what it expects from a real node), and
otherwise in the node's JSON as `local.chain.wire`, `parsers` and `transactions` render it.

Commitment: every read sees the current state (what `processed` sees). `confirmed` and
`finalized` reads are not held back to older state: the local chain never rolls back, so the only
difference would be latency. Statuses do carry the real level (processed, then confirmed after
1 block, finalized after 32), getBlock serves produced blocks only (not the open slot) and
refuses `processed` like a node, and PubSub notifications wait for the level asked for.

The same app answers a WebSocket upgrade with the PubSub server (`local.chain.pubsub`), as a
validator's RPC port does; the chain also serves PubSub on the next port (see `serve`).
Browsers may call it: CORS for any origin, including Chrome's private-network preflight.

Also served: `/admin/*` for tests and demos (faults, txlog, advance, and pool_price: a real swap
from the market maker moves a pool to a price).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Callable
from decimal import Decimal
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
from local.chain.ledger import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, Faults, Ledger, SendError
from local.chain.wire import (
    BLOCK_CLEANED_UP,
    BLOCK_NOT_AVAILABLE,
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
MAX_PRIORITIZATION_FEE_ACCOUNTS = 128
MAX_SIGNATURES_LIMIT = 1000
MAX_BLOCKS_RANGE = 500_000
TOKEN_LARGEST_ACCOUNTS = 20
# Fixed public seeds: this chain's identity and genesis never change between runs, so a browser
# or wallet that remembered the cluster still recognises it.
IDENTITY = Keypair.from_seed(hashlib.sha256(b"local-chain/identity").digest()).pubkey()
GENESIS_HASH = Hash(hashlib.sha256(b"local-chain/genesis").digest())


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


def _no_processed(cfg: Json) -> None:
    if cfg.get("commitment") == "processed":
        raise RpcError(INVALID_PARAMS, "Method does not support commitment below `confirmed`")


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
        }

    def context(self) -> RpcResponseContext:
        return RpcResponseContext(self.ledger.slot, SOLANA_CORE_VERSION)

    def wrap(self, value: Any) -> Json:
        """An RpcResponse: {"context": {"apiVersion", "slot"}, "value": value}."""
        return {
            "context": {"apiVersion": SOLANA_CORE_VERSION, "slot": self.ledger.slot},
            "value": value,
        }

    def call(self, request: Any) -> Json:
        """One JSON-RPC request object -> one response object."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return error_response(None, INVALID_REQUEST, "Invalid request")
        request_id = request.get("id")
        params = request.get("params") or []
        method = self.methods.get(request["method"])
        if method is None or self.ledger.faults.refuses(request["method"]):
            return error_response(request_id, METHOD_NOT_FOUND, "Method not found")
        if not isinstance(params, list):
            return error_response(request_id, INVALID_PARAMS, "Invalid params: expected an array")
        try:
            with self.ledger.lock:
                self._check_min_context_slot(params)
                result = method(params)
        except RpcError as exc:
            return error_response(request_id, exc.code, exc.message, exc.data)
        except SendError as exc:
            data = None
            if exc.outcome is not None:
                outcome = exc.outcome
                data = json.loads(
                    _simulate_result(outcome.err, outcome.logs, outcome.units).to_json()
                )
            return error_response(request_id, exc.code, exc.message, data)
        except (ValueError, IndexError, TypeError, KeyError) as exc:
            return error_response(request_id, INVALID_PARAMS, f"Invalid params: {exc}")
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _check_min_context_slot(self, params: list[Any]) -> None:
        for item in params:
            wanted = item.get("minContextSlot") if isinstance(item, dict) else None
            if wanted is not None and int(wanted) > self.ledger.slot:
                raise RpcError(
                    MIN_CONTEXT_SLOT_NOT_REACHED,
                    "Minimum context slot has not been reached",
                    {"contextSlot": self.ledger.slot},
                )

    # ------------------------------------------------------------------------------ accounts
    def _encode(self, account: Any, cfg: Json, default: str = "binary") -> Json | None:
        if account is None:
            return None
        return encode_account(
            account,
            account_encoding(cfg, default),
            slice_=data_slice(cfg),
            lookup=self.ledger.get_account,
        )

    def get_account_info(self, params: list[Any]) -> Any:
        cfg = config(params, 1)
        return self.wrap(self._encode(self.ledger.get_account(pubkey(params[0])), cfg))

    def get_multiple_accounts(self, params: list[Any]) -> Any:
        cfg = config(params, 1)
        keys = [pubkey(k) for k in params[0]]
        if len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise RpcError(INVALID_PARAMS, f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        return self.wrap([self._encode(self.ledger.get_account(k), cfg) for k in keys])

    def get_program_accounts(self, params: list[Any]) -> Any:
        program = pubkey(params[0])
        cfg = config(params, 1)
        filters = account_filters(cfg.get("filters"))
        found = []
        for key, account in self.ledger.svm.get_program_accounts(program):
            if account.lamports == 0 or not matches_all(filters, bytes(account.data)):
                continue
            found.append({"account": self._encode(account, cfg), "pubkey": str(key)})
        return self.wrap(found) if cfg.get("withContext") else found

    def get_balance(self, params: list[Any]) -> Any:
        return result_of(GetBalanceResp(self.ledger.balance(pubkey(params[0])), self.context()))

    def _token_account(self, key: Pubkey) -> tuple[bytes, int]:
        account = self.ledger.get_account(key)
        if account is None or account.owner not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token account")
        data = bytes(account.data)
        if not (len(data) == 165 or (len(data) > 165 and data[165] == 2)):
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token account")
        decimals = parsers.mint_decimals(self.ledger.get_account, Pubkey.from_bytes(data[0:32]))
        if decimals is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: could not find mint")
        return data, decimals

    def get_token_account_balance(self, params: list[Any]) -> Any:
        data, decimals = self._token_account(pubkey(params[0]))
        amount = int.from_bytes(data[64:72], "little")
        ui = ui_token_amount(amount, decimals)
        value = UiTokenAmount(ui["uiAmount"], decimals, ui["amount"], ui["uiAmountString"])
        return result_of(GetTokenAccountBalanceResp(value, self.context()))

    def get_token_accounts_by_owner(self, params: list[Any]) -> Any:
        owner = pubkey(params[0])
        selector = config(params, 1)
        cfg = config(params, 2)
        mint = pubkey(selector["mint"]) if "mint" in selector else None
        if mint is not None:
            mint_account = self.ledger.get_account(mint)
            if mint_account is None:
                raise RpcError(INVALID_PARAMS, "Invalid param: could not find mint")
            program = mint_account.owner
        elif "programId" in selector:
            program = pubkey(selector["programId"])
        else:
            raise RpcError(INVALID_PARAMS, "Invalid params: mint or programId required")
        if program not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
            raise RpcError(INVALID_PARAMS, "Invalid param: unrecognized Token program id")
        found = []
        for key, account in self.ledger.svm.get_program_accounts(program):
            data = bytes(account.data)
            if account.lamports == 0 or len(data) < 165 or data[32:64] != bytes(owner):
                continue
            if len(data) > 165 and data[165] != 2:
                continue  # a Token-2022 mint, not an account
            if mint is not None and data[0:32] != bytes(mint):
                continue
            found.append({"account": self._encode(account, cfg), "pubkey": str(key)})
        return self.wrap(found)

    def get_token_largest_accounts(self, params: list[Any]) -> Any:
        mint = pubkey(params[0])
        mint_account = self.ledger.get_account(mint)
        decimals = parsers.mint_decimals(self.ledger.get_account, mint)
        if mint_account is None or decimals is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: could not find mint")
        holders = []
        for key, account in self.ledger.svm.get_program_accounts(mint_account.owner):
            data = bytes(account.data)
            if account.lamports == 0 or len(data) < 165 or data[0:32] != bytes(mint):
                continue
            if len(data) > 165 and data[165] != 2:
                continue
            holders.append((int.from_bytes(data[64:72], "little"), str(key)))
        holders.sort(key=lambda h: (-h[0], h[1]))
        return self.wrap(
            [
                {"address": address, **ui_token_amount(amount, decimals)}
                for amount, address in holders[:TOKEN_LARGEST_ACCOUNTS]
            ]
        )

    def get_token_supply(self, params: list[Any]) -> Any:
        mint = pubkey(params[0])
        account = self.ledger.get_account(mint)
        if account is None or parsers.mint_decimals(self.ledger.get_account, mint) is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: could not find mint")
        data = bytes(account.data)
        return self.wrap(ui_token_amount(int.from_bytes(data[36:44], "little"), data[44]))

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
        return result_of(
            GetMinimumBalanceForRentExemptionResp(self.ledger.rent_exempt_minimum(int(params[0])))
        )

    def request_airdrop(self, params: list[Any]) -> Any:
        sig = self.ledger.airdrop(pubkey(params[0]), int(params[1]))
        return result_of(RequestAirdropResp(sig))

    # ------------------------------------------------------------------------------ blocks
    def get_latest_blockhash(self, params: list[Any]) -> Any:
        blockhash, last_valid = self.ledger.latest_blockhash()
        return result_of(
            GetLatestBlockhashResp(RpcBlockhash(blockhash, last_valid), self.context())
        )

    def get_block_height(self, params: list[Any]) -> Any:
        return result_of(GetBlockHeightResp(self.ledger.height))

    def get_slot(self, params: list[Any]) -> Any:
        return result_of(GetSlotResp(self.ledger.slot))

    def get_epoch_info(self, params: list[Any]) -> Any:
        schedule = self.ledger.svm.get_epoch_schedule()
        epoch, index = schedule.get_epoch_and_slot_index(self.ledger.slot)
        return {
            "absoluteSlot": self.ledger.slot,
            "blockHeight": self.ledger.height,
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

    def _produced_block(self, slot: int) -> Any:
        """A produced block (the open slot is still filling), or the node's error for it."""
        ledger = self.ledger
        if slot < ledger.first_available_slot:
            raise RpcError(
                BLOCK_CLEANED_UP,
                f"Block {slot} cleaned up, does not exist on node. First available block: "
                f"{ledger.first_available_slot}",
            )
        block = ledger.blocks.get(slot)
        if block is None or slot >= ledger.slot:
            raise RpcError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")
        return block

    def get_block_time(self, params: list[Any]) -> Any:
        return self._produced_block(int(params[0])).time

    def get_block(self, params: list[Any]) -> Any:
        cfg = config(params, 1)
        if len(params) > 1 and isinstance(params[1], str):
            cfg = {"encoding": params[1]}  # the deprecated positional encoding
        _no_processed(cfg)
        block = self._produced_block(int(params[0]))
        rewards = cfg.get("rewards")
        return txjson.block(
            block,
            txjson.transaction_encoding(cfg),
            str(cfg.get("transactionDetails") or "full"),
            txjson.max_version(cfg),
            True if rewards is None else bool(rewards),  # a node includes them unless told not to
        )

    def _produced_slots(self, start: int, end: int) -> list[int]:
        if end - start > MAX_BLOCKS_RANGE:
            raise RpcError(INVALID_PARAMS, f"Slot range too large; max {MAX_BLOCKS_RANGE}")
        return [s for s in self.ledger.blocks if start <= s <= end and s < self.ledger.slot]

    def get_blocks(self, params: list[Any]) -> Any:
        start = int(params[0])
        end = int(params[1]) if len(params) > 1 and not isinstance(params[1], dict) else None
        return self._produced_slots(start, end if end is not None else self.ledger.slot)

    def get_blocks_with_limit(self, params: list[Any]) -> Any:
        start, limit = int(params[0]), int(params[1])
        return self._produced_slots(start, self.ledger.slot)[:limit]

    def is_blockhash_valid(self, params: list[Any]) -> Any:
        valid = self.ledger.blockhash_valid(Hash.from_string(str(params[0])))
        return self.wrap(valid)

    def get_version(self, params: list[Any]) -> Any:
        return result_of(GetVersionResp(RpcVersionInfo(SOLANA_CORE_VERSION, 0)))

    def get_fee_for_message(self, params: list[Any]) -> Any:
        raw = base64.b64decode(str(params[0]))
        try:
            message: Message | MessageV0 | MessageV1 = from_bytes_versioned(raw)
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, f"failed to deserialize message: {exc}") from None
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
        # maxRetries is ignored: the local chain lands or drops on the spot.
        return result_of(SendTransactionResp(self.ledger.send(tx, skip_preflight=skip)))

    def simulate_transaction(self, params: list[Any]) -> Any:
        tx = _transaction(params)
        cfg = config(params, 1)
        sig_verify = bool(cfg.get("sigVerify", False))
        replace = bool(cfg.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise RpcError(INVALID_PARAMS, "sigVerify may not be used with replaceRecentBlockhash")
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
        outcome = self.ledger.simulate(tx, sig_verify=sig_verify, addresses=addresses)
        value = json.loads(_simulate_result(outcome.err, outcome.logs, outcome.units).to_json())
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
            value["innerInstructions"] = []
        return self.wrap(value)

    def get_signature_statuses(self, params: list[Any]) -> Any:
        statuses: list[TransactionStatus | None] = []
        levels = {
            "processed": TransactionConfirmationStatus.Processed,
            "confirmed": TransactionConfirmationStatus.Confirmed,
            "finalized": TransactionConfirmationStatus.Finalized,
        }
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
        limit = int(cfg.get("limit") or MAX_SIGNATURES_LIMIT)
        if not 1 <= limit <= MAX_SIGNATURES_LIMIT:
            raise RpcError(INVALID_PARAMS, f"Invalid limit; max {MAX_SIGNATURES_LIMIT}")
        before = Signature.from_string(cfg["before"]) if cfg.get("before") else None
        until = Signature.from_string(cfg["until"]) if cfg.get("until") else None
        records = self.ledger.signatures_for_address(
            address, before=before, until=until, limit=limit
        )
        return [txjson.signature_info(self.ledger, r) for r in records]

    def get_transaction(self, params: list[Any]) -> Any:
        cfg = config(params, 1)
        if len(params) > 1 and isinstance(params[1], str):
            cfg = {"encoding": params[1]}  # the deprecated positional encoding
        _no_processed(cfg)
        found = self.ledger.status(Signature.from_string(str(params[0])))
        if found is None or found[0].transaction is None:
            return None
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
    """The HTTP side: JSON-RPC on `POST /` (single or batch), health, and `/admin/*`."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.rpc = Rpc(ledger)
        self.faults = ledger.faults

    async def jsonrpc(self, request: Request) -> Response:
        injected = await _inject_faults(self.faults)
        if injected is not None:
            return injected
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse(error_response(None, PARSE_ERROR, "Parse error"))
        if not isinstance(body, list):
            return JSONResponse(self.rpc.call(body))
        if not body:
            return JSONResponse(error_response(None, INVALID_REQUEST, "Invalid request"))
        return JSONResponse([self.rpc.call(item) for item in body])

    async def health(self, request: Request) -> Response:
        return Response("ok")

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.snapshot())

    async def set_faults(self, request: Request) -> Response:
        try:
            self.faults.update(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults.snapshot())

    async def txlog(self, request: Request) -> Response:
        return JSONResponse(self.ledger.txlog())

    async def advance(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        height = self.ledger.advance(int(body.get("blocks", 1)))
        return JSONResponse({"blockHeight": height, "slot": self.ledger.slot})

    async def pool_price(self, request: Request) -> Response:
        """Move a pool's price with a real swap from the market maker: {"pool", "baseMint",
        "price"} (whole units of the other mint per whole base token)."""
        from local.chain import market, seed

        body = await request.json()
        try:
            pool = Pubkey.from_string(body["pool"])
            base = Pubkey.from_string(body["baseMint"])
            price = Decimal(str(body["price"]))
            with self.ledger.lock:
                found = market.read_pool(self.ledger, pool)
                quote = next(m for m in found.mints if m != base)
                target = market.whole_price(self.ledger, base, quote, price)
                record = market.move_price(
                    self.ledger, seed.MARKET_MAKER_KEYPAIR, pool, base, target
                )
        except (KeyError, ValueError, ArithmeticError, market.MarketError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        signature = str(record.signature) if record is not None else None
        return JSONResponse({"ok": True, "signature": signature})

    def app(self) -> ASGIApp:
        return Cors(
            Starlette(
                routes=[
                    Route("/", self.jsonrpc, methods=["POST"]),
                    Route("/", self.health, methods=["GET"]),
                    Route("/health", self.health, methods=["GET"]),
                    Route("/admin/faults", self.get_faults, methods=["GET"]),
                    Route("/admin/faults", self.set_faults, methods=["POST"]),
                    Route("/admin/txlog", self.txlog, methods=["GET"]),
                    Route("/admin/advance", self.advance, methods=["POST"]),
                    Route("/admin/pool_price", self.pool_price, methods=["POST"]),
                ]
            )
        )


def create_app(ledger: Ledger) -> ASGIApp:
    """The JSON-RPC app (POST /, single or batch) plus /admin endpoints, with fault injection;
    a WebSocket upgrade on any path is the PubSub server."""
    from local.chain import pubsub

    websocket = pubsub.create_endpoint(pubsub.Hub(ledger))
    http = _Endpoints(ledger).app()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await websocket(scope, receive, send)
        else:
            await http(scope, receive, send)

    return app
