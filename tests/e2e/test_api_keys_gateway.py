"""API keys through the local gateway's real sockets, which runs the template's authorizers as
API Gateway does: 401 without a key, 403 with a wrong or revoked one (HTTP and the WebSocket
upgrade), and one key never sees another's orders."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from engine import db, keys
from local.gateway import Served
from tests.e2e.test_gateway_ws import ORDER, stack, ws_url

__all__ = ["stack"]  # a fixture, imported for pytest
pytestmark = pytest.mark.e2e


def request(
    served: Served, method: str, path: str, key: str | None, body: Any = None, **headers: str
) -> tuple[int, Any]:
    sent = {"content-type": "application/json", **headers}
    if key is not None:
        sent["x-api-key"] = key
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(served.url + path, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def two_keys(database_url: str) -> tuple[tuple[keys.ApiKey, str], tuple[keys.ApiKey, str]]:
    pool = db.pool(database_url)
    return keys.create_key("alice", pool=pool), keys.create_key("bob", pool=pool)


def test_http_without_a_key_is_401_and_with_a_wrong_one_403(
    stack: Served, database_url: str
) -> None:
    for method, path, body in (
        ("POST", "/api/orders/execute", ORDER),
        ("GET", "/api/orders", None),
        ("GET", f"/api/orders/{uuid.uuid4()}", None),
    ):
        assert request(stack, method, path, None, body) == (401, {"message": "Unauthorized"})
        assert request(stack, method, path, "oek_" + "z" * 43, body) == (
            403,
            {"message": "Forbidden"},
        )
    key, secret = keys.create_key("revoked", pool=db.pool(database_url))
    keys.revoke(key.id, pool=db.pool(database_url))
    assert request(stack, "GET", "/api/orders", secret) == (403, {"message": "Forbidden"})
    # Health and the API's documents stay public (health is 503 here: no chain in this module).
    assert request(stack, "GET", "/health", None)[0] in (200, 503)
    assert request(stack, "GET", "/openapi.json", None)[0] == 200


def test_a_key_revoked_inside_the_cache_window_creates_nothing(
    stack: Served, database_url: str
) -> None:
    """As API Gateway, the gateway caches the authorizer's answer per key for the template's
    TTL: a key revoked meanwhile still passes it, but no order can be created with it."""
    key, secret = keys.create_key("revoked later", pool=db.pool(database_url))
    assert request(stack, "GET", "/api/orders", secret)[0] == 200  # authorized, and cached
    keys.revoke(key.id, pool=db.pool(database_url))
    assert request(stack, "GET", "/api/orders", secret)[0] == 200  # the cached answer
    status, body = request(stack, "POST", "/api/orders/execute", secret, ORDER)
    assert status == 403
    assert body["error"]["code"] == "api_key_revoked"


def test_websocket_upgrade_wants_a_key(stack: Served, two_keys: Any) -> None:
    (_, secret), _ = two_keys
    for url, headers, status in (
        (ws_url(stack), None, 401),
        (ws_url(stack) + "?apiKey=oek_" + "z" * 43, None, 403),
        (ws_url(stack), {"x-api-key": "oek_" + "z" * 43}, 403),
    ):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=30, additional_headers=headers)
        assert refused.value.response.status_code == status
    for url, headers in (
        (ws_url(stack) + "?apiKey=" + urllib.parse.quote(secret), None),
        (ws_url(stack), {"x-api-key": secret}),
    ):
        with connect(url, open_timeout=30, additional_headers=headers) as ws:
            ws.send(json.dumps(ORDER))
            assert json.loads(ws.recv(timeout=30))["status"] == "pending"


def test_one_key_cannot_see_anothers_orders(stack: Served, two_keys: Any) -> None:
    (_, alice), (_, bob) = two_keys
    idem = f"shared-{uuid.uuid4()}"
    status, mine = request(
        stack, "POST", "/api/orders/execute", alice, ORDER, **{"Idempotency-Key": idem}
    )
    assert status == 202
    status, theirs = request(
        stack, "POST", "/api/orders/execute", bob, ORDER, **{"Idempotency-Key": idem}
    )
    assert status == 202
    assert theirs["orderId"] != mine["orderId"]

    status, body = request(stack, "GET", f"/api/orders/{theirs['orderId']}", alice)
    assert status == 404
    assert body["error"]["code"] == "order_not_found"
    status, page = request(stack, "GET", "/api/orders?limit=100", alice)
    assert [o["orderId"] for o in page["orders"]] == [mine["orderId"]]

    with pytest.raises(InvalidStatus) as refused:
        connect(theirs["wsUrl"], open_timeout=30, additional_headers={"x-api-key": alice})
    assert refused.value.response.status_code == 404
    with connect(ws_url(stack), open_timeout=30, additional_headers={"x-api-key": alice}) as ws:
        ws.send(json.dumps({"action": "subscribe", "orderId": theirs["orderId"]}))
        assert json.loads(ws.recv(timeout=30))["error"]["code"] == "order_not_found"
        ws.send(json.dumps({"action": "subscribe", "orderId": mine["orderId"]}))
        assert json.loads(ws.recv(timeout=30))["orderId"] == mine["orderId"]


def test_in_flight_limit_over_http(stack: Served, database_url: str) -> None:
    _, secret = keys.create_key("small", max_in_flight=1, pool=db.pool(database_url))
    assert request(stack, "POST", "/api/orders/execute", secret, ORDER)[0] == 202
    status, body = request(stack, "POST", "/api/orders/execute", secret, ORDER)
    assert status == 429
    assert body["error"]["code"] == "too_many_orders_in_flight"
