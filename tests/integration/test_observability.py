"""Every function emits traces (X-Ray) and metrics (CloudWatch EMF), as deployed.

Each handler runs as Lambda runs it (tests/layered.py: only its layers on the import path) with
the environment Lambda gives a traced function: a trace id, and the X-Ray daemon's address,
which is a UDP socket of this test, so the segments the function sends are read back. Its stdout
is what CloudWatch Logs would receive: the EMF lines there are its metrics.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from engine import base58, keys
from local.apigw import http_event, ws_authorizer_event, ws_event
from local.chain import seed
from tests.layered import run_handler

TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"


@pytest.fixture
def daemon() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    yield sock
    sock.close()


@pytest.fixture
def lambda_env(
    database_url: str,
    orders_queue: str,
    status_queue: str,
    daemon: socket.socket,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        DATABASE_URL=database_url,
        ORDERS_QUEUE_URL=orders_queue,
        STATUS_QUEUE_URL=status_queue,
        WS_MANAGEMENT_ENDPOINT="http://127.0.0.1:9",
        SOLANA_RPC_URL="http://127.0.0.1:9",
        WALLET_PRIVATE_KEY=json.dumps(list(bytes(seed.WALLET_KEYPAIR))),
        # What Lambda sets for a function with active tracing.
        AWS_LAMBDA_FUNCTION_NAME="under-test",
        LAMBDA_TASK_ROOT="/var/task",
        _X_AMZN_TRACE_ID=f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{daemon.getsockname()[1]}",
        POWERTOOLS_TRACER_CAPTURE_RESPONSE="false",
    )
    return env


def segments(daemon: socket.socket) -> list[dict[str, Any]]:
    """The segment documents sent to the daemon (each datagram: a header line, then JSON)."""
    found: list[dict[str, Any]] = []
    while True:
        try:
            data, _ = daemon.recvfrom(65535)
        except TimeoutError:
            return found
        found.append(json.loads(data.decode().split("\n", 1)[1]))


def emf(stdout: str) -> dict[str, float]:
    """Metric name -> summed value, from the EMF lines a run printed."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "SolanaOrderEngine"
            for metric in directive["Metrics"]:
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(doc[metric["Name"]])
    return totals


def names(found: list[dict[str, Any]]) -> set[str]:
    assert all(s["trace_id"] == TRACE_ID for s in found)
    return {s["name"] for s in found}


def test_submit_traces_postgres_and_sqs_and_counts_the_order(
    lambda_env: dict[str, str], daemon: socket.socket, api_key: tuple[keys.ApiKey, str]
) -> None:
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}
    event = http_event(
        "POST",
        "/api/orders/execute",
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
    )
    event["requestContext"]["authorizer"] = {"lambda": {"apiKeyId": str(api_key[0].id)}}
    result = run_handler("submit", [event], lambda_env)
    assert result["results"][0]["reply"]["statusCode"] == 202
    traced = names(segments(daemon))
    assert {"## handler", "postgres create_order", "sqs"} <= traced, traced
    assert emf(result["stdout"])["OrderAccepted"] == 1


def test_the_authorizer_counts_its_answers(
    lambda_env: dict[str, str], daemon: socket.socket, api_key: tuple[keys.ApiKey, str]
) -> None:
    allowed = ws_authorizer_event(
        ws_event("CONNECT", "$connect", "c1=", query={"apiKey": api_key[1]}, headers={})
    )
    denied = ws_authorizer_event(
        ws_event("CONNECT", "$connect", "c2=", query={"apiKey": "oek_" + "x" * 40}, headers={})
    )
    result = run_handler("authorizer", [allowed, denied], lambda_env)
    assert emf(result["stdout"]) == {"ApiKeyAllowed": 1, "ApiKeyDenied": 1}
    assert "## handler" in names(segments(daemon))


def test_execute_and_notify_trace_their_calls(
    lambda_env: dict[str, str], daemon: socket.socket
) -> None:
    record = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "Body": json.dumps({"orderId": str(uuid.uuid4())}),
    }
    from local.poller import sqs_event

    event = sqs_event([record], "arn:aws:sqs:us-east-1:1:q", "us-east-1")  # type: ignore[list-item]
    executed = run_handler("execute", [event], lambda_env)
    assert executed["results"][0]["reply"] == {"batchItemFailures": []}
    assert {"## handler", "postgres get_order"} <= names(segments(daemon))
    notified = run_handler("notify", [event], lambda_env)
    assert notified["results"][0]["reply"] == {"batchItemFailures": []}
    assert "## handler" in names(segments(daemon))


def test_ws_connect_traces_its_routes(
    lambda_env: dict[str, str], daemon: socket.socket, api_key: tuple[keys.ApiKey, str]
) -> None:
    cid = f"obs{uuid.uuid4().hex[:8]}="
    order = {"tokenIn": "SOL", "tokenOut": base58.encode(uuid.uuid4().bytes * 2), "amountIn": "1"}
    result = run_handler(
        "ws_connect",
        [
            ws_event("CONNECT", "$connect", cid, api_key_id=api_key[0].id),
            ws_event("MESSAGE", "$default", cid, body=json.dumps(order), api_key_id=api_key[0].id),
        ],
        lambda_env,
    )
    assert [r["reply"]["statusCode"] for r in result["results"]] == [200, 200]
    assert {"## handler", "postgres create_order", "sqs"} <= names(segments(daemon))
    assert emf(result["stdout"])["OrderAccepted"] == 1
