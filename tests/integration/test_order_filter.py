"""`GET /api/orders?status=`: the history filtered by status, through the real handler (Mangum)
with API Gateway v2 events, on real Postgres. Each test has an API key of its own, so it sees
exactly the orders it made."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from engine import db, keys
from engine.orders import Status
from engine.store import Store
from local.handlers import fresh_handler
from tests.auth import as_key
from tests.integration.test_submit_api import ORDER, call


@pytest.fixture
def submit(database_url: str, orders_queue: str, served_chain: Any) -> Any:
    """The submit handler for a fresh API key with no orders yet."""
    key, _ = keys.create_key(f"filter-{uuid.uuid4().hex[:6]}", pool=db.pool(database_url))
    return as_key(fresh_handler("submit"), key.id)


def submit_order(submit: Any) -> uuid.UUID:
    reply = call(submit, "POST", "/api/orders/execute", ORDER)
    assert reply["statusCode"] == 202, reply["json"]
    return uuid.UUID(reply["json"]["orderId"])


def move(store: Store, order_id: uuid.UUID, *path: Status) -> None:
    current = Status.PENDING
    for status in path:
        assert store.transition(order_id, current, status) is not None
        current = status


def listed(submit: Any, query: str) -> tuple[list[str], str | None]:
    reply = call(submit, "GET", f"/api/orders?{query}")
    assert reply["statusCode"] == 200, reply["json"]
    return [o["orderId"] for o in reply["json"]["orders"]], reply["json"]["nextCursor"]


def test_status_filter_lists_only_that_status_newest_first(submit: Any, store: Store) -> None:
    pending_old, routing, pending_new, failed = (submit_order(submit) for _ in range(4))
    move(store, routing, Status.ROUTING)
    move(store, failed, Status.ROUTING, Status.FAILED)

    assert listed(submit, "status=pending") == ([str(pending_new), str(pending_old)], None)
    assert listed(submit, "status=routing") == ([str(routing)], None)
    assert listed(submit, "status=failed") == ([str(failed)], None)
    assert listed(submit, "status=confirmed") == ([], None)
    everything, _ = listed(submit, "limit=10")
    assert len(everything) == 4  # no filter: every status


def test_status_filter_pages_with_the_cursor(submit: Any, store: Store) -> None:
    made = [submit_order(submit) for _ in range(5)]
    move(store, made[2], Status.ROUTING)  # one in another status, amid the pending ones
    newest_first = [str(o) for o in reversed(made) if o != made[2]]

    first, cursor = listed(submit, "status=pending&limit=2")
    assert first == newest_first[:2]
    assert cursor
    second, cursor = listed(submit, f"status=pending&limit=2&cursor={cursor}")
    assert second == newest_first[2:4]
    assert cursor is None  # exactly 4 pending: no empty page after the last


@pytest.mark.parametrize("value", ["done", "PENDING", "", "pending,failed", "confirmed "])
def test_an_unknown_status_is_400_on_the_status_field(submit: Any, value: str) -> None:
    reply = call(submit, "GET", f"/api/orders?status={value}")
    assert reply["statusCode"] == 400
    error = reply["json"]["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == "status"
    assert "pending" in error["message"]
    assert "confirmed" in error["message"]


def test_the_filter_is_documented_with_the_known_statuses(submit: Any) -> None:
    spec = call(submit, "GET", "/openapi.json")["json"]
    params = spec["paths"]["/api/orders"]["get"]["parameters"]
    [status] = [p for p in params if p["name"] == "status"]
    assert status["in"] == "query"
    assert not status.get("required", False)
    assert status["schema"]["enum"] == [s.value for s in Status]


def test_store_refuses_an_unknown_status(store: Store) -> None:
    from engine.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        store.list_orders(status="done")
    assert refused.value.field == "status"
