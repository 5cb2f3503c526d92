"""Limit and sniper orders through the real submit handler and real Postgres (issue 12): accepted
`watching` and not queued, the open-order limit apart from the in-flight one, cancel and its
409s, the list filter, and cancel racing a trigger on the guarded transition."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from engine import db, keys
from engine.orders import Status, parse_order_request
from engine.store import Store
from local.chain import LocalChain
from local.handlers import fresh_handler
from tests.auth import as_key
from tests.integration.test_submit_api import call, queued_ids

MARKET = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5}


def in_a_day() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")


def limit_body(price: str = "1000", **extra: Any) -> dict[str, Any]:
    return {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": "0.01",
        "limitPrice": price,
        "expiresAt": in_a_day(),
        **extra,
    }


def sniper_body(**extra: Any) -> dict[str, Any]:
    return {
        "orderType": "sniper",
        "tokenIn": "USDC",
        "tokenOut": "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263",
        "amountIn": "5",
        "expiresAt": in_a_day(),
        **extra,
    }


@pytest.fixture
def new_key(database_url: str) -> Callable[..., tuple[keys.ApiKey, str]]:
    def make(max_in_flight: int = 20, max_open_orders: int = 100) -> tuple[keys.ApiKey, str]:
        return keys.create_key(
            f"t-{uuid.uuid4().hex[:6]}",
            max_in_flight,
            pool=db.pool(database_url),
            max_open_orders=max_open_orders,
        )

    return make


@pytest.fixture
def raw_submit(database_url: str, orders_queue: str, served_chain: Any) -> Any:
    return fresh_handler("submit")


@pytest.fixture
def submit(raw_submit: Any, new_key: Callable[..., tuple[keys.ApiKey, str]]) -> Any:
    return as_key(raw_submit, new_key()[0].id)


def test_the_database_allows_exactly_the_statuses_of_the_code(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = 'orders_status_check'"
        ).fetchone()
    assert row is not None
    assert set(re.findall(r"'(\w+)'", row[0])) == {s.value for s in Status}


def test_a_limit_order_is_accepted_watching_and_not_queued(
    submit: Any, orders_queue: str, store: Store
) -> None:
    queued_ids(orders_queue)
    reply = call(submit, "POST", "/api/orders/execute", limit_body("151.2"))
    assert reply["statusCode"] == 202, reply["json"]
    assert reply["json"]["status"] == "watching"
    order_id = reply["json"]["orderId"]
    assert order_id not in queued_ids(orders_queue)
    detail = call(submit, "GET", f"/api/orders/{order_id}")["json"]
    assert detail["status"] == "watching"
    assert (detail["orderType"], detail["limitPrice"], detail["triggers"]) == ("limit", "151.2", 0)
    assert detail["expiresAt"].endswith("Z")
    assert "slippage" not in detail["request"]
    assert [e["status"] for e in detail["events"]] == ["pending", "watching"]
    assert detail["events"][1]["limitPrice"] == "151.2"
    assert detail["events"][1]["expiresAt"] == detail["expiresAt"]


def test_a_limit_order_with_slippage_is_a_400_and_stores_nothing(submit: Any, store: Store) -> None:
    before, _ = store.list_orders(limit=100, api_key_id=submit.api_key_id)
    reply = call(submit, "POST", "/api/orders/execute", limit_body(slippage=0.5))
    assert reply["statusCode"] == 400
    assert reply["json"]["error"]["field"] == "slippage"
    bad_expiry = call(submit, "POST", "/api/orders/execute", limit_body(expiresAt="tomorrow"))
    assert (bad_expiry["statusCode"], bad_expiry["json"]["error"]["field"]) == (400, "expiresAt")
    after, _ = store.list_orders(limit=100, api_key_id=submit.api_key_id)
    assert after == before == []


def test_a_sniper_order_watches_from_the_chains_slot_at_acceptance(
    submit: Any, store: Store, served_chain: tuple[LocalChain, str]
) -> None:
    chain, _ = served_chain
    before = chain.ledger.slot
    reply = call(submit, "POST", "/api/orders/execute", sniper_body(maxPrice="0.5"))
    after = chain.ledger.slot
    assert reply["statusCode"] == 202, reply["json"]
    assert reply["json"]["status"] == "watching"
    order = store.get_order(uuid.UUID(reply["json"]["orderId"]))
    assert order is not None
    assert order.watch_from_slot is not None
    assert before - 2 <= order.watch_from_slot <= after  # confirmed: a block or so behind
    events = store.events(order.id)
    assert events[-1].detail["watchFromSlot"] == order.watch_from_slot
    assert events[-1].detail["maxPrice"] == "0.5"


def test_watching_orders_count_against_max_open_orders_not_in_flight(
    raw_submit: Any, new_key: Callable[..., tuple[keys.ApiKey, str]], orders_queue: str
) -> None:
    key, _ = new_key(max_in_flight=1, max_open_orders=2)
    submit = as_key(raw_submit, key.id)
    for _ in range(2):
        assert call(submit, "POST", "/api/orders/execute", limit_body())["statusCode"] == 202
    third = call(submit, "POST", "/api/orders/execute", limit_body())
    assert third["statusCode"] == 429
    assert third["json"]["error"]["code"] == "too_many_open_orders"
    # Two watching orders do not take the one in-flight slot a market order needs ...
    assert call(submit, "POST", "/api/orders/execute", MARKET)["statusCode"] == 202
    second = call(submit, "POST", "/api/orders/execute", MARKET)
    assert second["statusCode"] == 429
    assert second["json"]["error"]["code"] == "too_many_orders_in_flight"
    queued_ids(orders_queue)


def test_an_idempotent_replay_of_a_limit_order_is_the_same_order(submit: Any) -> None:
    body = limit_body()
    first = call(submit, "POST", "/api/orders/execute", body, idempotency_key="lim-1")
    again = call(submit, "POST", "/api/orders/execute", body, idempotency_key="lim-1")
    assert first["statusCode"] == again["statusCode"] == 202
    assert again["headers"].get("idempotent-replayed") == "true"
    assert first["json"]["orderId"] == again["json"]["orderId"]
    assert again["json"]["status"] == "watching"


def test_cancel_ends_a_watching_order_once(
    submit: Any, raw_submit: Any, new_key: Callable[..., tuple[keys.ApiKey, str]]
) -> None:
    order_id = call(submit, "POST", "/api/orders/execute", limit_body())["json"]["orderId"]
    other = as_key(raw_submit, new_key()[0].id)
    assert call(other, "DELETE", f"/api/orders/{order_id}")["statusCode"] == 404

    done = call(submit, "DELETE", f"/api/orders/{order_id}")
    assert done["statusCode"] == 200
    assert done["json"] == {"orderId": order_id, "status": "cancelled"}
    again = call(submit, "DELETE", f"/api/orders/{order_id}")
    assert again["statusCode"] == 409
    assert again["json"]["error"]["code"] == "not_cancellable"
    detail = call(submit, "GET", f"/api/orders/{order_id}")["json"]
    assert [e["status"] for e in detail["events"]] == ["pending", "watching", "cancelled"]
    assert detail["status"] == "cancelled"


def test_market_orders_and_triggered_orders_are_not_cancellable(
    submit: Any, store: Store, orders_queue: str
) -> None:
    market = call(submit, "POST", "/api/orders/execute", MARKET)["json"]["orderId"]
    refused = call(submit, "DELETE", f"/api/orders/{market}")
    assert (refused["statusCode"], refused["json"]["error"]["code"]) == (409, "not_cancellable")
    assert "market order" in refused["json"]["error"]["message"]
    assert store.get_order(uuid.UUID(market)).status == Status.PENDING  # type: ignore[union-attr]

    limit = call(submit, "POST", "/api/orders/execute", limit_body())["json"]["orderId"]
    assert store.transition(uuid.UUID(limit), Status.WATCHING, Status.TRIGGERED)
    late = call(submit, "DELETE", f"/api/orders/{limit}")
    assert (late["statusCode"], late["json"]["error"]["code"]) == (409, "not_cancellable")
    assert "triggered" in late["json"]["error"]["message"]
    assert call(submit, "DELETE", "/api/orders/not-a-uuid")["statusCode"] == 400
    assert call(submit, "DELETE", f"/api/orders/{uuid.uuid4()}")["statusCode"] == 404
    queued_ids(orders_queue)


def test_the_list_filters_watching_and_cancelled_orders(submit: Any, orders_queue: str) -> None:
    watching = call(submit, "POST", "/api/orders/execute", limit_body())["json"]["orderId"]
    cancelled = call(submit, "POST", "/api/orders/execute", limit_body())["json"]["orderId"]
    call(submit, "DELETE", f"/api/orders/{cancelled}")
    call(submit, "POST", "/api/orders/execute", MARKET)

    def listed(status: str) -> list[str]:
        reply = call(submit, "GET", f"/api/orders?status={status}")
        assert reply["statusCode"] == 200
        return [o["orderId"] for o in reply["json"]["orders"]]

    assert listed("watching") == [watching]
    assert listed("cancelled") == [cancelled]
    assert listed("expired") == []
    assert call(submit, "GET", "/api/orders?status=open")["statusCode"] == 400
    queued_ids(orders_queue)


def test_cancel_racing_a_trigger_leaves_exactly_one_outcome(
    store: Store, new_key: Callable[..., tuple[keys.ApiKey, str]]
) -> None:
    """Each order is cancelled and triggered at the same moment from two threads: exactly one
    transition commits, the other is refused, and the history holds only the winner's event."""
    key, _ = new_key()
    request = parse_order_request(limit_body())
    ids = [store.create_order(request, None, key.id)[0].id for _ in range(40)]
    outcomes: dict[uuid.UUID, list[str]] = {oid: [] for oid in ids}

    def cancel(oid: uuid.UUID, start: threading.Barrier) -> None:
        start.wait()
        try:
            store.cancel(oid, key.id)
            outcomes[oid].append("cancelled")
        except Exception as exc:
            outcomes[oid].append(type(exc).__name__)

    def trigger(oid: uuid.UUID, start: threading.Barrier) -> None:
        start.wait()
        won = store.transition(oid, Status.WATCHING, Status.TRIGGERED, fields={"triggers": 1})
        outcomes[oid].append("triggered" if won else "lost")

    for oid in ids:
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=cancel, args=(oid, start)),
            threading.Thread(target=trigger, args=(oid, start)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for oid, seen in outcomes.items():
        order = store.get_order(oid)
        assert order is not None
        assert sorted(seen) in (["cancelled", "lost"], ["NotCancellable", "triggered"]), seen
        assert order.status == ("cancelled" if "cancelled" in seen else "triggered")
        assert [e.status for e in store.events(oid)] == ["pending", "watching", order.status]
