"""Every sample in events/ (the ones `sam local invoke` would take) fed to its real handler."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import db, keys
from engine.store import Store
from local.apigw import LambdaContext
from local.handlers import ROOT, fresh_handler

EVENTS = ROOT / "events"
# The API key the samples' authorizer context names, and the (example) secret they send.
SAMPLE_KEY_ID = uuid.UUID("5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f")
SAMPLE_SECRET = "oek_EXAMPLE-sample-key-not-a-real-one-000000000"


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def invoke(function: str, event: dict[str, Any]) -> Any:
    return fresh_handler(function)(event, LambdaContext(function))


@pytest.fixture
def env(
    database_url: str,
    orders_queue: str,
    status_queue: str,
    moto_server: str,
    served_chain: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    # Frames posted to connections go to moto's management API (the bare root, per AWS.md).
    monkeypatch.setenv("WS_MANAGEMENT_ENDPOINT", moto_server)
    with db.pool(database_url).connection() as conn:  # the key the samples' context names
        conn.execute(
            "INSERT INTO api_keys (id, name, prefix, key_hash) VALUES (%s, 'samples', 'oek_', %s)"
            " ON CONFLICT DO NOTHING",
            (SAMPLE_KEY_ID, keys.key_hash("samples:" + str(SAMPLE_KEY_ID))),
        )
    yield moto_server
    monkeypatch.undo()


def posted_frames(connection_id: str) -> list[dict[str, Any]]:
    from urllib.parse import quote

    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    frames: list[dict[str, Any]] = []
    for regions in apigatewaymanagementapi_backends.values():
        for backend in regions.values():
            conn = backend.connections.get(quote(connection_id, safe="")) or (
                backend.connections.get(connection_id)
            )
            if conn is not None:
                raw = conn.data
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                frames += [json.loads(line) for line in _split_frames(text)]
    return frames


def _split_frames(text: str) -> list[str]:
    """moto concatenates every post to a connection; split the JSON objects back apart."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        obj, end = decoder.raw_decode(text, i)
        out.append(json.dumps(obj))
        i = end
    return out


def test_every_function_and_route_has_a_sample() -> None:
    names = {p.stem for p in EVENTS.glob("*.json")}
    assert {
        "submit_post_order",
        "submit_get_order",
        "submit_list_orders",
        "submit_health",
        "ws_connect",
        "ws_disconnect",
        "ws_default_order",
        "ws_subscribe",
        "execute_sqs",
        "notify_sqs",
        "authorizer_http",
        "authorizer_ws_connect",
        "submit_cancel_order",
        "quote_get",
        "ws_cancel",
        "watch_schedule",
    } <= names


def test_authorizer_samples(env: str, database_url: str) -> None:
    key = keys.ensure_key(SAMPLE_SECRET, "sample secret", pool=db.pool(database_url))
    http = invoke("authorizer", sample("authorizer_http"))
    assert http == {"isAuthorized": True, "context": {"apiKeyId": str(key.id)}}

    event = sample("authorizer_ws_connect")
    assert event["type"] == "REQUEST"
    assert event["methodArn"].endswith("/$connect")
    assert event["requestContext"]["routeKey"] == "$connect"
    ws = invoke("authorizer", event)
    assert ws["principalId"] == str(key.id)
    assert ws["context"] == {"apiKeyId": str(key.id)}
    assert ws["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
    ]

    keys.revoke(key.id, pool=db.pool(database_url))
    try:
        assert invoke("authorizer", sample("authorizer_http")) == {"isAuthorized": False}
        denied = invoke("authorizer", sample("authorizer_ws_connect"))
        assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
        assert "context" not in denied
    finally:
        with db.pool(database_url).connection() as conn:
            conn.execute("UPDATE api_keys SET revoked_at = NULL WHERE id = %s", (key.id,))


def test_http_samples(env: str, store: Store) -> None:
    posted = invoke("submit", sample("submit_post_order"))
    assert posted["statusCode"] == 202
    order_id = uuid.UUID(json.loads(posted["body"])["orderId"])
    assert store.get_order(order_id) is not None

    got = invoke("submit", sample("submit_get_order"))  # names an order this database lacks
    assert got["statusCode"] == 404
    assert json.loads(got["body"])["error"]["code"] == "order_not_found"

    listed = invoke("submit", sample("submit_list_orders"))
    assert listed["statusCode"] == 200
    assert str(order_id) in [o["orderId"] for o in json.loads(listed["body"])["orders"]]

    health = invoke("submit", sample("submit_health"))
    assert health["statusCode"] == 200
    assert {"database", "queue", "rpc"} <= set(json.loads(health["body"])["checks"])

    cancelled = invoke("submit", sample("submit_cancel_order"))  # names an order not here
    assert cancelled["statusCode"] == 404
    assert json.loads(cancelled["body"])["error"]["code"] == "order_not_found"

    quoted = invoke("quote", sample("quote_get"))
    assert quoted["statusCode"] == 200, quoted
    assert json.loads(quoted["body"])["tokenIn"] == "SOL"


def test_the_schedule_sample_runs_the_watcher(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCH_RUN_SECONDS", "0.5")
    monkeypatch.setenv("WATCH_TICK_SECONDS", "0.1")
    reply = invoke("watch", sample("watch_schedule"))
    assert reply["ticks"] >= 2


def test_websocket_samples(env: str, store: Store) -> None:
    refused = invoke("ws_connect", sample("ws_connect"))  # follows an order that is not here
    assert refused["statusCode"] == 404

    default = sample("ws_default_order")
    cid = default["requestContext"]["connectionId"]
    assert invoke("ws_connect", default)["statusCode"] == 200
    frames = posted_frames(cid)
    assert frames
    assert frames[0]["status"] == "pending"
    assert store.get_order(uuid.UUID(frames[0]["orderId"])) is not None

    subscribe = sample("ws_subscribe")  # an unknown order: an error frame, socket stays open
    assert invoke("ws_connect", subscribe)["statusCode"] == 200
    errors = [f for f in posted_frames(subscribe["requestContext"]["connectionId"]) if "error" in f]
    assert errors
    assert errors[-1]["error"]["code"] == "order_not_found"

    cancel = sample("ws_cancel")  # an unknown order: an error frame
    assert invoke("ws_connect", cancel)["statusCode"] == 200
    errors = [f for f in posted_frames(cancel["requestContext"]["connectionId"]) if "error" in f]
    assert errors[-1]["error"]["code"] == "order_not_found"

    assert invoke("ws_connect", sample("ws_disconnect"))["statusCode"] == 200


def test_sqs_samples_name_an_unknown_order_and_are_dropped_not_retried(env: str) -> None:
    for function, name in (("execute", "execute_sqs"), ("notify", "notify_sqs")):
        reply = invoke(function, sample(name))
        assert reply == {"batchItemFailures": []}, name


def test_samples_parse_as_powertools_models() -> None:
    from aws_lambda_powertools.utilities.parser import parse
    from aws_lambda_powertools.utilities.parser.models import (
        ApiGatewayAuthorizerRequestV2,
        APIGatewayProxyEventV2Model,
        APIGatewayWebSocketConnectEventModel,
        APIGatewayWebSocketDisconnectEventModel,
        APIGatewayWebSocketMessageEventModel,
        CloudFormationCustomResourceCreateModel,
        EventBridgeModel,
        SqsModel,
    )

    models: dict[str, Any] = {
        "authorizer_http": ApiGatewayAuthorizerRequestV2,
        "authorizer_ws_connect": None,  # Powertools has no model (checked in the test above)
        "submit_": APIGatewayProxyEventV2Model,
        "ws_connect": APIGatewayWebSocketConnectEventModel,
        "ws_disconnect": APIGatewayWebSocketDisconnectEventModel,
        "ws_default": APIGatewayWebSocketMessageEventModel,
        "ws_subscribe": APIGatewayWebSocketMessageEventModel,
        "ws_cancel": APIGatewayWebSocketMessageEventModel,
        "quote_": APIGatewayProxyEventV2Model,
        "watch_schedule": EventBridgeModel,
        "_sqs": SqsModel,
        "migrate_custom_resource": CloudFormationCustomResourceCreateModel,
    }
    for path in sorted(Path(EVENTS).glob("*.json")):
        model = next(m for key, m in models.items() if key in path.stem)
        if model is not None:
            parse(event=json.loads(path.read_text()), model=model)
