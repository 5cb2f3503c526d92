"""Who may trade: API keys (library and CLI), the authorizer's two reply shapes, ownership of
orders across keys over HTTP and WebSocket, and the per-key in-flight limit. Real handlers, real
Postgres; the gateway's side is in tests/e2e/test_api_keys_gateway.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from engine import db, keys
from engine.orders import Status
from engine.store import Store
from local.apigw import LambdaContext, http_event, ws_event
from local.handlers import ROOT, fresh_handler
from tests.auth import as_key
from tests.integration.test_submit_api import ORDER, call, queued_ids
from tests.integration.test_ws_connect import cid, connect, env, posted, send

__all__ = ["env"]  # a fixture, imported for pytest


@pytest.fixture
def new_key(database_url: str) -> Any:
    """A fresh key per call: new_key(max_in_flight=20) -> (ApiKey, secret)."""

    def make(max_in_flight: int = 20) -> tuple[keys.ApiKey, str]:
        return keys.create_key(
            f"t-{uuid.uuid4().hex[:6]}", max_in_flight, pool=db.pool(database_url)
        )

    return make


@pytest.fixture
def raw_submit(database_url: str, orders_queue: str, served_chain: Any) -> Any:
    return fresh_handler("submit")


@pytest.fixture
def raw_ws(env: str) -> Any:
    return fresh_handler("ws_connect")


def authorize(event: dict[str, Any]) -> Any:
    return fresh_handler("authorizer")(event, LambdaContext("authorizer"))


def http_auth_event(secret: str | None) -> dict[str, Any]:
    headers = {"x-api-key": secret} if secret is not None else {}
    event = http_event("GET", "/api/orders", headers=headers)
    event.update(type="REQUEST", routeArn="arn:aws:execute-api:us-east-1:0:api/$default/GET/x")
    return event


def ws_auth_event(*, query: dict[str, str] | None = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    event = ws_event("CONNECT", "$connect", cid(), query=query, headers=headers)
    event.update(type="REQUEST", methodArn="arn:aws:execute-api:us-east-1:0:api/prod/$connect")
    return event


def finish(store: Store, order_id: uuid.UUID, status: Status = Status.CONFIRMED) -> None:
    path = [Status.ROUTING, Status.BUILDING, Status.SUBMITTED, Status.CONFIRMED]
    if status is Status.FAILED:
        path = [Status.FAILED]
    current = Status.PENDING
    for step in path:
        assert store.transition(order_id, current, step)
        current = step


# -- the key library ------------------------------------------------------------------------------


def test_create_verify_revoke_list(database_url: str, store: Store) -> None:
    pool = db.pool(database_url)
    key, secret = keys.create_key("alice", 7, pool=pool)
    assert secret.startswith("oek_")
    assert len(secret) >= 40
    assert key.prefix == secret[: keys.PREFIX_CHARS]
    assert key.max_in_flight == 7
    assert keys.verify(secret, pool=pool) == key
    with pool.connection() as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE id = %s", (key.id,)).fetchone()
    assert row is not None
    assert bytes(row["key_hash"]) == keys.key_hash(secret)
    assert secret not in json.dumps(row, default=str)  # only the hash is stored
    assert secret not in repr(key)
    assert keys.key_hash(secret).hex() not in repr(key)
    for wrong in (secret + "x", secret[:-1], "", None, 12, "oek_" + "A" * 10_000):
        assert keys.verify(wrong, pool=pool) is None
    assert key.id in {k.id for k in keys.list_keys(pool=pool)}
    assert keys.revoke(key.id, pool=pool)
    assert keys.revoke(key.id, pool=pool)
    assert keys.verify(secret, pool=pool) is None
    assert not keys.revoke(uuid.uuid4(), pool=pool)
    assert keys.ensure_key(secret, "again", pool=pool).revoked  # known, and stays revoked
    fresh = "oek_local-" + uuid.uuid4().hex
    made = keys.ensure_key(fresh, "dev", 3, pool=pool)
    assert keys.ensure_key(fresh, "dev", pool=pool) == made
    assert keys.verify(fresh, pool=pool) == made


# -- the authorizer -------------------------------------------------------------------------------


def test_authorizer_http_simple_responses(new_key: Any) -> None:
    key, secret = new_key()
    assert authorize(http_auth_event(secret)) == {
        "isAuthorized": True,
        "context": {"apiKeyId": str(key.id)},
    }
    event = http_auth_event(None)
    event["headers"]["X-Api-Key"] = secret  # header names are case-insensitive
    assert authorize(event)["isAuthorized"] is True
    for bad in (None, "", "oek_nope-" + "x" * 40, secret + " "):
        assert authorize(http_auth_event(bad)) == {"isAuthorized": False}


def test_authorizer_websocket_policies(new_key: Any, database_url: str) -> None:
    key, secret = new_key()
    for kw in ({"query": {"apiKey": secret}}, {"headers": {"x-api-key": secret}}):
        event = ws_auth_event(**kw)
        reply = authorize(event)
        assert reply == {
            "principalId": str(key.id),
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": "execute-api:Invoke",
                        "Effect": "Allow",
                        "Resource": event["methodArn"],
                    }
                ],
            },
            "context": {"apiKeyId": str(key.id)},
        }
    denied = authorize(ws_auth_event(query={"apiKey": "oek_nope-" + "x" * 40}))
    assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "context" not in denied
    keys.revoke(key.id, pool=db.pool(database_url))
    revoked = authorize(ws_auth_event(query={"apiKey": secret}))
    assert revoked["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    with pytest.raises(Exception, match=r"^Unauthorized$"):  # API Gateway: 401
        authorize(ws_auth_event())


# -- handlers need a caller -----------------------------------------------------------------------


def test_handlers_without_authorizer_context_refuse(raw_submit: Any, raw_ws: Any) -> None:
    for method, path in (("POST", "/api/orders/execute"), ("GET", "/api/orders")):
        reply = call(raw_submit, method, path, ORDER if method == "POST" else None)
        assert reply["statusCode"] == 401
        assert reply["json"]["error"]["code"] == "unauthorized"
    reply = call(raw_submit, "GET", f"/api/orders/{uuid.uuid4()}")
    assert reply["statusCode"] == 401
    assert call(raw_submit, "GET", "/health")["statusCode"] == 200  # public
    refused = raw_ws(ws_event("CONNECT", "$connect", cid()), LambdaContext("ws_connect"))
    assert refused["statusCode"] == 401
    c = cid()  # a frame on a connection nobody authorized: an error frame, nothing stored
    send(raw_ws, c, ORDER)
    assert posted(c)[-1]["error"]["code"] == "unauthorized"


# -- ownership ------------------------------------------------------------------------------------


def test_a_key_sees_only_its_own_orders(raw_submit: Any, raw_ws: Any, new_key: Any) -> None:
    (a, _), (b, _) = new_key(), new_key()
    as_a, as_b = as_key(raw_submit, a.id), as_key(raw_submit, b.id)
    mine = call(as_a, "POST", "/api/orders/execute", ORDER)["json"]["orderId"]
    theirs = call(as_b, "POST", "/api/orders/execute", ORDER)["json"]["orderId"]

    assert call(as_a, "GET", f"/api/orders/{mine}")["statusCode"] == 200
    other = call(as_a, "GET", f"/api/orders/{theirs}")
    nobody = str(uuid.uuid4())
    unknown = call(as_a, "GET", f"/api/orders/{nobody}")
    assert other["statusCode"] == unknown["statusCode"] == 404
    assert other["json"]["error"]["code"] == "order_not_found"
    # The very reply an unknown id gets: nothing says the order exists, or whose it is.
    assert json.dumps(other["json"]).replace(theirs, "ID") == json.dumps(unknown["json"]).replace(
        nobody, "ID"
    )
    listed = [o["orderId"] for o in call(as_a, "GET", "/api/orders?limit=100")["json"]["orders"]]
    assert listed == [mine]

    ws_a = as_key(raw_ws, a.id)
    c = cid()
    assert connect(ws_a, c, query={"orderId": theirs})["statusCode"] == 404
    assert connect(ws_a, c)["statusCode"] == 200
    send(ws_a, c, {"action": "subscribe", "orderId": theirs}, "subscribe")
    assert posted(c)[-1]["error"]["code"] == "order_not_found"
    send(ws_a, c, {"action": "subscribe", "orderId": mine}, "subscribe")
    assert posted(c)[-1]["orderId"] == mine


def test_connection_keeps_the_key_for_its_frames(raw_ws: Any, new_key: Any, store: Store) -> None:
    key, _ = new_key()
    c = cid()
    assert connect(as_key(raw_ws, key.id), c)["statusCode"] == 200
    send(raw_ws, c, ORDER)  # a MESSAGE event without authorizer context: the row's key
    order_id = uuid.UUID(posted(c)[-1]["orderId"])
    assert store.get_owned_order(order_id, key.id) is not None


def test_same_idempotency_key_from_two_api_keys_makes_two_orders(
    raw_submit: Any, new_key: Any
) -> None:
    (a, _), (b, _) = new_key(), new_key()
    idem = f"shared-{uuid.uuid4()}"
    first_a = call(
        as_key(raw_submit, a.id), "POST", "/api/orders/execute", ORDER, idempotency_key=idem
    )
    first_b = call(
        as_key(raw_submit, b.id),
        "POST",
        "/api/orders/execute",
        {**ORDER, "amountIn": "0.02"},  # another body: no conflict across keys
        idempotency_key=idem,
    )
    assert first_a["statusCode"] == first_b["statusCode"] == 202
    assert first_a["json"]["orderId"] != first_b["json"]["orderId"]
    again_b = call(
        as_key(raw_submit, b.id),
        "POST",
        "/api/orders/execute",
        {**ORDER, "amountIn": "0.02"},
        idempotency_key=idem,
    )
    assert again_b["json"]["orderId"] == first_b["json"]["orderId"]
    assert again_b["headers"].get("idempotent-replayed") == "true"


# -- in-flight limit ------------------------------------------------------------------------------


def test_in_flight_limit_is_429_and_frees_when_orders_finish(
    raw_submit: Any, raw_ws: Any, new_key: Any, store: Store, orders_queue: str
) -> None:
    key, _ = new_key(max_in_flight=2)
    as_k = as_key(raw_submit, key.id)
    ids = [
        call(as_k, "POST", "/api/orders/execute", ORDER, idempotency_key=f"k{i}-{key.id}")["json"][
            "orderId"
        ]
        for i in range(2)
    ]
    over = call(as_k, "POST", "/api/orders/execute", ORDER)
    assert over["statusCode"] == 429
    assert over["json"]["error"]["code"] == "too_many_orders_in_flight"
    # An idempotent replay creates nothing, so the limit does not apply to it.
    replay = call(as_k, "POST", "/api/orders/execute", ORDER, idempotency_key=f"k0-{key.id}")
    assert replay["statusCode"] == 202
    assert replay["json"]["orderId"] == ids[0]
    c = cid()  # over WebSocket: an error frame
    connect(as_key(raw_ws, key.id), c)
    send(raw_ws, c, ORDER)
    assert posted(c)[-1]["error"]["code"] == "too_many_orders_in_flight"

    finish(store, uuid.UUID(ids[0]))
    assert call(as_k, "POST", "/api/orders/execute", ORDER)["statusCode"] == 202
    assert call(as_k, "POST", "/api/orders/execute", ORDER)["statusCode"] == 429
    finish(store, uuid.UUID(ids[1]), Status.FAILED)
    send(raw_ws, c, ORDER)
    assert posted(c)[-1]["status"] == "pending"
    queued_ids(orders_queue)


def test_in_flight_limit_holds_under_racing_submits(raw_submit: Any, new_key: Any) -> None:
    key, _ = new_key(max_in_flight=3)
    as_k = as_key(raw_submit, key.id)
    barrier = threading.Barrier(10)

    def post(_: int) -> int:
        barrier.wait()
        return int(call(as_k, "POST", "/api/orders/execute", ORDER)["statusCode"])

    with ThreadPoolExecutor(10) as pool:
        codes = sorted(pool.map(post, range(10)))
    assert codes == [202] * 3 + [429] * 7


def test_a_revoked_key_creates_nothing_even_inside_the_authorizer_cache(
    raw_submit: Any, new_key: Any, database_url: str
) -> None:
    key, _ = new_key()
    keys.revoke(key.id, pool=db.pool(database_url))
    reply = call(as_key(raw_submit, key.id), "POST", "/api/orders/execute", ORDER)
    assert reply["statusCode"] == 403
    assert reply["json"]["error"]["code"] == "api_key_revoked"


# -- the management command -----------------------------------------------------------------------


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "POWERTOOLS_LOG_LEVEL": "DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "engine.keys", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=60,
    )


def test_cli_creates_a_key_that_works_and_shows_it_once(
    database_url: str, raw_submit: Any, capfd: pytest.CaptureFixture[str], caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    made = cli(database_url, "create", "--name", "cli user", "--max-in-flight", "5")
    assert made.returncode == 0, made.stderr
    fields = dict(line.split(None, 1) for line in made.stdout.splitlines() if " " in line)
    secret = fields["key"].strip()
    key = keys.verify(secret, pool=db.pool(database_url))
    assert key is not None
    assert key.name == "cli user"
    assert key.max_in_flight == 5
    assert str(key.id) in made.stdout
    assert "cannot be shown again" in made.stderr

    # It works end to end: the authorizer lets it in, and submit acts for it.
    reply = authorize(http_auth_event(secret))
    assert reply["context"]["apiKeyId"] == str(key.id)
    event = http_event(
        "POST", "/api/orders/execute", headers={"content-type": "application/json"},
        body=json.dumps(ORDER).encode(), api_key_id=reply["context"]["apiKeyId"],
    )  # fmt: skip
    assert raw_submit(event, LambdaContext("submit"))["statusCode"] == 202

    listed = cli(database_url, "list")
    revoked = cli(database_url, "revoke", str(key.id))
    assert revoked.returncode == 0
    assert keys.verify(secret, pool=db.pool(database_url)) is None
    assert cli(database_url, "revoke", str(uuid.uuid4())).returncode == 1
    # Shown once: the listing names it by id and prefix only; no log line holds it or its hash.
    assert str(key.id) in listed.stdout
    assert key.prefix in listed.stdout
    out = capfd.readouterr()
    outputs = [listed.stdout, listed.stderr, revoked.stdout, revoked.stderr, made.stderr]
    everything = "\n".join([*outputs, out.out, out.err, caplog.text])
    assert "authorized" in everything  # the capture did see the handlers' logs
    for leak in (secret, secret[keys.PREFIX_CHARS :], keys.key_hash(secret).hex()):
        assert leak not in everything
