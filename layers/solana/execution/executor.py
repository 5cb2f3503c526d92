"""Executing one order: route -> build -> sign -> send -> confirm, resumable at every step.

The order row is the state: a redelivered message resumes from the stored status. The signed
transaction's signature, bytes and lastValidBlockHeight are stored (status `submitted`) BEFORE
the first send, so a crash can never lose track of a transaction that might land; a new one is
built only once the stored one's blockhash can no longer land (block height past
lastValidBlockHeight and the signature unknown). That is what makes execution at-most-once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from engine.config import Settings
from engine.orders import Status, explorer_link
from engine.store import Event, Store
from psycopg import OperationalError
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from execution import builder, router
from execution.chain import (
    AlreadyProcessed,
    Chain,
    ChainError,
    PermanentChainError,
    TransientChainError,
    error_json,
    instruction_program_ids,
    transaction_error,
)
from execution.wallet import Wallet

logger = Logger(child=True)

Publish = Callable[[Event], None]


@dataclass(frozen=True)
class Outcome:
    status: str
    retry: bool = False  # True: leave the message for redelivery (transient failure)
    reason: str | None = None


@dataclass(frozen=True)
class Timing:
    poll_seconds: float = 0.4  # how often to look up the signature's status
    resend_seconds: float = 2.0  # how often to rebroadcast the same signed bytes
    land_timeout_seconds: float = 90.0  # give up this invocation (the message is redelivered)

    @classmethod
    def from_settings(cls, cfg: Settings) -> Timing:
        return cls(cfg.confirm_poll_seconds, cfg.resend_seconds, cfg.land_timeout_seconds)


class Executor:
    def __init__(
        self,
        store: Store,
        chain: Chain,
        wallet: Wallet,
        cfg: Settings,
        publish: Publish | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.store = store
        self.chain = chain
        self.wallet = wallet
        self.cfg = cfg
        self.publish = publish or (lambda _e: None)
        self.timing = timing or Timing()

    # -- entry ----------------------------------------------------------------------------------

    async def run(self, order_id: uuid.UUID, receive_count: int = 1) -> Outcome:
        try:
            return await self._run(order_id, receive_count)
        except OperationalError as exc:
            # Postgres unreachable (restart, failover): nothing can be recorded now. Every step
            # is resumable from the stored state, so the message simply comes back later.
            logger.warning("database unavailable; will retry", extra={"order_id": str(order_id)})
            return Outcome(
                "retry", retry=True, reason=f"database unavailable ({type(exc).__name__})"
            )

    async def settle_dead_letter(self, order_id: uuid.UUID) -> Outcome:
        """An order whose message reached the DLQ: its executor died on every receive (a
        transient failure would have ended it on the last one). Before `submitted` no
        transaction exists, so it fails with that reason; after, its transaction is followed
        to the end once more, as a last attempt."""
        row = self.store.get_order(order_id)
        if row is None:
            return Outcome("missing")
        status = Status(row["status"])
        if status.terminal:
            return Outcome(str(status))
        if status is Status.SUBMITTED:
            return await self.run(order_id, receive_count=self.cfg.max_attempts)
        return self._fail(
            order_id,
            "execution_crashed",
            f"the executor stopped without finishing on {self.cfg.max_attempts} deliveries;"
            " no transaction was sent",
        )

    async def _run(self, order_id: uuid.UUID, receive_count: int) -> Outcome:
        row = self.store.get_order(order_id)
        if row is None:
            logger.warning("order not found; dropping message", extra={"order_id": str(order_id)})
            return Outcome("missing")
        if receive_count > 1:
            # A redelivery may follow a crash between a status commit and its publish: publish
            # the latest event again. Delivery is by seq per subscriber, so nobody gets it twice.
            latest = self.store.events(order_id)[-1:]
            for event in latest:
                self._emit(event)
        try:
            return await self._advance(row)
        except PermanentChainError as exc:
            return self._fail(order_id, exc.code, exc.message)
        except ChainError as exc:
            return self._transient(order_id, exc, receive_count)

    async def _advance(self, row: dict[str, Any]) -> Outcome:
        oid: uuid.UUID = row["id"]
        status = Status(row["status"])
        if status.terminal:
            return Outcome(str(status))
        if status is Status.PENDING:
            if not await self._route(row):
                return Outcome("raced")
            status = Status.ROUTING
        if status is Status.ROUTING:
            if not self._to_building(oid):
                return Outcome("raced")
            status = Status.BUILDING
        if status is Status.BUILDING and not await self._sign_and_record(
            oid, Status.BUILDING, None
        ):
            return Outcome("raced")
        return await self._land(oid)

    # -- steps ----------------------------------------------------------------------------------

    async def _route(self, row: dict[str, Any]) -> bool:
        decision = await router.quote_all_venues(
            self.chain,
            self.cfg.pools,
            mint_in=row["mint_in"],
            mint_out=row["mint_out"],
            amount_in=row["amount_in"],
            priority_fee_micro_lamports=self.cfg.priority_fee_micro_lamports,
        )
        best = decision.best
        event = self.store.transition(
            row["id"],
            Status.PENDING,
            Status.ROUTING,
            detail={
                "quotes": decision.quotes_json(),
                "venue": best.venue,
                "pool": best.pool,
                "amountOut": best.to_json(True)["amountOut"],
            },
            fields={
                "quotes": decision.quotes_json(),
                "venue": best.venue,
                "pool": best.pool,
                "amount_out": best.amount_out_units,
                "decimals_out": best.decimals_out,
            },
        )
        self._emit(event)
        return event is not None

    def _to_building(self, oid: uuid.UUID) -> bool:
        row = self.store.get_order(oid)
        assert row is not None
        min_out = minimum_out(row["amount_out"], row["slippage"])
        event = self.store.transition(
            oid,
            Status.ROUTING,
            Status.BUILDING,
            detail={
                "venue": row["venue"],
                "pool": row["pool"],
                "minAmountOut": format(
                    min_out.scaleb(-(row["decimals_out"] or 0)).normalize(), "f"
                ),
            },
            fields={"min_amount_out": min_out},
        )
        self._emit(event)
        return event is not None

    async def _sign_and_record(
        self, oid: uuid.UUID, expected: Status, replaces: str | None
    ) -> bool:
        """Build and sign a fresh transaction and store it (status `submitted`) before any send."""
        row = self.store.get_order(oid)
        assert row is not None
        attempts = int(row["attempts"]) + 1
        if attempts > self.cfg.max_attempts:
            raise PermanentChainError(
                f"the transaction expired {self.cfg.max_attempts} times without landing",
                "blockhash_expired",
            )
        signed = await builder.build_swap(
            self.chain, self.wallet, row, self.cfg.priority_fee_micro_lamports
        )
        sig = str(signed.transaction.signatures[0])
        detail: dict[str, Any] = {
            "txHash": sig,
            "explorerUrl": self._explorer(sig),
            "lastValidBlockHeight": signed.last_valid_block_height,
            "attempt": attempts,
        }
        if replaces:
            detail["replaces"] = replaces
        event = self.store.transition(
            oid,
            expected,
            Status.SUBMITTED,
            detail=detail,
            fields={
                "tx_signature": sig,
                "last_valid_block_height": signed.last_valid_block_height,
                "signed_tx": bytes(signed.transaction),
                "attempts": attempts,
            },
            where_signature=replaces,
        )
        self._emit(event)
        return event is not None

    async def _land(self, oid: uuid.UUID) -> Outcome:
        """Follow the stored transaction to `confirmed`, rebroadcasting the same bytes, and
        replace it only once its blockhash can no longer land."""
        started = time.monotonic()
        last_send = float("-inf")
        while True:
            row = self.store.get_order(oid)
            assert row is not None
            if Status(row["status"]) is not Status.SUBMITTED:
                return Outcome(row["status"])
            sig_text: str = row["tx_signature"]
            signature = Signature.from_string(sig_text)
            landed = await self.chain.status(signature)
            if landed is not None:
                if landed.err is not None:
                    exc = transaction_error(
                        json.dumps(error_json(landed.err)),
                        instruction_program_ids(bytes(row["signed_tx"])),
                    )
                    return self._fail(oid, exc.code, exc.message, expected=Status.SUBMITTED)
                if landed.confirmed:
                    return self._confirm(oid, sig_text, landed.slot)
            else:
                height = await self.chain.block_height()
                if height > row["last_valid_block_height"]:
                    # Look again after reading the height: only now is "unknown" final.
                    if await self.chain.status(signature) is None:
                        logger.info(
                            "blockhash expired unlanded; rebuilding",
                            extra={"order_id": str(oid), "signature": sig_text},
                        )
                        if not await self._sign_and_record(oid, Status.SUBMITTED, sig_text):
                            return Outcome("raced")
                        last_send = float("-inf")
                    continue
                if time.monotonic() - last_send >= self.timing.resend_seconds:
                    await self._send(VersionedTransaction.from_bytes(row["signed_tx"]))
                    last_send = time.monotonic()
            if time.monotonic() - started > self.timing.land_timeout_seconds:
                raise TransientChainError(
                    "the transaction did not confirm in time", "confirmation_timeout"
                )
            await asyncio.sleep(self.timing.poll_seconds)

    async def _send(self, tx: VersionedTransaction) -> None:
        try:
            await self.chain.send(bytes(tx))
        except AlreadyProcessed:
            pass  # it landed; the status lookup will see it
        except TransientChainError as exc:
            if exc.code != "blockhash_expired":
                raise
            # Expired: the loop's height check decides whether to rebuild.

    # -- endings --------------------------------------------------------------------------------

    def _confirm(self, oid: uuid.UUID, sig: str, slot: int) -> Outcome:
        event = self.store.transition(
            oid,
            Status.SUBMITTED,
            Status.CONFIRMED,
            detail={"txHash": sig, "explorerUrl": self._explorer(sig), "slot": slot},
            where_signature=sig,
        )
        self._emit(event)
        return Outcome("confirmed" if event else "raced")

    def _fail(
        self, oid: uuid.UUID, code: str, message: str, expected: Status | None = None
    ) -> Outcome:
        row = self.store.get_order(oid)
        assert row is not None
        current = Status(row["status"])
        if current.terminal:
            return Outcome(str(current))
        detail: dict[str, Any] = {"error": message, "code": code}
        if row.get("tx_signature"):
            detail["txHash"] = row["tx_signature"]
        event = self.store.transition(
            oid,
            expected or current,
            Status.FAILED,
            detail=detail,
            fields={"failure_code": code, "failure_reason": message},
        )
        self._emit(event)
        logger.info("order failed", extra={"order_id": str(oid), "code": code})
        return Outcome("failed", reason=message)

    def _transient(self, oid: uuid.UUID, exc: ChainError, receive_count: int) -> Outcome:
        if receive_count >= self.cfg.max_attempts:
            # The queue will not deliver again (redrive after 3 receives): end it here, with the
            # last reason, so no order sits in a non-terminal status once its message is in the DLQ.
            message = f"{exc.message} (after {receive_count} attempts)"
            row = self.store.get_order(oid)
            if row and row["status"] == Status.SUBMITTED and row["tx_signature"]:
                # We could not see it land; it still might, until its blockhash expires. Say so,
                # with what a user needs to check it, rather than claim it never executed.
                message += (
                    f"; transaction {row['tx_signature']} was sent and could still land until"
                    f" block height {row['last_valid_block_height']}"
                )
            return self._fail(oid, exc.code, message)
        logger.warning(
            "transient failure; will retry",
            extra={"order_id": str(oid), "code": exc.code, "attempt": receive_count},
        )
        return Outcome("retry", retry=True, reason=exc.message)

    def _emit(self, event: Event | None) -> None:
        if event is None:
            return
        try:
            self.publish(event)
        except Exception:  # a notification failure must never undo a committed status
            logger.exception("publishing a status event failed")

    def _explorer(self, sig: str) -> str:
        return explorer_link(sig, self.cfg.solana_cluster, self.cfg.solana_rpc_url)


def minimum_out(expected_out: Decimal, slippage_pct: Decimal) -> Decimal:
    """Worst acceptable output in base units: floor(expected * (1 - slippage%))."""
    factor = (Decimal(100) - Decimal(slippage_pct)) / Decimal(100)
    return (Decimal(expected_out) * factor).to_integral_value(rounding="ROUND_FLOOR")


# One RPC client per event loop: its connections belong to the loop that opened them, and the
# local poller runs several "containers" (each with its own loop) in one process.
_chains: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Chain] = weakref.WeakKeyDictionary()
_store: Store | None = None


def _chain_for_this_loop(url: str) -> Chain:
    loop = asyncio.get_running_loop()
    chain = _chains.get(loop)
    if chain is None or chain.url != url:
        chain = _chains[loop] = Chain(url)
    return chain


async def execute_order(
    order_id: uuid.UUID, receive_count: int = 1, dead_letter: bool = False
) -> Outcome:
    """What functions/execute calls: one order, with the container's store, chain and wallet
    (`dead_letter`: the message came from the orders DLQ; settle the order)."""
    global _store
    from engine import notify
    from engine.config import settings

    from execution.wallet import load_wallet

    cfg = settings()
    if _store is None:
        _store = Store()
    runner = Executor(
        _store,
        _chain_for_this_loop(cfg.solana_rpc_url),
        load_wallet(),
        cfg,
        publish=notify.publish,
        timing=Timing.from_settings(cfg),
    )
    if dead_letter:
        return await runner.settle_dead_letter(order_id)
    return await runner.run(order_id, receive_count)
