"""The local chain's Solana JSON-RPC 2.0 server (ASGI), so solana-py's AsyncClient - the engine's
production client - runs against it unchanged.

Results are serialised through `solders.rpc.responses` classes: solana-py parses replies with the
same classes, so what it reads is exactly what it expects from a real node.

Commitment: every read sees the current state (what `processed` sees). `confirmed` and
`finalized` reads are not held back to older state: the local chain never rolls back, so the only
difference would be latency. Statuses do carry the real level (processed, then confirmed after
1 block, finalized after 32).

Also served: `/admin/*` for tests and demos (faults, txlog, advance, pool reserves).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from solders.account import Account
from solders.account_decoder import UiTokenAmount
from solders.hash import Hash
from solders.message import Message, MessageV0, MessageV1, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.rpc.responses import (
    GetAccountInfoResp,
    GetBalanceResp,
    GetBlockHeightResp,
    GetFeeForMessageResp,
    GetLatestBlockhashResp,
    GetMinimumBalanceForRentExemptionResp,
    GetMultipleAccountsResp,
    GetSignatureStatusesResp,
    GetSlotResp,
    GetTokenAccountBalanceResp,
    GetTokenAccountsByOwnerResp,
    GetTransactionResp,
    GetVersionResp,
    RequestAirdropResp,
    RpcBlockhash,
    RpcKeyedAccount,
    RpcResponseContext,
    RpcSimulateTransactionResult,
    RpcVersionInfo,
    SendTransactionResp,
    SimulateTransactionResp,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    EncodedConfirmedTransactionWithStatusMeta,
    EncodedTransactionWithStatusMeta,
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionStatus,
    UiTransactionStatusMeta,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from local.chain.ledger import TOKEN_PROGRAM_ID, Ledger, SendError
from local.chain.wire import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    Json,
    RpcError,
)
from local.chain.wire import config as _config
from local.chain.wire import decode as _decode
from local.chain.wire import error_response as _error
from local.chain.wire import pubkey as _pubkey
from local.chain.wire import result_of as _result

log = logging.getLogger("local.chain.rpc")

SOLANA_CORE_VERSION = "2.2.0"  # what getVersion reports; the local chain mimics a 2.x validator


def _transaction(params: list[Any]) -> VersionedTransaction:
    if not params:
        raise RpcError(INVALID_PARAMS, "Invalid params: missing transaction")
    # The JSON-RPC default encoding is base58 (deprecated but still the default).
    raw = _decode(params[0], _config(params, 1).get("encoding", "base58"))
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"failed to deserialize transaction: {exc}") from None


def _simulate_result(
    outcome_err: Any, logs: list[str], units: int, accounts: list[Account | None] | None = None
) -> RpcSimulateTransactionResult:
    return RpcSimulateTransactionResult(
        err=outcome_err, logs=logs, accounts=accounts, units_consumed=units
    )


class Rpc:
    """The JSON-RPC methods over one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getBalance": self.get_balance,
            "getLatestBlockhash": self.get_latest_blockhash,
            "getBlockHeight": self.get_block_height,
            "getSlot": self.get_slot,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "requestAirdrop": self.request_airdrop,
            "getHealth": lambda _params: "ok",
            "getVersion": self.get_version,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance,
            "getFeeForMessage": self.get_fee_for_message,
            "isBlockhashValid": self.is_blockhash_valid,
        }

    def context(self) -> RpcResponseContext:
        return RpcResponseContext(self.ledger.slot)

    def call(self, request: Any) -> Json:
        """One JSON-RPC request object -> one response object."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, INVALID_REQUEST, "Invalid request")
        request_id = request.get("id")
        params = request.get("params") or []
        method = self.methods.get(request["method"])
        if method is None:
            return _error(request_id, METHOD_NOT_FOUND, "Method not found")
        if not isinstance(params, list):
            return _error(request_id, INVALID_PARAMS, "Invalid params: expected an array")
        try:
            with self.ledger.lock:
                result = method(params)
        except RpcError as exc:
            return _error(request_id, exc.code, exc.message, exc.data)
        except SendError as exc:
            data = None
            if exc.outcome is not None:
                outcome = exc.outcome
                data = json.loads(
                    _simulate_result(outcome.err, outcome.logs, outcome.units).to_json()
                )
            return _error(request_id, exc.code, exc.message, data)
        except (ValueError, IndexError, TypeError) as exc:
            return _error(request_id, INVALID_PARAMS, f"Invalid params: {exc}")
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    # ------------------------------------------------------------------------------ accounts
    def _check_encoding(self, config: Json) -> None:
        encoding = config.get("encoding", "base64")
        if encoding not in ("base64", "base58", "binary"):
            # jsonParsed / base64+zstd are not offered: the engine never asks for them.
            raise RpcError(INVALID_PARAMS, f"unsupported account encoding {encoding!r}")

    def get_account_info(self, params: list[Any]) -> Any:
        self._check_encoding(_config(params, 1))
        account = self.ledger.get_account(_pubkey(params[0]))
        return _result(GetAccountInfoResp(account, self.context()))

    def get_multiple_accounts(self, params: list[Any]) -> Any:
        self._check_encoding(_config(params, 1))
        keys = [_pubkey(k) for k in params[0]]
        if len(keys) > 100:
            raise RpcError(INVALID_PARAMS, "Too many inputs provided; max 100")
        accounts = [self.ledger.get_account(k) for k in keys]
        return _result(GetMultipleAccountsResp(accounts, self.context()))

    def get_balance(self, params: list[Any]) -> Any:
        return _result(GetBalanceResp(self.ledger.balance(_pubkey(params[0])), self.context()))

    def get_token_account_balance(self, params: list[Any]) -> Any:
        key = _pubkey(params[0])
        account = self.ledger.get_account(key)
        if account is None or account.owner != TOKEN_PROGRAM_ID or len(account.data) != 165:
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token account")
        data = bytes(account.data)
        mint = self.ledger.get_account(Pubkey.from_bytes(data[0:32]))
        decimals = bytes(mint.data)[44] if mint is not None else 0
        return _result(GetTokenAccountBalanceResp(_ui_amount(data, decimals), self.context()))

    def get_token_accounts_by_owner(self, params: list[Any]) -> Any:
        owner = _pubkey(params[0])
        selector = _config(params, 1)
        self._check_encoding(_config(params, 2))
        mint = _pubkey(selector["mint"]) if "mint" in selector else None
        program = _pubkey(selector.get("programId", str(TOKEN_PROGRAM_ID)))
        found = []
        for key, account in self.ledger.svm.get_program_accounts(program):
            data = bytes(account.data)
            if account.lamports == 0 or len(data) != 165 or data[32:64] != bytes(owner):
                continue
            if mint is not None and data[0:32] != bytes(mint):
                continue
            found.append(RpcKeyedAccount(key, account))
        return _result(GetTokenAccountsByOwnerResp(found, self.context()))

    def get_minimum_balance(self, params: list[Any]) -> Any:
        return _result(
            GetMinimumBalanceForRentExemptionResp(self.ledger.rent_exempt_minimum(int(params[0])))
        )

    def request_airdrop(self, params: list[Any]) -> Any:
        return _result(RequestAirdropResp(self.ledger.airdrop(_pubkey(params[0]), int(params[1]))))

    # ------------------------------------------------------------------------------ blocks
    def get_latest_blockhash(self, params: list[Any]) -> Any:
        blockhash, last_valid = self.ledger.latest_blockhash()
        return _result(GetLatestBlockhashResp(RpcBlockhash(blockhash, last_valid), self.context()))

    def get_block_height(self, params: list[Any]) -> Any:
        return _result(GetBlockHeightResp(self.ledger.height))

    def get_slot(self, params: list[Any]) -> Any:
        return _result(GetSlotResp(self.ledger.slot))

    def is_blockhash_valid(self, params: list[Any]) -> Any:
        valid = self.ledger.blockhash_valid(Hash.from_string(str(params[0])))
        return {"context": {"slot": self.ledger.slot}, "value": valid}

    def get_version(self, params: list[Any]) -> Any:
        return _result(GetVersionResp(RpcVersionInfo(SOLANA_CORE_VERSION, 0)))

    def get_fee_for_message(self, params: list[Any]) -> Any:
        raw = base64.b64decode(str(params[0]))
        try:
            message: Message | MessageV0 | MessageV1 = from_bytes_versioned(raw)
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, f"failed to deserialize message: {exc}") from None
        fee = self.ledger.fee_for(message)
        return _result(GetFeeForMessageResp(fee, self.context()))

    # ------------------------------------------------------------------------------ transactions
    def send_transaction(self, params: list[Any]) -> Any:
        tx = _transaction(params)
        skip = bool(_config(params, 1).get("skipPreflight", False))
        # maxRetries is ignored: the local chain lands or drops on the spot.
        return _result(SendTransactionResp(self.ledger.send(tx, skip_preflight=skip)))

    def simulate_transaction(self, params: list[Any]) -> Any:
        tx = _transaction(params)
        config = _config(params, 1)
        addresses = [_pubkey(a) for a in (config.get("accounts") or {}).get("addresses", [])]
        if not config.get("replaceRecentBlockhash") and not self.ledger.blockhash_valid(
            tx.message.recent_blockhash
        ):
            result = _simulate_result(TransactionErrorFieldless.BlockhashNotFound, [], 0)
            # The stub omits `context`, which the runtime class takes (and solana-py needs).
            return _result(SimulateTransactionResp(result, self.context()))  # type: ignore[call-arg]
        outcome = self.ledger.simulate(
            tx, sig_verify=bool(config.get("sigVerify", False)), addresses=addresses
        )
        accounts = outcome.accounts if config.get("accounts") else None
        result = _simulate_result(outcome.err, outcome.logs, outcome.units, accounts)
        return _result(SimulateTransactionResp(result, self.context()))  # type: ignore[call-arg]

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
                TransactionStatus(
                    record.slot,
                    confirmations,
                    None,
                    record.err,
                    levels[level],
                )
            )
        return _result(GetSignatureStatusesResp(statuses, self.context()))

    def get_transaction(self, params: list[Any]) -> Any:
        found = self.ledger.status(Signature.from_string(str(params[0])))
        if found is None or found[0].transaction is None:
            return None
        record = found[0]
        tx = record.transaction
        assert tx is not None
        meta = UiTransactionStatusMeta(
            record.err,
            record.fee,
            record.pre_balances,
            record.post_balances,
            log_messages=record.logs,
            compute_units_consumed=record.units,
        )
        version = 0 if isinstance(tx.message, MessageV0) else "legacy"
        encoded = EncodedConfirmedTransactionWithStatusMeta(
            record.slot,
            EncodedTransactionWithStatusMeta(tx, meta, version),  # type: ignore[arg-type]
            block_time=None,
        )
        return _result(GetTransactionResp(encoded))


def _ui_amount(data: bytes, decimals: int) -> UiTokenAmount:
    amount = int.from_bytes(data[64:72], "little")
    ui = amount / 10**decimals
    text = (
        f"{amount / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".") if decimals else str(amount)
    )
    return UiTokenAmount(ui, decimals, str(amount), text)


def create_app(ledger: Ledger) -> ASGIApp:
    """The JSON-RPC app (POST /, single or batch) plus /admin endpoints, with fault injection."""
    rpc = Rpc(ledger)
    faults = ledger.faults

    async def jsonrpc(request: Request) -> Response:
        # Faults apply to the RPC endpoint only, never to /admin (tests must reach it).
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
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse(_error(None, PARSE_ERROR, "Parse error"))
        if isinstance(body, list):
            if not body:
                return JSONResponse(_error(None, INVALID_REQUEST, "Invalid request"))
            return JSONResponse([rpc.call(item) for item in body])
        return JSONResponse(rpc.call(body))

    async def health(request: Request) -> Response:
        return Response("ok")

    async def get_faults(request: Request) -> Response:
        return JSONResponse(faults.snapshot())

    async def set_faults(request: Request) -> Response:
        try:
            faults.update(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(faults.snapshot())

    async def txlog(request: Request) -> Response:
        return JSONResponse(ledger.txlog())

    async def advance(request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        height = ledger.advance(int(body.get("blocks", 1)))
        return JSONResponse({"blockHeight": height, "slot": ledger.slot})

    async def pool_reserves(request: Request) -> Response:
        body = await request.json()
        from local.chain import programs

        reserves = {Pubkey.from_string(m): int(v) for m, v in body["reserves"].items()}
        with ledger.lock:
            programs.set_pool_reserves(ledger.view(), Pubkey.from_string(body["pool"]), reserves)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/", jsonrpc, methods=["POST"]),
            Route("/", health, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/admin/faults", get_faults, methods=["GET"]),
            Route("/admin/faults", set_faults, methods=["POST"]),
            Route("/admin/txlog", txlog, methods=["GET"]),
            Route("/admin/advance", advance, methods=["POST"]),
            Route("/admin/pool_reserves", pool_reserves, methods=["POST"]),
        ]
    )
