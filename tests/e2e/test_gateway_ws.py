"""The gateway under uvicorn with the real submit and ws_connect handlers, the status-events queue
on LocalStack consumed by the notify handler through the local poller, and real Postgres. Status is
driven with `store.transition` + `notify.publish` (the executor is not under test here). Every
request carries the session's API key (the gateway runs the authorizer, as API Gateway does);
tests/e2e/test_api_keys_gateway.py covers what happens without one."""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from engine import keys
from engine.config import Settings
from engine.connections import Connections
from engine.notify import REVOKED_MESSAGE, StatusQueue
from engine.orders import Status
from engine.store import Store
from local.gateway import Gateway, Served, serve_in_thread
from local.poller import Poller, wait_until
from local.ports import free_port
from local.stack import create_status_queues

pytestmark = pytest.mark.e2e
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5}
PATH = [Status.ROUTING, Status.BUILDING, Status.SUBMITTED, Status.CONFIRMED]
ENV_KEYS = ("WS_MANAGEMENT_ENDPOINT", "WS_URL", "STATUS_QUEUE_URL")


KEY = {"x-api-key": ""}  # the session's API key, set by the `stack` fixture
LIMITS_SECONDS = 1.5  # the gateway's head and body read timeouts here (10 s by default)


@pytest.fixture(scope="module")
def stack(database_url: str, localstack: str, orders_queue: str, api_key: Any) -> Iterator[Served]:
    KEY["x-api-key"] = api_key[1]
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    sqs = boto3.client("sqs", endpoint_url=localstack)
    status = create_status_queues(sqs, prefix=f"e2e{uuid.uuid4().hex[:6]}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(16)
    os.environ.update(  # before the gateway starts its functions' containers
        WS_MANAGEMENT_ENDPOINT=f"{base}/{secret}",
        WS_URL=base.replace("http", "ws") + "/api/orders/execute",
        STATUS_QUEUE_URL=status.status,
    )
    gateway = Gateway(management_secret=secret, body_timeout=LIMITS_SECONDS)
    served = serve_in_thread(gateway.app, port=port, head_timeout=LIMITS_SECONDS)
    poller = Poller.from_template(sqs, status.status, "StatusEventsQueue", "notify").start()
    yield served
    poller.stop()
    served.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def ws_url(served: Served, path: str = "/api/orders/execute") -> str:
    return served.url.replace("http", "ws") + path


def open_ws(url: str) -> ClientConnection:
    return connect(url, open_timeout=30, additional_headers=KEY).__enter__()


def frames(ws: ClientConnection, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    return [json.loads(ws.recv(timeout=timeout)) for _ in range(n)]


def quiet(ws: ClientConnection, wait: float = 0.5) -> bool:
    try:
        ws.recv(timeout=wait)
    except TimeoutError:
        return True
    return False


def advance(store: Store, order_id: uuid.UUID, start: int, stop: int) -> None:
    """Move the order along PATH[start:stop], publishing each event as the executor does."""
    for i in range(start, stop):
        current = Status.PENDING if i == 0 else PATH[i - 1]
        done = store.transition(order_id, current, PATH[i], detail={"step": i + 2})
        assert done is not None
        # -> status queue -> poller -> notify -> management API
        StatusQueue.from_settings(Settings.from_env()).publish(done.event)


def post_order(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        served.url + "/api/orders/execute",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **KEY},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 202
        result: dict[str, Any] = json.loads(reply.read())
        return result


def submit_ws(ws: ClientConnection) -> uuid.UUID:
    ws.send(json.dumps(ORDER))
    [pending] = frames(ws, 1)
    assert pending["status"] == "pending"
    assert pending["seq"] == 1
    return uuid.UUID(pending["orderId"])


def test_http_submit_then_follow_with_order_id(stack: Served, store: Store) -> None:
    accepted = post_order(stack, ORDER)
    assert accepted["wsUrl"] == f"{ws_url(stack)}?orderId={accepted['orderId']}"
    ws = open_ws(accepted["wsUrl"])
    try:
        [pending] = frames(ws, 1)  # the backlog, delivered by notify after the upgrade
        assert (pending["seq"], pending["status"]) == (1, "pending")
        advance(store, uuid.UUID(accepted["orderId"]), 0, 4)
        rest = frames(ws, 4)
        assert [f["seq"] for f in rest] == [2, 3, 4, 5]
        assert [f["status"] for f in rest] == ["routing", "building", "submitted", "confirmed"]
        assert quiet(ws)
    finally:
        ws.close()


def test_ws_submit_streams_on_the_same_connection(stack: Served, store: Store) -> None:
    ws = open_ws(ws_url(stack))
    try:
        order_id = submit_ws(ws)
        advance(store, order_id, 0, 4)
        assert [f["seq"] for f in frames(ws, 4)] == [2, 3, 4, 5]
        assert quiet(ws)
        request = urllib.request.Request(f"{stack.url}/api/orders/{order_id}", headers=KEY)
        reply = urllib.request.urlopen(request, timeout=10)
        assert json.loads(reply.read())["status"] == "confirmed"
    finally:
        ws.close()


def test_late_subscriber_and_reconnect_replay_without_gap_or_dup(
    stack: Served, store: Store
) -> None:
    first = open_ws(ws_url(stack, "/"))
    order_id = submit_ws(first)
    advance(store, order_id, 0, 2)
    assert [f["seq"] for f in frames(first, 2)] == [2, 3]
    first.close()  # drops after seq 3

    late = open_ws(ws_url(stack, "/ws"))
    again = open_ws(ws_url(stack))
    try:
        late.send(json.dumps({"action": "subscribe", "orderId": str(order_id)}))
        again.send(json.dumps({"action": "subscribe", "orderId": str(order_id), "fromSeq": 3}))
        assert [f["seq"] for f in frames(late, 3)] == [1, 2, 3]
        assert quiet(again, 0.3)  # nothing after seq 3 yet
        advance(store, order_id, 2, 4)
        assert [f["seq"] for f in frames(late, 2)] == [4, 5]
        assert [f["seq"] for f in frames(again, 2)] == [4, 5]
        assert quiet(late)
        assert quiet(again, 0.1)
    finally:
        late.close()
        again.close()


def test_bad_frames_get_error_frames_and_the_socket_survives(stack: Served) -> None:
    ws = open_ws(ws_url(stack))
    try:
        for bad, code in [
            ("not json", "invalid_request"),
            ('{"tokenIn": "SOL"}', "invalid_request"),
            ('{"action": "dance"}', "unknown_action"),
            ('{"action": "subscribe", "orderId": "nope"}', "invalid_request"),
            (json.dumps({**ORDER, "pad": "x" * 40_000}), "frame_too_large"),
        ]:
            ws.send(bad)
            [frame] = frames(ws, 1)
            assert frame["error"]["code"] == code, bad
        submit_ws(ws)  # still open and working
    finally:
        ws.close()


def test_connect_with_a_bad_order_id_is_refused(stack: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_ws(ws_url(stack) + "?orderId=not-a-uuid")
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body or b"{}")["error"]["field"] == "orderId"


def test_closed_connections_are_cleaned_up(stack: Served, store: Store) -> None:
    conns = Connections(store.pool)
    ws = open_ws(ws_url(stack))
    order_id = submit_ws(ws)
    [cid] = conns.subscribers(order_id)
    ws.close()  # $disconnect removes it
    assert wait_until(lambda: conns.get(cid) is None, 30)

    # A connection whose $disconnect never arrived: the next notify gets 410 and removes it.
    lost = "lost" + uuid.uuid4().hex[:8]
    conns.add(lost, endpoint=os.environ["WS_MANAGEMENT_ENDPOINT"])
    conns.subscribe(lost, order_id)
    with store.pool.connection() as conn:
        conn.execute(
            "UPDATE connections SET connected_at = now() - interval '1 minute'"
            " WHERE connection_id = %s",
            (lost,),
        )
    advance(store, order_id, 0, 1)
    assert wait_until(lambda: conns.get(lost) is None, 30)


def test_boto3_management_api_reaches_a_real_client(stack: Served, store: Store) -> None:
    accepted = post_order(stack, ORDER)
    ws = open_ws(accepted["wsUrl"])
    try:
        frames(ws, 1)
        [cid] = Connections(store.pool).subscribers(uuid.UUID(accepted["orderId"]))
        api = boto3.client(
            "apigatewaymanagementapi", endpoint_url=os.environ["WS_MANAGEMENT_ENDPOINT"]
        )
        api.post_to_connection(ConnectionId=cid, Data=json.dumps({"hi": "there"}).encode())
        assert frames(ws, 1) == [{"hi": "there"}]
        assert api.get_connection(ConnectionId=cid)["Identity"]["SourceIp"] == "127.0.0.1"
        api.delete_connection(ConnectionId=cid)
        with pytest.raises(ConnectionClosed):  # the server closed it
            frames(ws, 1, timeout=30)
        assert wait_until(lambda: Connections(store.pool).get(cid) is None, 30)
    finally:
        ws.close()


def open_as(stack: Served, secret: str, path: str = "/api/orders/execute") -> ClientConnection:
    url = ws_url(stack, path)
    return connect(url, open_timeout=30, additional_headers={"x-api-key": secret}).__enter__()


def closed_with_revocation(ws: ClientConnection) -> bool:
    """The socket's last frame says the key was revoked, and then the server closes it."""
    [last] = frames(ws, 1)
    assert last == {"error": {"code": "api_key_revoked", "message": REVOKED_MESSAGE}}
    with pytest.raises(ConnectionClosed):
        frames(ws, 1, timeout=30)
    return True


def test_revoking_a_key_closes_its_open_sockets(stack: Served, store: Store) -> None:
    key, secret = keys.create_key("revoked while connected", pool=store.pool)
    following, idle = open_as(stack, secret), open_as(stack, secret, "/")
    bystander = open_ws(ws_url(stack))  # another key's socket
    try:
        order_id = submit_ws(following)  # pending: nothing executes it here
        revoked = keys.revoke(key.id, pool=store.pool)
        assert revoked is not None
        assert [e.order_id for e in revoked.cancelled] == [order_id]  # unsent: cancelled
        assert keys.close_sockets(key.id, pool=store.pool) == (2, 0)  # what `revoke` runs
        [cancelled] = frames(following, 1)  # its follower hears why, then the socket closes
        assert (cancelled["status"], cancelled["code"]) == ("cancelled", "api_key_revoked")
        assert closed_with_revocation(following)
        assert closed_with_revocation(idle)
        assert Connections(store.pool).of_key(key.id) == []
        submit_ws(bystander)
    finally:
        for ws in (following, idle, bystander):
            ws.close()


def test_a_revoked_keys_socket_gets_no_more_frames(stack: Served, store: Store) -> None:
    """The sockets were not closed at revocation (the command could not reach the management
    API): the next delivery checks the key, posts what is owed (the revocation's cancellation,
    the last event of the order) and closes the socket."""
    key, secret = keys.create_key("revoked, sockets left open", pool=store.pool)
    following, asking = open_as(stack, secret), open_as(stack, secret)
    try:
        order_id = submit_ws(following)
        revoked = keys.revoke(key.id, pool=store.pool)
        assert revoked is not None
        for event in revoked.cancelled:  # as the executor publishes
            StatusQueue.from_settings(Settings.from_env()).publish(event)
        [cancelled] = frames(following, 1)
        assert (cancelled["status"], cancelled["code"]) == ("cancelled", "api_key_revoked")
        assert closed_with_revocation(following)
        # A frame on another of its sockets: the answer is the last one.
        asking.send(json.dumps({"action": "subscribe", "orderId": str(order_id)}))
        assert closed_with_revocation(asking)
    finally:
        following.close()
        asking.close()
