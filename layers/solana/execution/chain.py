"""Solana over JSON-RPC (solana-py AsyncClient): the few calls the executor makes, with every
failure sorted into transient (retry) or permanent (fail the order now)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.account import Account
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature

from engine.errors import (
    AlreadyProcessed,
    ChainError,
    InternalError,
    PermanentChainError,
    TransientChainError,
)
from engine.observability import async_span

RPC_TIMEOUT_SECONDS = 5.0
RPC_RETRIES = 2  # in-place retries of one call before the order's attempt is given up
RPC_BACKOFF_SECONDS = 0.1
T = TypeVar("T")


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

    async def latest_blockhash(self) -> tuple[Hash, int]:
        resp = await self._rpc(
            "fetching a blockhash", lambda: self.client.get_latest_blockhash(commitment=Confirmed)
        )
        return resp.value.blockhash, resp.value.last_valid_block_height

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
                raise classify_send_error(exc) from exc

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


def classify_send_error(exc: RPCException) -> ChainError:
    """Sort a sendTransaction JSON-RPC error (-32002 preflight failure, ...) by what it means."""
    payload = exc.args[0] if exc.args else None
    to_json = getattr(payload, "to_json", None)
    text = to_json() if callable(to_json) else str(payload)
    if "AlreadyProcessed" in text:
        return AlreadyProcessed("the transaction was already processed", "already_processed")
    if "BlockhashNotFound" in text:
        return TransientChainError(
            "the blockhash expired before the transaction landed", "blockhash_expired"
        )
    return transaction_error(text)


def transaction_error(text: str) -> ChainError:
    """A landed or simulated transaction's error, as a typed, permanent reason."""
    from execution.venues import slippage_error_codes

    for code in slippage_error_codes():
        if f'"Custom":{code}' in text.replace(" ", "") or f"Custom({code})" in text:
            return PermanentChainError(
                "the price moved beyond the order's slippage", "slippage_exceeded"
            )
    if (
        "InsufficientFunds" in text
        or "insufficient funds" in text.lower()
        or 'Custom":1}' in text.replace(" ", "")
    ):
        return PermanentChainError("the wallet has insufficient funds", "insufficient_funds")
    if "AccountNotFound" in text or "InvalidAccountData" in text:
        return PermanentChainError("a pool or account is missing or invalid", "invalid_account")
    return PermanentChainError(f"the transaction failed: {text[:300]}", "transaction_failed")
