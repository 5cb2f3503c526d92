"""The order store on a real Postgres: creation, idempotency, guarded transitions, history."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from engine import db
from engine.errors import IdempotencyConflict, IllegalTransition, InvalidRequest
from engine.orders import OrderRequest, Status, parse_order_request
from engine.store import Store


def request(amount: str = "0.01") -> OrderRequest:
    return parse_order_request({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": amount})


def test_new_order_is_pending_with_its_first_event(store: Store) -> None:
    order, created = store.create_order(request())
    assert created
    assert order.status == "pending"
    assert order.seq == 1
    [event] = store.events(order.id)
    assert (event.seq, event.status) == (1, Status.PENDING)
    assert event.frame()["request"]["amountIn"] == "0.01"


def test_migrations_are_idempotent(store: Store) -> None:
    assert store.migrate() == []  # already applied by the fixture; a second run changes nothing


def test_migrations_apply_on_an_empty_database(pg_base_url: str) -> None:
    from local import postgres

    url = postgres.create_database(pg_base_url, "orders_mig")
    try:
        with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
            applied = db.migrate(conn)
            assert applied[:2] == ["001_orders", "002_connections"]
            assert applied == sorted(applied)
            assert db.migrate(conn) == []
            tables = {
                r["table_name"]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            }
            assert {"orders", "order_events", "connections"} <= tables
    finally:
        postgres.drop_database(pg_base_url, url)


def test_transitions_follow_the_arrows_and_number_events(store: Store) -> None:
    order, _ = store.create_order(request())
    oid = order.id
    store.transition(oid, Status.PENDING, Status.ROUTING, detail={"quotes": []})
    store.transition(oid, Status.ROUTING, Status.BUILDING, fields={"venue": "raydium_cpmm"})
    store.transition(oid, Status.BUILDING, Status.SUBMITTED, fields={"tx_signature": "sig"})
    store.transition(oid, Status.SUBMITTED, Status.CONFIRMED, detail={"txHash": "sig"})
    events = store.events(oid)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.status for e in events][-1] == Status.CONFIRMED
    row = store.get_order(oid)
    assert row
    assert row.status == "confirmed"
    assert row.venue == "raydium_cpmm"
    assert [e.seq for e in store.events(oid, after_seq=3)] == [4, 5]


def test_illegal_transition_is_refused_and_changes_nothing(store: Store) -> None:
    order, _ = store.create_order(request())
    with pytest.raises(IllegalTransition):
        store.transition(order.id, Status.PENDING, Status.CONFIRMED)
    assert (current := store.get_order(order.id))
    assert current.status == "pending"
    assert len(store.events(order.id)) == 1


def test_transition_from_a_status_the_order_is_not_in_does_nothing(store: Store) -> None:
    order, _ = store.create_order(request())
    assert store.transition(order.id, Status.ROUTING, Status.BUILDING) is None
    assert len(store.events(order.id)) == 1


def test_terminal_order_cannot_move(store: Store) -> None:
    order, _ = store.create_order(request())
    store.transition(order.id, Status.PENDING, Status.FAILED, detail={"error": "x"})
    with pytest.raises(IllegalTransition):
        store.transition(order.id, Status.FAILED, Status.ROUTING)


def test_racing_transitions_from_one_status_exactly_one_wins(store: Store) -> None:
    for _ in range(5):
        order, _ = store.create_order(request())
        barrier = threading.Barrier(8)

        def move(
            target: Status, oid: uuid.UUID = order.id, barrier: threading.Barrier = barrier
        ) -> Any:
            barrier.wait()
            return store.transition(oid, Status.PENDING, target)

        targets = [Status.ROUTING, Status.FAILED] * 4
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(move, targets))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        events = store.events(order.id)
        assert [e.seq for e in events] == [1, 2]
        assert events[1].status == winners[0].event.status


def test_events_are_append_only(store: Store, database_url: str) -> None:
    order, _ = store.create_order(request())
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute(
            "UPDATE order_events SET status = 'confirmed' WHERE order_id = %s", (order.id,)
        )


def test_same_idempotency_key_same_body_is_the_same_order(store: Store) -> None:
    key = f"k-{uuid.uuid4()}"
    first, created1 = store.create_order(request(), key)
    second, created2 = store.create_order(request(), key)
    assert created1
    assert not created2
    assert first.id == second.id


def test_same_idempotency_key_other_body_conflicts(store: Store) -> None:
    key = f"k-{uuid.uuid4()}"
    store.create_order(request(), key)
    with pytest.raises(IdempotencyConflict):
        store.create_order(request("0.02"), key)


def test_racing_submits_with_one_key_make_one_order(store: Store) -> None:
    key = f"race-{uuid.uuid4()}"
    barrier = threading.Barrier(10)

    def submit(_: int) -> uuid.UUID:
        barrier.wait()
        order, _created = store.create_order(request(), key)
        return order.id

    with ThreadPoolExecutor(10) as pool:
        ids = set(pool.map(submit, range(10)))
    assert len(ids) == 1
    with store.pool.connection() as conn:
        count = conn.execute(
            "SELECT count(*) AS n FROM orders WHERE idempotency_key = %s", (key,)
        ).fetchone()
    assert count
    assert count["n"] == 1


def test_overlong_idempotency_key_is_refused(store: Store) -> None:
    with pytest.raises(InvalidRequest):
        store.create_order(request(), "k" * 256)


def test_list_is_newest_first_with_a_cursor_that_walks_every_order(store: Store) -> None:
    made = [store.create_order(request())[0].id for _ in range(7)]
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page, cursor = store.list_orders(limit=3, cursor=cursor)
        seen.extend(o.id for o in page)
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    positions = [seen.index(i) for i in made]
    assert positions == sorted(positions, reverse=True)  # newest first


@pytest.mark.parametrize("cursor", ["garbage", "e30", "W10"])
def test_bad_cursor_is_a_clear_error(store: Store, cursor: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        store.list_orders(cursor=cursor)
    assert info.value.field == "cursor"
