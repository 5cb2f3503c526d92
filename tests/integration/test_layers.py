"""Every function runs with only the layers the template gives it, as deployed.

One venv holds every package, so an in-process test cannot see an import that only the Solana
layer could satisfy. Here each handler runs in its own interpreter whose import path is its own
folder plus its layers, installed as `sam build` lays them out (tests/layered.py), and is driven
through its routes; an order naming a base58 mint outside the registry is among them, since
checking such a mint once needed solders on the submit and WebSocket paths.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from engine import base58, keys
from local.apigw import http_authorizer_event, http_event, ws_authorizer_event, ws_event
from local.chain import seed
from local.poller import sqs_event
from tests.layered import function_layers, run_handler

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

SOLANA_MODULES = {"solana", "solders", "spl", "execution"}


@pytest.fixture(scope="module")
def environment(
    database_url: str, orders_queue: str, api_key: tuple[keys.ApiKey, str]
) -> dict[str, str]:
    sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
    status = sqs.create_queue(QueueName=f"layers-status-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        DATABASE_URL=database_url,
        ORDERS_QUEUE_URL=orders_queue,
        STATUS_QUEUE_URL=status,
        WS_URL="wss://example.test/prod",
        WS_MANAGEMENT_ENDPOINT="http://127.0.0.1:9",  # nothing listens: posts fail, as tested
        SOLANA_RPC_URL="http://127.0.0.1:9",
        WALLET_PRIVATE_KEY=json.dumps(list(bytes(seed.WALLET_KEYPAIR))),
    )
    return env


def unregistered_mint() -> str:
    return base58.encode(uuid.uuid4().bytes * 2)


def order(mint: str) -> dict[str, Any]:
    return {"tokenIn": "SOL", "tokenOut": mint, "amountIn": "0.01", "slippage": 0.5}


def authorized_http(method: str, path: str, key_id: uuid.UUID, body: Any = None) -> Any:
    event = http_event(
        method,
        path,
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode() if body is not None else b"",
    )
    event["requestContext"]["authorizer"] = {"lambda": {"apiKeyId": str(key_id)}}
    return event


def replies(result: dict[str, Any]) -> list[dict[str, Any]]:
    for item in result["results"]:
        assert "raised" not in item, item.get("trace")
    return [item["reply"] for item in result["results"]]


def test_the_template_gives_the_solana_layer_only_to_the_functions_that_talk_to_solana() -> None:
    # submit and ws_connect: a limit order's quote at submit (engine.spot), imported on demand.
    for name in ("execute", "quote", "watch", "submit", "ws_connect"):
        assert function_layers(name) == ["CommonLayer", "SolanaLayer"], name
    for name in ("notify", "authorizer"):
        assert function_layers(name) == ["CommonLayer"], name


def test_submit_serves_every_route_but_a_limit_order_without_loading_solana(
    environment: dict[str, str], api_key: tuple[keys.ApiKey, str]
) -> None:
    key_id = api_key[0].id
    mint = unregistered_mint()
    result = run_handler(
        "submit",
        [
            authorized_http("POST", "/api/orders/execute", key_id, order(mint)),
            authorized_http("POST", "/api/orders/execute", key_id, order(mint[:-1] + "0")),
            authorized_http("GET", "/api/orders", key_id),
            http_event("GET", "/health"),
        ],
        environment,
    )
    accepted, refused, listed, health = replies(result)
    assert accepted["statusCode"] == 202, accepted
    assert refused["statusCode"] == 400, refused
    assert '"field":"tokenOut"' in refused["body"], refused
    page = json.loads(listed["body"])
    created = json.loads(accepted["body"])["orderId"]
    assert any(o["orderId"] == created and o["request"]["mintOut"] == mint for o in page["orders"])
    assert health["statusCode"] == 503  # the RPC is unreachable here; the route still answers
    assert not SOLANA_MODULES & set(result["modules"]), result["modules"]


def test_ws_connect_serves_every_route_but_a_limit_order_without_loading_solana(
    environment: dict[str, str], api_key: tuple[keys.ApiKey, str]
) -> None:
    key_id = api_key[0].id
    cid = f"layers{uuid.uuid4().hex[:8]}="
    result = run_handler(
        "ws_connect",
        [
            ws_event("CONNECT", "$connect", cid, api_key_id=key_id),
            ws_event(
                "MESSAGE",
                "$default",
                cid,
                body=json.dumps(order(unregistered_mint())),
                api_key_id=key_id,
            ),
            ws_event("DISCONNECT", "$disconnect", cid, api_key_id=key_id),
        ],
        environment,
    )
    connected, submitted, disconnected = replies(result)
    assert connected["statusCode"] == 200
    assert submitted["statusCode"] == 200
    assert disconnected["statusCode"] == 200
    assert not SOLANA_MODULES & set(result["modules"]), result["modules"]


def test_authorizer_and_notify_run_without_the_solana_layer(
    environment: dict[str, str], api_key: tuple[keys.ApiKey, str]
) -> None:
    _, secret = api_key
    http = http_authorizer_event(http_event("GET", "/api/orders", headers={"x-api-key": secret}))
    ws = ws_authorizer_event(
        ws_event("CONNECT", "$connect", "c1=", query={"apiKey": secret}, headers={})
    )
    auth = run_handler("authorizer", [http, ws], environment)
    http_reply, ws_reply = replies(auth)
    assert http_reply["isAuthorized"] is True
    assert ws_reply["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert not SOLANA_MODULES & set(auth["modules"]), auth["modules"]

    message: MessageTypeDef = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "Body": json.dumps({"orderId": str(uuid.uuid4())}),
    }
    notified = run_handler(
        "notify", [sqs_event([message], "arn:aws:sqs:us-east-1:1:status", "us-east-1")], environment
    )
    assert replies(notified) == [{"batchItemFailures": []}]
    assert not SOLANA_MODULES & set(notified["modules"]), notified["modules"]


def test_execute_runs_with_its_two_layers(environment: dict[str, str]) -> None:
    message: MessageTypeDef = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "Body": json.dumps({"orderId": str(uuid.uuid4())}),
    }
    result = run_handler(
        "execute",
        [sqs_event([message], "arn:aws:sqs:us-east-1:1:orders", "us-east-1")],
        environment,
    )
    assert replies(result) == [{"batchItemFailures": []}]  # an unknown order is dropped
    assert {"execution", "solders", "solana"} <= set(result["modules"])


def test_quote_answers_with_its_two_layers(
    environment: dict[str, str], api_key: tuple[keys.ApiKey, str], served_chain: Any
) -> None:
    _, rpc_url = served_chain
    key_id = api_key[0].id
    quote = authorized_http("GET", "/api/quote", key_id)
    quote["rawQueryString"] = "tokenIn=SOL&tokenOut=USDC&amountIn=0.01"
    quote["queryStringParameters"] = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}
    bad = authorized_http("GET", "/api/quote", key_id)
    bad["queryStringParameters"] = {"tokenIn": "SOL", "tokenOut": "SOL", "amountIn": "1"}
    result = run_handler(
        "quote",
        [quote, bad],
        {**environment, "SOLANA_RPC_URL": rpc_url, "SOLANA_CLUSTER": "custom"},
    )
    ok, refused = replies(result)
    assert ok["statusCode"] == 200, ok
    body = json.loads(ok["body"])
    assert {q["venue"] for q in body["quotes"]} == {"raydium_cpmm", "meteora_damm_v2"}
    assert refused["statusCode"] == 400
    assert json.loads(refused["body"])["error"]["field"] == "tokenOut"


def test_submit_quotes_a_limit_order_with_its_two_layers(
    environment: dict[str, str], api_key: tuple[keys.ApiKey, str], served_chain: Any
) -> None:
    """The limit-price guard at submit runs with the layers the template gives submit: the
    quote function first records the pair's pools, then submit refuses a fat finger."""
    _, rpc_url = served_chain
    key_id = api_key[0].id
    env = {**environment, "SOLANA_RPC_URL": rpc_url, "SOLANA_CLUSTER": "custom"}
    quote = authorized_http("GET", "/api/quote", key_id)
    quote["queryStringParameters"] = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"}
    [quoted] = replies(run_handler("quote", [quote], env))
    assert quoted["statusCode"] == 200, quoted
    limit = {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": "1",
        "limitPrice": "1e-30",
        "expiresAt": (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    result = run_handler(
        "submit", [authorized_http("POST", "/api/orders/execute", key_id, limit)], env
    )
    [reply] = replies(result)
    assert reply["statusCode"] == 422, reply
    assert json.loads(reply["body"])["error"]["code"] == "limit_price_guard"
    assert {"execution", "solders"} <= set(result["modules"])
    assert {"execution", "solders", "solana"} <= set(result["modules"])


def test_watch_ticks_with_its_two_layers(environment: dict[str, str], served_chain: Any) -> None:
    _, rpc_url = served_chain
    scheduled = json.loads(
        (Path(__file__).resolve().parents[2] / "events" / "watch_schedule.json").read_text()
    )
    result = run_handler(
        "watch",
        [scheduled],
        {
            **environment,
            "SOLANA_RPC_URL": rpc_url,
            "SOLANA_CLUSTER": "custom",
            "WATCH_TICK_SECONDS": "0.2",
            "WATCH_RUN_SECONDS": "1",
        },
    )
    [reply] = replies(result)
    assert reply["ticks"] >= 3
    assert {"execution", "solders", "solana"} <= set(result["modules"])
