"""Accepting an order: validate, store, and hand it on. Shared by HTTP and WebSocket.

A market order is stored `pending` and enqueued for the executors. A limit or sniper order is
stored and moved to `watching` in the same transaction, and is not queued: the watcher
(functions/watch) triggers it. A sniper order also records the chain's slot (getSlot) it
watches new pools from. A limit order's limitPrice is first held against the pair's current
quote (`engine.spot`, the key's limitPriceGuard): a fat finger is refused, and so is the order
when the RPC does not answer (503; an unchecked limit is not accepted).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from psycopg import OperationalError

from engine import limits, observability
from engine.errors import QueueUnavailable, RpcUnavailable, UnknownPool
from engine.metrics import Metric
from engine.orders import OrderBody, OrderRequest
from engine.pools import PoolCache
from engine.queue import OrdersQueue
from engine.store import Store
from engine.tokens import BY_MINT

# The functions that take orders validate them from their first request: build the model at
# their init (it is deferred for the functions that only import engine.orders).
OrderBody.model_rebuild(force=True)

logger = Logger(child=True)


@dataclass(frozen=True)
class Accepted:
    order_id: uuid.UUID
    status: str
    created: bool  # False when an Idempotency-Key replay returned an existing order


class Intake:
    """The store and queue an order goes through on its way in, and the pool cache a pinned
    order's `poolId` is checked against."""

    def __init__(
        self,
        store: Store,
        queue: OrdersQueue,
        pools: PoolCache | None = None,
        chain_slot: Callable[[], int] | None = None,
        limit_quote: Callable[[OrderRequest], Decimal | None] | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.pools = pools or PoolCache(store.pool)
        # The cluster's slot now (a sniper order watches for pools created from it on); None:
        # no RPC configured, sniper orders are refused.
        self.chain_slot = chain_slot
        # A limit order's pair's current price (tokenOut per tokenIn; None: no known pool of
        # the pair, routing checks it); None: no RPC configured, limit orders are refused.
        self.limit_quote = limit_quote

    def accept(
        self, body: Any, idempotency_key: str | None = None, api_key_id: uuid.UUID | None = None
    ) -> Accepted:
        """Raises InvalidRequest (UnknownPool for a `poolId` the pool cache knows is not a pool
        of the pair) / IdempotencyConflict / TooManyOrdersInFlight / TooManyOpenOrders /
        ApiKeyRevoked (nothing stored), QueueUnavailable or RpcUnavailable (a sniper order's
        slot could not be read; nothing stored). The order belongs to `api_key_id`.

        The order is committed before it is enqueued, so an executor never receives an id it
        cannot read. If the enqueue fails the order is failed at once with the reason and its
        idempotency key is released, so the client's retry with the same key makes a fresh order.
        """
        request = OrderBody.parse(body)
        unlisted = {
            field: token.mint
            for field, token in (("tokenIn", request.token_in), ("tokenOut", request.token_out))
            if token.mint not in BY_MINT
        }
        if unlisted:  # no chain read: only what the pool cache already knows
            self.pools.check_not_pools(unlisted)
        if request.pool_id is not None:
            self._check_pin(request.pool_id, request, idempotency_key, api_key_id)
        if request.watched:
            return self._watch(request, idempotency_key, api_key_id)
        order, created = self.store.create_order(request, idempotency_key, api_key_id)
        # A replay of an order whose first submit died between commit and enqueue re-enqueues
        # it; a racing duplicate may enqueue twice, which the executor's guarded transitions
        # make harmless.
        if created or (order.enqueued_at is None and order.status == "pending"):
            try:
                self.queue.enqueue(order.id)
            except QueueUnavailable as exc:
                logger.warning("enqueue failed; order failed", extra={"order_id": str(order.id)})
                self.store.fail_unqueued(order.id, exc.message)
                raise QueueUnavailable(
                    f"{exc.message}; order {order.id} was not accepted, retry later"
                ) from exc
            try:
                self.store.mark_enqueued(order.id)
            except OperationalError:
                # Stored and queued: the order is accepted whatever happens to this bookkeeping
                # (without it, an Idempotency-Key replay enqueues again, which is harmless).
                logger.warning(
                    "could not mark the order enqueued", extra={"order_id": str(order.id)}
                )
                return Accepted(order_id=order.id, status="pending", created=created)
        if created:  # the reply describes what was accepted; the executor may already be past it
            observability.count(Metric.ORDER_ACCEPTED)
            return Accepted(order_id=order.id, status="pending", created=True)
        try:
            current = self.store.get_order(order.id)
        except OperationalError:
            current = None
        status = str(current.status) if current else "pending"
        return Accepted(order_id=order.id, status=status, created=created)

    def _watch(
        self, request: OrderRequest, idempotency_key: str | None, api_key_id: uuid.UUID | None
    ) -> Accepted:
        """A limit or sniper order: stored `watching` (nothing is queued until it triggers)."""
        slot = None
        if request.order_type == "limit" and not self._replay(request, idempotency_key, api_key_id):
            self._check_limit_price(request, api_key_id)
        if request.order_type == "sniper":
            if self.chain_slot is None:
                raise RpcUnavailable("sniper orders need SOLANA_RPC_URL, which is not set")
            slot = self.chain_slot()
        order, created = self.store.create_order(request, idempotency_key, api_key_id, slot)
        if created:
            observability.count(Metric.ORDER_ACCEPTED)
            return Accepted(order_id=order.id, status=str(order.status), created=True)
        try:
            current = self.store.get_order(order.id) or order
        except OperationalError:
            current = order
        return Accepted(order_id=order.id, status=str(current.status), created=False)

    def _replay(
        self, request: OrderRequest, idempotency_key: str | None, api_key_id: uuid.UUID | None
    ) -> bool:
        """An Idempotency-Key replay of an accepted order: it answers with that order, whatever
        the price did since."""
        if idempotency_key is None:
            return False
        earlier = self.store.order_by_idempotency_key(idempotency_key, api_key_id)
        return earlier is not None and earlier.request_hash == request.fingerprint()

    def _check_limit_price(self, request: OrderRequest, api_key_id: uuid.UUID | None) -> None:
        """LimitPriceTooLow (422) when the limitPrice is more than the key's limitPriceGuard
        below the pair's current quote; RpcUnavailable (503) when that quote cannot be read."""
        if request.limit_price is None:
            return
        if self.limit_quote is None:
            raise RpcUnavailable("limit orders need SOLANA_RPC_URL, which is not set")
        quoted = self.limit_quote(request)
        if quoted is None:
            return  # the engine knows no pool of the pair yet: checked when it is routed
        limits.check_limit_price(
            request.limit_price, quoted, self.store.limit_price_guard(api_key_id)
        )

    def _check_pin(
        self,
        pool_id: str,
        request: OrderRequest,
        idempotency_key: str | None,
        api_key_id: uuid.UUID | None,
    ) -> None:
        """No chain here: only what the pool cache already knows refuses a pinned pool. A
        replay of an order accepted before the cache learnt its pool is still a replay."""
        try:
            self.pools.check_pin(pool_id, request.token_in.mint, request.token_out.mint)
        except UnknownPool:
            if self._replay(request, idempotency_key, api_key_id):
                return
            raise
