"""The execute function reports the signing wallet's balance (WalletBalance, in SOL) as a
CloudWatch EMF metric, read from the chain over RPC, at most once a minute per container; a
chain it cannot reach costs the batch nothing. Run as Lambda runs it (tests/layered.py), against
the local chain over a real socket."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from local.chain import LocalChain, seed
from local.poller import sqs_event
from tests.integration.test_observability import emf
from tests.layered import run_handler

ROOT = Path(__file__).resolve().parents[2]


def environment(database_url: str, rpc_url: str, orders: str, status: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        DATABASE_URL=database_url,
        ORDERS_QUEUE_URL=orders,
        STATUS_QUEUE_URL=status,
        SOLANA_RPC_URL=rpc_url,
        WALLET_PRIVATE_KEY=json.dumps(list(bytes(seed.WALLET_KEYPAIR))),
        POWERTOOLS_SERVICE_NAME="execute",
    )
    return env


def batch() -> dict[str, Any]:
    record = {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": "r1",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "Body": json.dumps({"orderId": str(uuid.uuid4())}),  # an order that does not exist
    }
    return sqs_event([record], "arn:aws:sqs:us-east-1:1:q", "us-east-1")  # type: ignore[list-item]


def test_the_wallet_balance_is_a_metric_once_a_minute(
    database_url: str,
    orders_queue: str,
    status_queue: str,
    served_chain: tuple[LocalChain, str],
) -> None:
    chain, url = served_chain
    env = environment(database_url, url, orders_queue, status_queue)
    result = run_handler("execute", [batch(), batch()], env)  # two invocations, one container
    assert [r["reply"] for r in result["results"]] == [{"batchItemFailures": []}] * 2
    lamports = chain.ledger.balance(seed.WALLET)
    assert lamports > 0
    assert emf(result["stdout"])["WalletBalance"] == lamports / 1e9  # once, not twice
    lines = [json.loads(x) for x in result["stdout"].splitlines() if '"WalletBalance"' in x]
    [directive] = lines[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"]]  # what WalletLowBalanceAlarm watches
    assert lines[0]["service"] == "execute"


def test_an_unreachable_chain_costs_the_batch_nothing(
    database_url: str, orders_queue: str, status_queue: str
) -> None:
    env = environment(database_url, "http://127.0.0.1:9", orders_queue, status_queue)
    result = run_handler("execute", [batch()], env)
    assert result["results"][0]["reply"] == {"batchItemFailures": []}
    assert "WalletBalance" not in emf(result["stdout"])
    assert "wallet balance not read" in result["stdout"]


def test_the_watcher_reports_the_balance_every_invocation_without_the_key(
    database_url: str,
    orders_queue: str,
    status_queue: str,
    served_chain: tuple[LocalChain, str],
    localstack: str,
) -> None:
    """The watcher knows the wallet only by the secret's `public-key` tag (make wallet's), never
    its value: an idle stack still reports WalletBalance every minute, so an empty wallet alarms
    before an order fails on it."""
    import secrets

    import boto3

    from engine.secrets import PUBLIC_KEY_TAG

    chain, url = served_chain
    sm = boto3.client("secretsmanager", endpoint_url=localstack, region_name="us-east-1")
    arn = sm.create_secret(Name=f"wallet-{secrets.token_hex(4)}")["ARN"]  # no value at all
    sm.tag_resource(SecretId=arn, Tags=[{"Key": PUBLIC_KEY_TAG, "Value": str(seed.WALLET)}])
    env = environment(database_url, url, orders_queue, status_queue)
    del env["WALLET_PRIVATE_KEY"]
    env.update(
        POWERTOOLS_SERVICE_NAME="watch",
        WALLET_ADDRESS_SECRET_ARN=arn,
        SECRETS_ENDPOINT_URL=localstack,
        WATCH_RUN_SECONDS="0.2",
        WATCH_TICK_SECONDS="0.1",
        AWS_DEFAULT_REGION="us-east-1",
    )
    tick = json.loads((ROOT / "events" / "watch_schedule.json").read_text())
    result = run_handler("watch", [tick], env)
    assert result["results"][0]["reply"]["ticks"] >= 1
    lamports = chain.ledger.balance(seed.WALLET)
    assert emf(result["stdout"])["WalletBalance"] == lamports / 1e9
    lines = [json.loads(x) for x in result["stdout"].splitlines() if '"WalletBalance"' in x]
    assert lines[0]["service"] == "watch"  # the alarm's second series
