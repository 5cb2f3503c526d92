"""ws_connect handler: every WebSocket route with exact API Gateway events, real Postgres, and
moto's management API (on its server) standing in for the sockets."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from engine.connections import Connections
from engine.orders import Status
from engine.store import Store
from local.apigw import LambdaContext, ws_event
from local.handlers import fresh_module
from local.poller import wait_until
from tests.auth import as_key
from tests.inprocess import InProcessPublisher

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5}


@pytest.fixture(scope="module")
def env(moto_server: str, orders_queue: str, status_queue: str, database_url: str) -> Iterator[str]:
    saved = {k: os.environ.get(k) for k in ("WS_MANAGEMENT_ENDPOINT",)}
    os.environ["WS_MANAGEMENT_ENDPOINT"] = moto_server  # moto wants the bare root
    yield moto_server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def handler(env: str, api_key: Any) -> Any:
    """The ws_connect handler, called as the WebSocket API calls it for the session's key."""
    container = fresh_module("ws_connect")
    # No notify poller here: the backlog and status frames are delivered in-process.
    container.stream.publisher = InProcessPublisher(container.stream.fanout)
    return as_key(container.handler, api_key[0].id)


def posted(cid: str) -> list[dict[str, Any]]:
    """Frames moto recorded for a connection (it concatenates the posted bodies)."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    data = apigatewaymanagementapi_backends["123456789012"]["us-east-1"].connections[cid].data
    text, frames, decoder, i = data.decode(), [], json.JSONDecoder(), 0
    while i < len(text):
        frame, i = decoder.raw_decode(text, i)
        frames.append(frame)
    return frames


def wait_frames(cid: str, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The frames posted to `cid` once there are at least `n` (returns as soon as they are)."""
    wait_until(lambda: len(posted(cid)) >= n, timeout)
    return posted(cid)


# An order id no test creates; a constant, so that every test worker collects the same ids.
UNKNOWN_ORDER = "7906ecc7-50a8-49f0-bd05-ef5620a5bbe4"


def cid() -> str:
    return "c" + uuid.uuid4().hex[:15]


def call(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = handler(event, LambdaContext("ws_connect"))
    return reply


def connect(handler: Any, connection: str, **kw: Any) -> dict[str, Any]:
    return call(handler, ws_event("CONNECT", "$connect", connection, **kw))


def send(handler: Any, connection: str, body: Any, route: str = "$default") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return call(handler, ws_event("MESSAGE", route, connection, body=text))


def advance(store: Store, order_id: uuid.UUID, *path: Status) -> None:
    current = Status.PENDING
    for status in path:
        assert store.transition(order_id, current, status, detail={"step": str(status)})
        current = status


def test_connect_and_disconnect(handler: Any, store: Store) -> None:
    c = cid()
    assert connect(handler, c)["statusCode"] == 200
    row = Connections(store.pool).get(c)
    assert row is not None
    assert row.stage == "local"
    assert call(handler, ws_event("DISCONNECT", "$disconnect", c))["statusCode"] == 200
    assert Connections(store.pool).get(c) is None


@pytest.mark.parametrize(
    ("order_id", "status", "code"),
    [("not-a-uuid", 400, "invalid_request"), (UNKNOWN_ORDER, 404, "order_not_found")],
)
def test_connect_refuses_a_bad_order_id(
    handler: Any, store: Store, order_id: str, status: int, code: str
) -> None:
    c = cid()
    reply = connect(handler, c, query={"orderId": order_id})
    assert reply["statusCode"] == status
    assert json.loads(reply["body"])["error"]["code"] == code
    assert Connections(store.pool).get(c) is None


def test_connect_with_order_id_gets_the_backlog_after_connect(handler: Any, store: Store) -> None:
    sub = cid()
    send(handler, sub, ORDER)
    order_id = uuid.UUID(wait_frames(sub, 1)[0]["orderId"])
    advance(store, order_id, Status.ROUTING, Status.BUILDING)
    c = cid()
    assert connect(handler, c, query={"orderId": str(order_id)})["statusCode"] == 200
    frames = wait_frames(c, 3)
    assert [f["seq"] for f in frames] == [1, 2, 3]
    assert [f["status"] for f in frames] == ["pending", "routing", "building"]
    # The backlog's sender records how far it got after the frames are out: wait for that.
    assert wait_until(lambda: Connections(store.pool).delivered_seq(c, order_id) == 3, 30)


def test_submit_over_ws_streams_on_the_same_connection(handler: Any, store: Store) -> None:
    c = cid()
    connect(handler, c)
    assert send(handler, c, ORDER)["statusCode"] == 200
    [pending] = posted(c)
    assert pending["status"] == "pending"
    assert pending["seq"] == 1
    order_id = uuid.UUID(pending["orderId"])
    assert store.get_order(order_id) is not None
    assert Connections(store.pool).subscribers(order_id) == [c]


def test_idempotency_key_in_the_frame_or_the_connect_header(handler: Any, store: Store) -> None:
    c = cid()
    connect(handler, c)
    key = uuid.uuid4().hex
    send(handler, c, {**ORDER, "idempotencyKey": key})
    send(handler, c, {**ORDER, "idempotencyKey": key})
    frames = posted(c)
    assert len(frames) == 2
    assert frames[0]["orderId"] == frames[1]["orderId"]

    h = cid()
    connect(handler, h, headers={"Idempotency-Key": key})
    send(handler, h, ORDER)
    assert posted(h)[0]["orderId"] == frames[0]["orderId"]

    send(handler, h, {**ORDER, "amountIn": "0.02"})  # same key, other order
    assert posted(h)[-1]["error"]["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ("not json", "invalid_request", None),
        ("[1, 2]", "invalid_request", None),
        ('{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": NaN}', "invalid_request", None),
        ({"tokenIn": "SOL"}, "invalid_request", "tokenOut"),
        ({**ORDER, "tokenOut": "SOL"}, "invalid_request", "tokenOut"),
        ({**ORDER, "colour": "red"}, "invalid_request", "colour"),
        ({**ORDER, "idempotencyKey": 5}, "invalid_request", "idempotencyKey"),
        ({**ORDER, "baseIn": False}, "invalid_request", "baseIn"),
        ({**ORDER, "poolId": "the-best-one"}, "invalid_request", "poolId"),
        ({"action": "dance"}, "unknown_action", "action"),
    ],
)
def test_bad_frames_get_an_error_frame_and_200(
    handler: Any, store: Store, body: Any, code: str, field: str | None
) -> None:
    c = cid()
    connect(handler, c)
    assert send(handler, c, body)["statusCode"] == 200
    [frame] = posted(c)
    assert frame["error"]["code"] == code
    assert frame["error"].get("field") == field
    assert frame["error"]["message"]
    assert Connections(store.pool).get(c) is not None  # the connection stays


def test_a_pool_pin_the_cache_knows_is_wrong_gets_an_error_frame(
    handler: Any, store: Store
) -> None:
    """As over HTTP: an address the pool cache knows is no pool of the pair is refused on the
    socket (code `unknown_pool`, field `poolId`) and nothing is stored; one it does not know is
    accepted (routing reads it)."""
    from datetime import UTC, datetime

    from solders.keypair import Keypair

    from engine.pools import NotAPool, PoolCache

    bad, unknown = str(Keypair().pubkey()), str(Keypair().pubkey())
    PoolCache(store.pool).remember(
        "any-endpoint", [NotAPool(bad, "a token mint")], datetime.now(UTC)
    )
    c = cid()
    connect(handler, c)
    before, _ = store.list_orders(limit=100)
    send(handler, c, {**ORDER, "poolId": bad})
    [frame] = posted(c)
    assert frame["error"]["code"] == "unknown_pool"
    assert frame["error"]["field"] == "poolId"
    assert store.list_orders(limit=100)[0] == before
    send(handler, c, {**ORDER, "poolId": unknown})
    accepted = wait_frames(c, 2)[1]
    assert accepted["status"] == "pending"
    assert accepted["request"]["poolId"] == unknown


def test_subscribe_replays_after_from_seq(handler: Any, store: Store) -> None:
    producer = cid()
    send(handler, producer, ORDER)
    order_id = posted(producer)[0]["orderId"]
    advance(store, uuid.UUID(order_id), Status.ROUTING, Status.BUILDING, Status.SUBMITTED)
    c = cid()
    connect(handler, c)
    reply = send(
        handler, c, {"action": "subscribe", "orderId": order_id, "fromSeq": 2}, "subscribe"
    )
    assert reply["statusCode"] == 200
    assert [f["seq"] for f in posted(c)] == [3, 4]
    send(handler, c, {"action": "subscribe", "orderId": order_id}, "subscribe")  # fromSeq 0
    assert [f["seq"] for f in posted(c)] == [3, 4, 1, 2, 3, 4]
    top = {"action": "subscribe", "orderId": order_id, "fromSeq": 2**31 - 1}
    assert send(handler, c, top, "subscribe")["statusCode"] == 200  # the largest: nothing after
    assert len(posted(c)) == 6
    send(handler, c, {**top, "fromSeq": 2**31}, "subscribe")  # the probe's: on its own order
    assert posted(c)[-1]["error"]["field"] == "fromSeq"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"action": "subscribe"}, "invalid_request", "orderId"),
        ({"action": "subscribe", "orderId": "x"}, "invalid_request", "orderId"),
        ({"action": "subscribe", "orderId": UNKNOWN_ORDER}, "order_not_found", "orderId"),
        ({"action": "subscribe", "orderId": UNKNOWN_ORDER, "fromSeq": -1}, None, "fromSeq"),
        ({"action": "subscribe", "orderId": UNKNOWN_ORDER, "fromSeq": "1"}, None, "fromSeq"),
        # beyond the 32-bit seq columns: was "Internal server error"
        ({"action": "subscribe", "orderId": UNKNOWN_ORDER, "fromSeq": 2**31}, None, "fromSeq"),
        ({"action": "subscribe", "orderId": UNKNOWN_ORDER, "fromSeq": 2**63}, None, "fromSeq"),
        ({"action": "subscribe", "orderId": UNKNOWN_ORDER, "fromSeq": 10**30}, None, "fromSeq"),
        ({"action": "subscribe", "orderId": UNKNOWN_ORDER, "fromSeq": 1.5}, None, "fromSeq"),
        ({"action": "subscribe", "orderId": UNKNOWN_ORDER, "extra": 1}, None, "extra"),
    ],
)
def test_bad_subscribe_gets_an_error_frame(
    handler: Any, body: dict[str, Any], code: str | None, field: str
) -> None:
    c = cid()
    connect(handler, c)
    assert send(handler, c, body, "subscribe")["statusCode"] == 200
    [frame] = posted(c)
    assert frame["error"]["code"] == (code or "invalid_request")
    assert frame["error"]["field"] == field


def limit_order() -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": "0.01",
        "limitPrice": "1000",
        "expiresAt": expires,
    }


def test_a_limit_order_submitted_over_ws_streams_pending_then_watching(
    handler: Any, store: Store
) -> None:
    c = cid()
    connect(handler, c)
    assert send(handler, c, limit_order())["statusCode"] == 200
    frames = wait_frames(c, 2)
    assert [f["status"] for f in frames] == ["pending", "watching"]
    assert frames[1]["limitPrice"] == "1000"


def test_a_fat_finger_limit_price_over_ws_gets_an_error_frame_and_stores_nothing(
    env: str, api_key: Any, served_chain: Any, store: Store
) -> None:
    """As over HTTP: a limitPrice more than the key's guard (20 %) below the quote is refused."""
    from decimal import Decimal

    from tests.integration.test_key_limits import quoted_price

    price = quoted_price(api_key[0])  # the pair's quote; its pools are now in the pool cache
    handler = as_key(fresh_module("ws_connect").handler, api_key[0].id)
    c = cid()
    connect(handler, c)
    fat = format(price * Decimal("0.5"), "f")
    assert send(handler, c, {**limit_order(), "limitPrice": fat})["statusCode"] == 200
    [frame] = wait_frames(c, 1)
    assert (frame["error"]["code"], frame["error"]["field"]) == ("limit_price_guard", "limitPrice")
    assert Decimal(frame["error"]["quote"]) > Decimal(fat)
    with store.pool.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM orders WHERE limit_price = %s", (fat,))
        assert row.fetchone() == {"n": 0}


def test_cancel_over_ws_answers_with_the_cancelled_frame(handler: Any, store: Store) -> None:
    submitter, canceller = cid(), cid()
    connect(handler, submitter)
    send(handler, submitter, limit_order())
    order_id = wait_frames(submitter, 2)[0]["orderId"]
    # Another connection of the key cancels it: it gets the frame, and so does the follower.
    connect(handler, canceller)
    assert send(handler, canceller, {"action": "cancel", "orderId": order_id}, "cancel") == {
        "statusCode": 200
    }
    [frame] = posted(canceller)
    assert (frame["status"], frame["seq"], frame["orderId"]) == ("cancelled", 3, order_id)
    assert [f["status"] for f in wait_frames(submitter, 3)] == ["pending", "watching", "cancelled"]
    assert store.get_order(uuid.UUID(order_id)).status == Status.CANCELLED  # type: ignore[union-attr]
    # Again: the order is over.
    send(handler, canceller, {"action": "cancel", "orderId": order_id}, "cancel")
    assert posted(canceller)[-1]["error"]["code"] == "not_cancellable"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"action": "cancel"}, None, "orderId"),
        ({"action": "cancel", "orderId": "nope"}, None, "orderId"),
        ({"action": "cancel", "orderId": str(uuid.UUID(int=7))}, "order_not_found", "orderId"),
        ({"action": "cancel", "orderId": str(uuid.UUID(int=7)), "x": 1}, None, "x"),
    ],
)
def test_a_bad_cancel_gets_an_error_frame(
    handler: Any, body: dict[str, Any], code: str | None, field: str
) -> None:
    c = cid()
    connect(handler, c)
    assert send(handler, c, body, "cancel")["statusCode"] == 200
    [frame] = posted(c)
    assert frame["error"]["code"] == (code or "invalid_request")
    assert frame["error"]["field"] == field


def test_a_market_order_cannot_be_cancelled_over_ws(handler: Any, store: Store) -> None:
    c = cid()
    connect(handler, c)
    send(handler, c, ORDER)
    order_id = posted(c)[0]["orderId"]
    send(handler, c, {"action": "cancel", "orderId": order_id}, "cancel")
    assert posted(c)[-1]["error"]["code"] == "not_cancellable"
    assert store.get_order(uuid.UUID(order_id)).status == Status.PENDING  # type: ignore[union-attr]
