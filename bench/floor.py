"""The floor of an order's engine overhead: the round trips it cannot avoid, each timed bare in
the same run, against the same servers.

- a Postgres statement (`SELECT 1` on an open connection to the run's database);
- SQS `SendMessage`, `ReceiveMessage` (of a message waiting) and `DeleteMessage` on a scratch
  queue of the run's LocalStack (or moto);
- a Solana RPC call (`getLatestBlockhash`, over a kept-alive connection) to the run's chain;
- an invoke hop: an empty handler invoked through the same Runtime API (a warm worker running
  awslambdaric, as local/workers.py runs every function).

`floor()` multiplies them by what one order makes of each (its calls and invocations, counted in
the sequential overhead run): what the order would cost if the engine added nothing between
those round trips.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLES = 100
# RPC calls made while the chain confirms (its time is not the engine's: excluded from both).
WHILE_CHAIN = ("rpc:reading the transaction status", "rpc:reading the block height")


def _p50(call: Callable[[], Any], samples: int = SAMPLES) -> float:
    """Median milliseconds of `call` (after one untimed call)."""
    call()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _postgres(database_url: str) -> float:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return _p50(lambda: conn.execute("SELECT 1").fetchone())


def _sqs(endpoint: str) -> dict[str, float]:
    import boto3

    sqs = boto3.client(  # the emulator checks no signature; botocore wants one to sign with
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    url = sqs.create_queue(QueueName=f"bench-floor-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    try:
        send = _p50(lambda: sqs.send_message(QueueUrl=url, MessageBody="x"))
        handles: list[str] = []

        def receive() -> None:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
            handles.extend(m["ReceiptHandle"] for m in got.get("Messages", []))

        receive_ms = _p50(receive, min(SAMPLES, 50))
        delete = _p50(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=handles.pop()), 30)
    finally:
        sqs.delete_queue(QueueUrl=url)
    return {"send": send, "receive": receive_ms, "delete": delete}


def _rpc(url: str) -> float:
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": "getLatestBlockhash", "params": []}
    with httpx.Client() as client:
        return _p50(lambda: client.post(url, json=body).raise_for_status())


def _invoke() -> float:
    from local.workers import AccountLimit, FunctionPool

    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp)
        (code / "app.py").write_text("def handler(event, context):\n    return None\n")
        pool = FunctionPool("notify", concurrency=1, account=AccountLimit(1), code=code)
        try:
            return _p50(lambda: pool.invoke({}))
        finally:
            pool.stop()


def measure(database_url: str, sqs_endpoint: str, rpc_url: str) -> dict[str, float]:
    """Each bare round trip's p50, in milliseconds."""
    sqs = _sqs(sqs_endpoint)
    return {
        "postgres": _postgres(database_url),
        "sqs_send": sqs["send"],
        "sqs_receive": sqs["receive"],
        "sqs_delete": sqs["delete"],
        "rpc": _rpc(rpc_url),
        "invoke": _invoke(),
    }


def floor(
    bare: dict[str, float], calls: dict[str, float], invocations: dict[str, Any]
) -> dict[str, float]:
    """One order's floor (ms) by kind: its calls per order times each bare round trip. A sent
    message is received once: receives count as sends (a long poll's empty answers are not a
    round trip the order waits for); the RPC calls made while the chain confirms are chain
    time, as in the overhead."""
    sends = sum(v for k, v in calls.items() if k in ("sqs:SendMessage", "sqs:SendMessageBatch"))
    deletes = sum(
        v for k, v in calls.items() if k in ("sqs:DeleteMessage", "sqs:DeleteMessageBatch")
    )
    hops = sum(f["invocations"] for f in invocations.get("functions", {}).values())
    out = {
        "postgres": calls.get("postgres (all)", 0.0) * bare["postgres"],
        "sqs": sends * (bare["sqs_send"] + bare["sqs_receive"]) + deletes * bare["sqs_delete"],
        "rpc": sum(v for k, v in calls.items() if k.startswith("rpc:") and k not in WHILE_CHAIN)
        * bare["rpc"],
        "invoke": hops * bare["invoke"],
    }
    out["total"] = sum(out.values())
    return out
