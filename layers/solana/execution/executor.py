"""Executing one order: route -> build -> sign -> send -> confirm, resumable at every step.

The order row is the state: a redelivered message resumes from the stored status. The signed
transaction's signature, bytes and lastValidBlockHeight are stored (status `submitted`) BEFORE
the first send, so a crash can never lose track of a transaction that might land; a new one is
built only once the stored one's blockhash can no longer land (block height past
lastValidBlockHeight and the signature unknown). That is what makes execution at-most-once.

The order is read once per invocation; every status change returns the order as it now is
(`Store.transition`), so the executor never reads it again unless a change lost a race.

Landing (builder.build_swap, execution/fees.py): the swap is simulated before it is signed for
real, so a swap refused for price or funds fails (or a limit order watches again) before any fee
is spent; the compute-unit limit is the simulation's units plus a margin, the priority fee the
cluster's recent fees over the pools' accounts, capped. A confirmed order carries what it got,
read from its landed transaction (execution/fills.py); an unexpected exception (a bug) ends the
order `internal_error` on the same delivery, after its stored transaction's end if one exists.

Limit and sniper orders reach the executor once the watcher has triggered them (`triggered`),
and are routed from there as a pending market order is. A limit order's minimum output is
amountIn x limitPrice, so the chain itself refuses to fill it below its limit; a limit order
whose swap is refused for price (the quote at routing, a simulation, or the program's slippage
error on chain) goes back to `watching` with the reason, once its transaction can no longer
land, at most MAX_TRIGGERS triggers in all (`_rewatch`, `_settle_then_rewatch`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from psycopg import OperationalError
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from engine import limits, observability
from engine.config import PoolConfig, Settings
from engine.errors import (
    AlreadyProcessed,
    ChainError,
    KeyLimitExceeded,
    LimitPriceTooLow,
    PermanentChainError,
    TransientChainError,
)
from engine.metrics import Metric
from engine.orders import (
    DEFAULT_SLIPPAGE,
    REVOKED_CODE,
    REWATCH_FROM,
    Status,
    explorer_link,
    limit_min_out_units,
    max_price_min_out_units,
)
from engine.store import Event, Order, Store, Transition
from execution import builder, discovery, fills, lookup, router, split
from execution.chain import (
    Chain,
    Landed,
    error_json,
    instruction_program_ids,
    transaction_error,
)
from execution.fees import PriorityFees
from execution.wallet import Wallet

logger = Logger(child=True)

Publish = Callable[[Event], None]
FILL_READS = 5  # getTransaction polls for a landed signature before confirming without a fill


@dataclass(frozen=True)
class Outcome:
    status: str
    retry: bool = False  # True: leave the message for redelivery (transient failure)
    reason: str | None = None


# How often the dead-letter settler puts an order no executor started back on the queue before
# it fails it as execution_crashed: a throttled burst passes, an order that kills its executor
# before routing does not loop for ever.
MAX_DEAD_LETTER_REQUEUES = 2


@dataclass(frozen=True)
class Timing:
    poll_seconds: float = 0.4  # how often to look up the signature's status
    resend_seconds: float = 2.0  # how often to rebroadcast the same signed bytes
    land_timeout_seconds: float = 90.0  # give up this invocation (the message is redelivered)

    @classmethod
    def from_settings(cls, cfg: Settings) -> Timing:
        return cls(cfg.confirm_poll_seconds, cfg.resend_seconds, cfg.land_timeout_seconds)


class Raced(Exception):
    """Another executor moved the order first; this one stops (its work is not lost)."""


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
        self.timing = timing or Timing.from_settings(cfg)
        # What routing read for the order it routed (its pool state, a blockhash, the priority
        # fee), for the build that follows in the same invocation; a resumed order reads them
        # afresh.
        self._prepared: tuple[uuid.UUID, builder.Prepared] | None = None
        self.fees = PriorityFees(chain, cfg)
        # The wallet's lookup table (routes of more than two legs) and what routing found it
        # lacks for a longer route that would have paid more: added once the order is over.
        self.tables = lookup.TableKeeper(chain, wallet, store)
        self._lookup_missing: tuple[Pubkey, ...] = ()

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
        except Exception as exc:  # a bug: no order may wait on one (issue: hardening, round 2)
            logger.exception("unexpected error while executing", extra={"order_id": str(order_id)})
            observability.count(Metric.INTERNAL_ERROR)
            return await self._after_bug(order_id, exc)

    async def _after_bug(self, order_id: uuid.UUID, exc: Exception) -> Outcome:
        """End an order an unexpected exception stopped: `failed` with `internal_error` at once
        when no signed transaction is stored; otherwise the stored transaction may have been
        sent, so it is followed to its end first (landed: confirmed or failed as it landed;
        expired unlanded: internal_error). Anything that goes wrong here leaves the message for
        redelivery, as a transient failure does."""
        message = f"the engine hit an unexpected error ({type(exc).__name__}); no swap was made"
        try:
            order = self.store.get_order(order_id)
            if order is None or order.status.terminal:
                return Outcome(str(order.status) if order else "missing")
            if order.status is not Status.SUBMITTED:
                return self._fail(order, "internal_error", message)
            return await self._follow_to_end(order, message)
        except Exception:
            logger.exception("settling after an unexpected error failed; will retry")
            return Outcome("retry", retry=True, reason=f"unexpected error ({type(exc).__name__})")

    async def _follow_to_end(self, order: Order, expired_message: str) -> Outcome:
        """Watch the stored transaction, without sending or rebuilding, until it lands (its
        result decides) or its blockhash expires unlanded (`internal_error`)."""
        return await self._follow_stored(
            order, lambda: self._fail(order, "internal_error", expired_message)
        )

    async def _follow_stored(self, order: Order, expired: Callable[[], Outcome]) -> Outcome:
        """Watch the order's stored transaction, without sending or rebuilding: landed (an
        error, or confirmed), `_settle` decides; expired unlanded (its blockhash past and the
        signature still unknown, asked again to be final), `expired()` does."""
        sig_text, _, last_valid = _stored_transaction(order)
        signature = Signature.from_string(sig_text)
        started = time.monotonic()
        while time.monotonic() - started <= self.timing.land_timeout_seconds:
            landed = await self.chain.status(signature)
            if landed is not None and (landed.err is not None or landed.confirmed):
                return await self._settle(order, landed)
            if (
                landed is None
                and await self.chain.block_height() > last_valid
                and await self.chain.status(signature) is None  # again: only now is it final
            ):
                return expired()
            await asyncio.sleep(self.timing.poll_seconds)
        raise TransientChainError("the transaction did not confirm in time", "confirmation_timeout")

    async def settle_dead_letter(self, order_id: uuid.UUID, requeued: int = 0) -> Outcome:
        """An order whose message reached the DLQ: its executor died on every receive (a
        transient failure would have ended it on the last one), or, without reserved
        concurrency, Lambda throttled the invocations (each throttle uses up a receive). An
        order no executor moved past `pending`/`triggered` goes back on the queue
        (`requeue`), at most MAX_DEAD_LETTER_REQUEUES times (`requeued` so far). Otherwise,
        before `submitted` no transaction exists, so it fails with that reason; after, its
        transaction is followed to the end once more, as a last attempt."""
        order = self.store.get_order(order_id)
        if order is None:
            return Outcome("missing")
        if order.status.terminal:
            return Outcome(str(order.status))
        if (
            order.status in (Status.PENDING, Status.TRIGGERED)
            and requeued < MAX_DEAD_LETTER_REQUEUES
        ):
            return Outcome(
                "requeue", reason="no executor started it (throttled, or died before routing)"
            )
        if order.status is Status.SUBMITTED:
            return await self.run(order_id, receive_count=self.cfg.max_attempts)
        return self._fail(
            order,
            "execution_crashed",
            f"the executor stopped without finishing on {self.cfg.max_attempts} deliveries;"
            " no transaction was sent",
        )

    async def _run(self, order_id: uuid.UUID, receive_count: int) -> Outcome:
        order = self.store.get_order(order_id)
        if order is None:
            logger.warning("order not found; dropping message", extra={"order_id": str(order_id)})
            return Outcome("missing")
        if receive_count > 1:
            # A redelivery may follow a crash between a status commit and its publish: publish
            # the latest event again. Delivery is by seq per subscriber, so nobody gets it twice.
            latest = self.store.latest_event(order_id)
            if latest is not None:
                self._emit(latest)
        try:
            return await self._advance(order)
        except Raced:
            return Outcome("raced")
        except PermanentChainError as exc:
            try:
                return await self._permanent(self._current(order), exc)
            except ChainError as late:  # following a refused limit order's transaction
                return self._transient(self._current(order), late, receive_count)
        except ChainError as exc:
            return self._transient(self._current(order), exc, receive_count)

    def _current(self, order: Order) -> Order:
        """The order as stored now (after a step that may have changed it raised)."""
        return self.store.get_order(order.id) or order

    async def _advance(self, order: Order) -> Outcome:
        if order.status.terminal or order.status is Status.WATCHING:
            return Outcome(str(order.status))  # over, or the watcher's (a stale message)
        if order.status in (Status.PENDING, Status.TRIGGERED):
            self._check_key_limits(order)
            order = await self._route(order)
        if order.status is Status.ROUTING:
            order = self._to_building(order)
        if order.status is Status.BUILDING:
            order = await self._sign_and_record(order, None)
        try:
            return await self._land(order)
        finally:
            await self._extend_lookup_table()

    async def _extend_lookup_table(self) -> None:
        """Add what the wallet's table lacked for this order's longer route (after the order,
        so it never waits on it): the next order on those pools can take that route once the
        extension's slot has passed. A failure is logged; routing asks again."""
        missing, self._lookup_missing = self._lookup_missing, ()
        if not missing:
            return
        try:
            table = await self.tables.extend(missing)
        except ChainError as exc:
            logger.warning("lookup table not extended", extra={"reason": str(exc)})
            return
        logger.info("lookup table extended", extra={"table": str(table), "added": len(missing)})

    def _moved(self, done: Transition | None) -> Order:
        """The order after a committed change (published), or Raced when the change lost."""
        if done is None:
            raise Raced
        self._emit(done.event)
        return done.order

    # -- steps ----------------------------------------------------------------------------------

    async def _route(self, order: Order) -> Order:
        started = time.perf_counter()
        # The blockhash the swap will carry is fetched alongside the pools and their quotes:
        # one round trip less before the transaction can be signed.
        decision, (blockhash, last_valid) = await asyncio.gather(
            self._quote(order), self.chain.latest_blockhash()
        )
        observability.milliseconds(Metric.ROUTING_TIME, time.perf_counter() - started)
        self._prepared = (
            order.id,
            builder.Prepared(
                dict(decision.states),
                blockhash,
                last_valid,
                decision.priority_fee_micro_lamports,
                lookup_tables=(
                    (decision.lookup_table.account(),)
                    if decision.lookup_table is not None and decision.route.lookup_table
                    else ()
                ),
            ),
        )
        self._lookup_missing = decision.lookup_missing
        route = decision.route
        main = route.legs[0]  # the largest leg names the order's venue and pool
        quotes = decision.quotes_json()
        quoted = [leg.amount_out_units for leg in route.legs]
        route_json = route.to_json(route_minimums(order, quoted, main.decimals_out))
        detail: dict[str, Any] = {
            "quotes": quotes,
            "venue": main.venue,
            "pool": main.pool,
            "amountOut": route_json["amountOut"],
            "route": route_json,
        }
        fields: dict[str, Any] = {
            "quotes": quotes,
            "route": route_json,
            "venue": main.venue,
            "pool": main.pool,
            "amount_out": route.amount_out_units,
            "decimals_out": main.decimals_out,
        }
        if order.amount_out_exact is not None:
            detail |= self._exact_out_terms(order, route, route_json)
        return self._moved(
            self.store.transition(
                order.id,
                order.status,  # pending (market) or triggered (limit, sniper)
                Status.ROUTING,
                detail=detail,
                fields=fields,
            )
        )

    def _exact_out_terms(
        self, order: Order, route: router.Route, route_json: dict[str, Any]
    ) -> dict[str, str]:
        """An exact-out order's quoted input and the most it may spend (`maxAmountIn`: the
        quote plus the order's slippage, rounded down; a limit order's amountOut / limitPrice),
        checked against the key's limits (they apply to maxAmountIn), written into the route's
        legs (each swap's own maximum and its exact output; a split's maximums sum to the
        order's) and returned for the routing frame."""
        legs = route.legs
        decimals_in = legs[0].decimals_in
        maxima = exact_out_leg_maxima(order, [leg.amount_in_units for leg in legs], decimals_in)
        max_units = sum(maxima)
        max_in = Decimal(max_units).scaleb(-decimals_in).normalize()
        if order.order_type != "limit":  # a limit order's was its limit, from submit
            try:
                self.store.reserve_input(order, max_in)
            except KeyLimitExceeded as exc:
                raise PermanentChainError(exc.message, exc.code) from exc
        quoted_units = sum(leg.amount_in_units for leg in legs)
        terms = {
            "quotedAmountIn": format(Decimal(quoted_units).scaleb(-decimals_in).normalize(), "f"),
            "maxAmountIn": format(max_in, "f"),
        }
        for item, leg, units in zip(route_json["legs"], legs, maxima, strict=True):
            item |= {
                "maxAmountIn": format(Decimal(units).scaleb(-decimals_in).normalize(), "f"),
                "maxAmountInUnits": str(units),
                "minAmountOut": item["quotedAmountOut"],
                "minAmountOutUnits": str(leg.amount_out_units),
            }
        route_json |= terms | {"otherAmountThreshold": terms["maxAmountIn"], "exactOut": True}
        return terms

    async def _quote(self, order: Order) -> router.Decision:
        """Quotes from the pair's pools (or the one the order pins), found in the container's
        memory or the pool cache; the chain is searched only when the pair's list is older than
        the refresh."""
        catalog = discovery.catalog_for(self.chain, self.store.pool, self.cfg)
        pools = await catalog.pools_for(
            order.mint_in,
            order.mint_out,
            order.pinned_pool,
            unlisted_ok=order.order_type == "sniper",  # its new pool, whatever VENUE_POOLS says
        )
        if order.amount_out_exact is not None:
            return await router.quote_exact_out_all(
                self.chain,
                pools,
                mint_in=order.mint_in,
                mint_out=order.mint_out,
                amount_out=order.amount_out_exact,
                priority_fee=self.fees,
                min_liquidity=self.cfg.min_pool_liquidity,
                max_split_legs=self.cfg.max_split_legs,
                min_split_gain_bps=self.cfg.min_split_gain_bps,
            )
        if order.amount_in is None:
            raise PermanentChainError("the order has neither amountIn nor amountOut", "no_route")
        return await router.quote_all_venues(
            self.chain,
            pools,
            mint_in=order.mint_in,
            mint_out=order.mint_out,
            amount_in=order.amount_in,
            priority_fee=self.fees,
            min_liquidity=self.cfg.min_pool_liquidity,
            max_split_legs=self.cfg.max_split_legs,
            min_split_gain_bps=self.cfg.min_split_gain_bps,
            lookup_table=self.tables.address() if self.cfg.max_split_legs > 2 else None,
        )

    def _to_building(self, order: Order) -> Order:
        if order.amount_out is None:
            raise PermanentChainError("the order was routed without an output", "no_route")
        min_out = order_minimum_out(order)
        detail: dict[str, Any] = {"venue": order.venue, "pool": order.pool}
        if order.route:  # every leg's own minimum: together they are the order's
            legs = order.route["legs"]
            min_out = Decimal(sum(int(leg["minAmountOutUnits"]) for leg in legs))
            detail["route"] = order.route
        self._check_limit_price_guard(order)
        check_quote_meets(order, min_out)
        if order.amount_out_exact is not None and order.route:
            check_input_within(order.route)
            detail["maxAmountIn"] = order.route["maxAmountIn"]
        detail["minAmountOut"] = format(min_out.scaleb(-(order.decimals_out or 0)).normalize(), "f")
        return self._moved(
            self.store.transition(
                order.id,
                Status.ROUTING,
                Status.BUILDING,
                detail=detail,
                fields={"min_amount_out": min_out},
            )
        )

    async def _sign_and_record(self, order: Order, replaces: str | None) -> Order:
        """Build and sign a fresh transaction and store it (status `submitted`) before any send."""
        attempts = order.attempts + 1
        if attempts > self.cfg.max_attempts:
            raise PermanentChainError(
                f"the transaction expired {self.cfg.max_attempts} times without landing",
                "blockhash_expired",
            )
        started = time.perf_counter()
        prepared = None
        if replaces is None and self._prepared is not None and self._prepared[0] == order.id:
            prepared = self._prepared[1]
        self._prepared = None
        signed = await builder.build_swap(
            self.chain, self.wallet, order, await self._fee_plan(order, prepared), prepared
        )
        observability.milliseconds(Metric.BUILDING_TIME, time.perf_counter() - started)
        sig = str(signed.transaction.signatures[0])
        detail: dict[str, Any] = {
            "txHash": sig,
            "explorerUrl": self._explorer(sig),
            "lastValidBlockHeight": signed.last_valid_block_height,
            "computeUnitLimit": signed.compute_unit_limit,
            "priorityFeeMicroLamports": signed.priority_fee_micro_lamports,
            "attempt": attempts,
        }
        if replaces:
            detail["replaces"] = replaces
        return self._moved(
            self.store.transition(
                order.id,
                order.status,
                Status.SUBMITTED,
                detail=detail,
                fields={
                    "tx_signature": sig,
                    "last_valid_block_height": signed.last_valid_block_height,
                    "signed_tx": bytes(signed.transaction),
                    "attempts": attempts,
                    "compute_unit_limit": signed.compute_unit_limit,
                    "priority_fee_micro_lamports": signed.priority_fee_micro_lamports,
                    "sent_slot": signed.simulated_slot,
                    "sends": 0,
                },
                where_signature=replaces,
            )
        )

    async def _fee_plan(self, order: Order, prepared: builder.Prepared | None) -> builder.FeePlan:
        """The priority fee the swap may pay: the price routing ranked with, or (a resumed order,
        a rebuild after expiry) the price now, under the engine's and the order's caps."""
        price = prepared.priority_fee_micro_lamports if prepared is not None else None
        if price is None and order.venue and order.pool:
            price = await self.fees.price(
                router.fee_accounts([PoolConfig(order.venue, order.pool)])
            )
        cap = self.cfg.priority_fee_max_lamports
        if order.max_priority_fee_lamports is not None:
            cap = min(cap, order.max_priority_fee_lamports)
        return builder.FeePlan(
            price if price is not None else self.cfg.priority_fee_min_micro_lamports,
            cap,
            self.cfg.compute_unit_margin,
        )

    async def _land(self, order: Order) -> Outcome:
        """Follow the stored transaction to `confirmed`, rebroadcasting the same bytes, and
        replace it only once its blockhash can no longer land."""
        started = time.monotonic()
        last_send = float("-inf")
        sends = 0  # of the stored bytes, by this invocation
        while True:
            sig_text, signed_tx, last_valid = _stored_transaction(order)
            signature = Signature.from_string(sig_text)
            landed = await self.chain.status(signature)
            if landed is not None:
                if landed.err is not None or landed.confirmed:
                    return await self._settle(order, landed, sends)
            elif await self.chain.block_height() > last_valid:
                # Look again after reading the height: only now is "unknown" final.
                if await self.chain.status(signature) is None:
                    if self._revoked(order):  # a new transaction would be a new send
                        raise PermanentChainError(
                            "its transaction expired unlanded and its API key was revoked:"
                            " no new one is sent",
                            REVOKED_CODE,
                        )
                    logger.info("blockhash expired unlanded; rebuilding", extra={"sig": sig_text})
                    order = await self._sign_and_record(order, sig_text)
                    last_send, sends = float("-inf"), 0
                continue
            elif time.monotonic() - last_send >= self.timing.resend_seconds:
                moved = None if last_send == float("-inf") else self._moved_on(order, sig_text)
                if moved is not None:
                    return moved
                await self._send(VersionedTransaction.from_bytes(signed_tx))
                last_send, sends = time.monotonic(), sends + 1
            if time.monotonic() - started > self.timing.land_timeout_seconds:
                raise TransientChainError(
                    "the transaction did not confirm in time", "confirmation_timeout"
                )
            await asyncio.sleep(self.timing.poll_seconds)

    def _moved_on(self, order: Order, sig_text: str) -> Outcome | None:
        """Before a rebroadcast: has another executor (a redelivery racing this one) moved the
        order on since we last looked? Its outcome if so (Raced if it replaced the transaction),
        else None."""
        current = self.store.get_order(order.id)
        if current is None or current.tx_signature != sig_text:
            raise Raced
        if current.status is not Status.SUBMITTED:
            return Outcome(str(current.status))
        return None

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

    async def _settle(self, order: Order, landed: Landed, sends: int = 0) -> Outcome:
        """The stored transaction landed: `confirmed` with what it filled, or `failed` with the
        error it landed with (and the fee it paid)."""
        sig_text, signed_tx, _ = _stored_transaction(order)
        found = await self._landed_transaction(sig_text)
        if landed.err is None:
            return self._confirm(order, sig_text, landed.slot, found, order.sends + sends)
        exc = transaction_error(
            json.dumps(error_json(landed.err)), instruction_program_ids(signed_tx)
        )
        fee = int(found["meta"]["fee"]) if found else None
        return self._fail(order, exc.code, exc.message, landed_slot=landed.slot, fee=fee)

    async def _landed_transaction(self, sig: str) -> dict[str, Any] | None:
        """getTransaction of a landed signature, a few polls long (a node may index it a moment
        after reporting its status); None when it cannot be read now: the order's outcome does
        not wait on its report."""
        for _ in range(FILL_READS):
            try:
                found = await self.chain.transaction_json(Signature.from_string(sig))
            except ChainError as exc:
                logger.warning("landed transaction not read", extra={"code": exc.code})
                return None
            if found is not None and found.get("meta") is not None:
                return found
            await asyncio.sleep(self.timing.poll_seconds)
        logger.warning("landed transaction not found", extra={"sig": sig})
        return None

    def _filled(self, order: Order, found: dict[str, Any], sends: int) -> dict[str, Any]:
        quote = builder.chosen_quote(order)
        fill = fills.realized(found, str(self.wallet.pubkey), order.mint_in, order.mint_out)
        decimals_in, decimals_out = _decimals(quote, "In"), _decimals(quote, "Out")
        route = order.route
        quoted = int(route["amountOutUnits"]) if route else int(quote["amountOutUnits"])
        filled = fills.filled_json(
            fill,
            decimals_in=decimals_in,
            decimals_out=decimals_out,
            quoted_out_units=quoted,
            sent_slot=order.sent_slot,
            sends=sends,
        )
        if route and route.get("exactOut"):
            filled |= exact_out_fill(route, fill.amount_in_units)
        legs = route["legs"] if route else []
        if legs and all("vaultOut" in leg for leg in legs):
            paid = fills.vault_outflows(found, [leg["vaultOut"] for leg in legs])
            filled["legs"] = [
                {
                    "venue": leg["venue"],
                    "pool": leg["pool"],
                    "amountIn": leg["amountIn"],
                    "amountOut": fills.plain(units, decimals_out),
                    "amountOutUnits": str(units),
                }
                for leg, units in zip(legs, paid, strict=True)
            ]
            if all("vaultIn" in leg for leg in legs):  # exact out: the input each leg took
                taken = fills.vault_outflows(found, [leg["vaultIn"] for leg in legs])
                for item, leg, units in zip(filled["legs"], legs, taken, strict=True):
                    item |= {
                        "amountIn": fills.plain(-units, decimals_in),
                        "amountInUnits": str(-units),
                        "quotedAmountIn": leg["quotedAmountIn"],
                    }
        return filled

    def _confirm(
        self,
        order: Order,
        sig: str,
        slot: int,
        found: dict[str, Any] | None = None,
        sends: int = 0,
    ) -> Outcome:
        detail: dict[str, Any] = {"txHash": sig, "explorerUrl": self._explorer(sig), "slot": slot}
        fields: dict[str, Any] = {"landed_slot": slot, "sends": sends}
        if found is not None:
            filled = self._filled(order, found, sends)
            detail["filled"] = filled
            fields |= {"filled": filled, "fee_lamports": filled["feeLamports"]}
        done = self.store.transition(
            order.id,
            Status.SUBMITTED,
            Status.CONFIRMED,
            detail=detail,
            fields=fields,
            where_signature=sig,
        )
        if done is None:
            return Outcome("raced")
        self._emit(done.event)
        observability.count(Metric.ORDER_CONFIRMED)
        # `order` was last changed when it became `submitted`: from then on it was the chain's.
        land = (done.event.at - order.updated_at).total_seconds()
        observability.milliseconds(Metric.LAND_TIME, land)
        observability.milliseconds(
            Metric.ORDER_TIME, (done.event.at - order.created_at).total_seconds()
        )
        return Outcome("confirmed")

    def _fail(
        self,
        order: Order,
        code: str,
        message: str,
        landed_slot: int | None = None,
        fee: int | None = None,
    ) -> Outcome:
        """End the order `failed` from the status it is in (`order` as last known). Its
        transaction (and the fee it paid) is named only if it landed (`landed_slot`). A limit
        order refused for price goes back to watching instead (`_rewatch`)."""
        if order.status.terminal:
            return Outcome(str(order.status))
        rewatched = self._rewatch(order, code, message, landed_slot, fee=fee)
        if rewatched is not None:
            return rewatched
        detail: dict[str, Any] = {"error": message, "code": code}
        fields: dict[str, Any] = {"failure_code": code, "failure_reason": message}
        if order.tx_signature and landed_slot is not None:
            detail |= {
                "txHash": order.tx_signature,
                "explorerUrl": self._explorer(order.tx_signature),
                "slot": landed_slot,
            }
            fields["landed_slot"] = landed_slot
            if fee is not None:
                detail["feeLamports"] = fee
                fields["fee_lamports"] = fee
        done = self.store.transition(
            order.id, order.status, Status.FAILED, detail=detail, fields=fields
        )
        if done is None:  # it moved meanwhile: report where it is
            current = self.store.get_order(order.id)
            return Outcome(str(current.status) if current else "missing")
        self._emit(done.event)
        observability.count(Metric.ORDER_FAILED)
        observability.count_by(Metric.ORDER_FAILED_BY_CODE, "code", code)
        logger.info("order failed", extra={"code": code})
        return Outcome("failed", reason=message)

    # -- limit orders refused for price ----------------------------------------------------------

    async def _permanent(self, order: Order, exc: PermanentChainError) -> Outcome:
        """A permanent failure. A limit order refused for price while its transaction is stored
        but not known to have landed (the node's preflight refused a send) is followed until
        that transaction lands or can no longer land before it goes back to watching: an
        earlier send may still be in flight, and the next trigger must not land a second swap."""
        if (
            refused_for_price(order, exc.code)
            and order.status is Status.SUBMITTED
            and order.tx_signature is not None
        ):
            return await self._settle_then_rewatch(order, exc)
        return self._fail(order, exc.code, exc.message)

    async def _settle_then_rewatch(self, order: Order, exc: PermanentChainError) -> Outcome:
        """Watch the stored transaction, without sending or rebuilding: landed, its result
        decides (confirmed; or failed on chain, which rewatches a price refusal); expired
        unlanded, the order goes back to watching."""

        def expired() -> Outcome:
            rewatched = self._rewatch(order, exc.code, exc.message, None, unlanded=True)
            return rewatched or self._fail(order, exc.code, exc.message)

        return await self._follow_stored(order, expired)

    def _rewatch(
        self,
        order: Order,
        code: str,
        message: str,
        landed_slot: int | None,
        *,
        unlanded: bool = False,
        fee: int | None = None,
    ) -> Outcome | None:
        """The hook where an order would fail: None to fail it as usual. A limit order whose
        swap was refused for price goes back to `watching` (guarded; the reason, and the
        cycle's transaction when it landed, in the event) if its transaction cannot land any
        more: none was stored (routing, building), it landed with the error (`landed_slot`),
        or it expired unlanded (`unlanded`). Its MAX_TRIGGERS-th refusal fails it
        `too_many_triggers`. A `watching` order is the watcher's: a stale message leaves it."""
        if order.status is Status.WATCHING:
            return Outcome(str(order.status))
        if not refused_for_price(order, code) or order.status not in REWATCH_FROM:
            return None
        if order.status is Status.SUBMITTED and landed_slot is None and not unlanded:
            return None
        if self._revoked(order):  # a revoked key's order is not watched (nor triggered) again
            return self._fail(
                order, REVOKED_CODE, f"its API key was revoked; last: {message}", landed_slot, fee
            )
        if order.triggers >= self.cfg.max_triggers:
            return self._fail(
                order,
                "too_many_triggers",
                f"refused for price on each of its {order.triggers} triggers (MAX_TRIGGERS"
                f" {self.cfg.max_triggers}); last: {message}",
                landed_slot,
                fee=fee,
            )
        detail: dict[str, Any] = {
            "reason": message,
            "code": code,
            "trigger": order.triggers,
            "triggersLeft": self.cfg.max_triggers - order.triggers,
        }
        if order.tx_signature:
            detail["txHash"] = order.tx_signature
            detail["txOutcome"] = "landed with an error" if landed_slot else "expired unlanded"
            if landed_slot is not None:
                detail |= {"explorerUrl": self._explorer(order.tx_signature), "slot": landed_slot}
                if fee is not None:
                    detail["feeLamports"] = fee
        # The cycle is over: its transaction (kept in the event above) is forgotten on the row,
        # so the next trigger routes, signs and lands afresh, with its own attempts.
        cleared = dict.fromkeys(
            (
                "tx_signature",
                "signed_tx",
                "last_valid_block_height",
                "landed_slot",
                "amount_out",
                "sent_slot",
                "fee_lamports",
            )
        )
        done = self.store.transition(
            order.id,
            order.status,
            Status.WATCHING,
            detail=detail,
            fields={**cleared, "attempts": 0},
            where_signature=order.tx_signature if order.status is Status.SUBMITTED else None,
        )
        if done is None:
            current = self.store.get_order(order.id)
            return Outcome(str(current.status) if current else "missing")
        self._emit(done.event)
        observability.count(Metric.ORDER_REWATCHED)
        logger.info("limit order back to watching", extra={"code": code})
        return Outcome("watching", reason=message)

    def _check_key_limits(self, order: Order) -> None:
        """The key's risk limits again, as they are now, before anything is quoted or signed
        (they were checked when the order was accepted; an operator may have lowered them)."""
        try:
            self.store.check_key_limits(order)
        except KeyLimitExceeded as exc:
            raise PermanentChainError(exc.message, exc.code) from exc

    def _check_limit_price_guard(self, order: Order) -> None:
        """A limit order whose limitPrice is more than the key's guard below the quote it is
        routed on is a fat finger (submit checked it against the quote then; the price may
        have moved since): failed before anything is signed."""
        if order.order_type != "limit" or order.limit_price is None or not order.amount_out:
            return
        amount_in = order.amount_in
        if order.amount_out_exact is not None and order.route:  # the input the quote takes
            amount_in = Decimal(order.route["quotedAmountIn"])
        if not amount_in:
            return
        quoted = Decimal(order.amount_out).scaleb(-(order.decimals_out or 0)) / amount_in
        try:
            limits.check_limit_price(
                order.limit_price, quoted, self.store.limit_price_guard(order.api_key_id)
            )
        except LimitPriceTooLow as exc:
            raise PermanentChainError(exc.message, "limit_price_guard") from exc

    def _revoked(self, order: Order) -> bool:
        return order.api_key_id is not None and self.store.key_revoked(order.api_key_id)

    def _transient(self, order: Order, exc: ChainError, receive_count: int) -> Outcome:
        if receive_count >= self.cfg.max_attempts:
            # The queue will not deliver again (redrive after 3 receives): end it here, with the
            # last reason, so no order sits in a non-terminal status once its message is in the DLQ.
            message = f"{exc.message} (after {receive_count} attempts)"
            if order.status is Status.SUBMITTED and order.tx_signature:
                # We could not see it land; it still might, until its blockhash expires. Say so,
                # with what a user needs to check it, rather than claim it never executed.
                message += (
                    f"; transaction {order.tx_signature} was sent and could still land until"
                    f" block height {order.last_valid_block_height}"
                )
            return self._fail(order, exc.code, message)
        logger.warning(
            "transient failure; will retry",
            extra={"order_id": str(order.id), "code": exc.code, "attempt": receive_count},
        )
        return Outcome("retry", retry=True, reason=exc.message)

    def _emit(self, event: Event) -> None:
        try:
            self.publish(event)
        except Exception:  # a notification failure must never undo a committed status
            logger.exception("publishing a status event failed")

    def _explorer(self, sig: str) -> str:
        return explorer_link(sig, self.cfg.solana_cluster, self.cfg.explorer_custom_url)


def _stored_transaction(order: Order) -> tuple[str, bytes, int]:
    """The signature, signed bytes and lastValidBlockHeight of a `submitted` order."""
    if order.tx_signature is None or order.signed_tx is None:
        raise PermanentChainError("a submitted order has no stored transaction", "invalid_state")
    return order.tx_signature, order.signed_tx, int(order.last_valid_block_height or 0)


def _decimals(quote: dict[str, Any], side: str) -> int:
    """A quote's decimals of one side ("In"/"Out"); quotes stored before they carried them
    give them as the ratio of base units to token units."""
    if f"decimals{side}" in quote:
        return int(quote[f"decimals{side}"])
    ratio = Decimal(quote[f"amount{side}Units"]) / Decimal(quote[f"amount{side}"])
    return len(str(int(ratio))) - 1


def refused_for_price(order: Order, code: str) -> bool:
    """A limit order's swap refused because the price is no longer at its limit."""
    return order.order_type == "limit" and code == "slippage_exceeded"


def order_minimum_out(order: Order) -> Decimal:
    """The swap's minimum output (tokenOut base units), which the chain enforces: a limit
    order's amountIn x limitPrice; otherwise the quote less the slippage, and for a sniper
    order with `maxPrice` never less than amountIn / maxPrice. Never less than 1 base unit,
    whatever the slippage: a DEX program accepts a swap that pays 0 when its minimum is 0
    (DAMM v2 keeps the input), and the engine never sends one."""
    decimals = order.decimals_out or 0
    if order.amount_out_exact is not None or order.amount_in is None:
        return max(Decimal(order.amount_out or 0), Decimal(1))  # exact out: the amount asked
    if order.order_type == "limit" and order.limit_price is not None:
        floor = Decimal(limit_min_out_units(order.amount_in, order.limit_price, decimals))
        return max(floor, Decimal(1))
    floor = minimum_out(order.amount_out or Decimal(0), order.slippage or DEFAULT_SLIPPAGE)
    if order.max_price is not None:
        floor = max(
            floor, Decimal(max_price_min_out_units(order.amount_in, order.max_price, decimals))
        )
    return max(floor, Decimal(1))


def route_minimums(order: Order, quoted: list[int], decimals_out: int) -> list[int]:
    """Each leg's minimum output (base units). One leg: the order's minimum
    (`order_minimum_out`). Several: each leg's quote less the order's slippage; a limit order's
    (or a sniper's maxPrice) floor shared among the legs in proportion to their quotes, rounded
    up, so the minimums sum to at least amountIn x limitPrice."""
    whole = replace(order, amount_out=Decimal(sum(quoted)), decimals_out=decimals_out)
    if len(quoted) == 1:
        return [int(order_minimum_out(whole))]
    if order.order_type == "limit" or order.max_price is not None:
        return split.leg_minimums(quoted, int(order_minimum_out(whole)))
    slippage = order.slippage or DEFAULT_SLIPPAGE
    return [max(1, int(minimum_out(Decimal(q), slippage))) for q in quoted]


def exact_out_max_in(order: Order, quoted_in_units: int, decimals_in: int) -> int:
    """An exact-out order's most input (tokenIn base units): a limit order's amountOut /
    limitPrice rounded down (its limit, which the chain then enforces), else the quoted input
    plus the order's slippage, rounded down (never below the quote)."""
    if order.order_type == "limit" and order.limit_price is not None and order.amount_out_exact:
        exact = (order.amount_out_exact / order.limit_price).scaleb(decimals_in)
        return int(exact.to_integral_value(rounding="ROUND_FLOOR"))
    factor = (Decimal(100) + (order.slippage or DEFAULT_SLIPPAGE)) / Decimal(100)
    padded = (Decimal(quoted_in_units) * factor).to_integral_value(rounding="ROUND_FLOOR")
    return max(int(padded), quoted_in_units)


def exact_out_leg_maxima(order: Order, quoted_in_units: list[int], decimals_in: int) -> list[int]:
    """Each exact-out leg's most input (tokenIn base units). One leg: the order's
    (`exact_out_max_in`). A split: each leg's quote plus the order's slippage; a limit order's
    amountOut / limitPrice (rounded down) shared among the legs in proportion to their quoted
    inputs, rounded down, so the maximums sum to at most the limit and the chain enforces it."""
    if len(quoted_in_units) == 1:
        return [exact_out_max_in(order, quoted_in_units[0], decimals_in)]
    if order.order_type == "limit" and order.limit_price is not None and order.amount_out_exact:
        cap = exact_out_max_in(order, sum(quoted_in_units), decimals_in)
        return split.leg_maximums(quoted_in_units, cap)
    return [exact_out_max_in(order, q, decimals_in) for q in quoted_in_units]


def check_input_within(route: dict[str, Any]) -> None:
    """An exact-out route's quoted input must be within its maximum, on every leg: a swap the
    program would refuse (ExceededSlippage) is not sent (a limit order goes back to watching)."""
    for leg in route["legs"]:
        if int(leg["quotedAmountInUnits"]) > int(leg["maxAmountInUnits"]):
            quoted, most = leg["quotedAmountIn"], leg["maxAmountIn"]
            if len(route["legs"]) > 1:
                quoted, most = route["quotedAmountIn"], route["maxAmountIn"]
            raise PermanentChainError(
                f"the best quote takes {quoted}, above the order's maximum input of {most}",
                "slippage_exceeded",
            )


def exact_out_fill(route: dict[str, Any], spent_units: int) -> dict[str, Any]:
    """What an exact-out fill adds: the quoted and maximum input beside the input actually
    spent (`amountIn`), and its slippage on the input side (positive = spent more than
    quoted)."""
    quoted = sum(int(leg["quotedAmountInUnits"]) for leg in route["legs"])
    slippage = float(round(Decimal(spent_units - quoted) / quoted * 10_000, 2)) if quoted else None
    return {
        "exactOut": True,
        "quotedAmountIn": route["quotedAmountIn"],
        "maxAmountIn": route["maxAmountIn"],
        "slippageBps": slippage,
    }


def check_quote_meets(order: Order, min_out: Decimal) -> None:
    """The route's quote must pay at least the minimum: a swap that the chain would refuse is
    not sent (a limit order whose price moved away goes back to watching instead)."""
    if order.amount_out is not None and Decimal(order.amount_out) < min_out:
        scale = order.decimals_out or 0
        quoted = format(Decimal(order.amount_out).scaleb(-scale).normalize(), "f")
        needed = format(min_out.scaleb(-scale).normalize(), "f")
        raise PermanentChainError(
            f"the best quote pays {quoted}, below the order's minimum of {needed}",
            "slippage_exceeded",
        )


def minimum_out(expected_out: Decimal, slippage_pct: Decimal) -> Decimal:
    """Worst acceptable output in base units: floor(expected * (1 - slippage%))."""
    factor = (Decimal(100) - Decimal(slippage_pct)) / Decimal(100)
    return (Decimal(expected_out) * factor).to_integral_value(rounding="ROUND_FLOOR")
