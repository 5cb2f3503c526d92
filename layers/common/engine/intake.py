"""Accepting an order: validate, store as `pending`, enqueue. Shared by HTTP and WebSocket."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from engine import queue
from engine.errors import QueueUnavailable
from engine.orders import parse_order_request
from engine.store import Store

logger = Logger(child=True)


@dataclass(frozen=True)
class Accepted:
    order_id: uuid.UUID
    status: str
    created: bool  # False when an Idempotency-Key replay returned an existing order


def accept_order(store: Store, body: Any, idempotency_key: str | None = None) -> Accepted:
    """Raises InvalidRequest / IdempotencyConflict (nothing stored) or QueueUnavailable.

    The order is committed before it is enqueued, so an executor never receives an id it cannot
    read. If the enqueue fails the order is failed at once with the reason and its idempotency
    key is released, so the client's retry with the same key makes a fresh order.
    """
    request = parse_order_request(body)
    order, created = store.create_order(request, idempotency_key)
    order_id: uuid.UUID = order["id"]
    # A replay of an order whose first submit died between commit and enqueue re-enqueues it; a
    # racing duplicate may enqueue twice, which the executor's guarded transitions make harmless.
    if created or (order["enqueued_at"] is None and order["status"] == "pending"):
        try:
            queue.enqueue_order(order_id)
        except QueueUnavailable as exc:
            logger.warning("enqueue failed; order failed", extra={"order_id": str(order_id)})
            store.fail_unqueued(order_id, exc.message)
            raise QueueUnavailable(
                f"{exc.message}; order {order_id} was not accepted, retry later"
            ) from exc
        store.mark_enqueued(order_id)
    current = store.get_order(order_id)
    status = current["status"] if current else "pending"
    return Accepted(order_id=order_id, status=status, created=created)
