"""The wallet key never shows: whole orders run with debug logging, and no log line, response
or status event holds the key in any encoding a wallet exports it in."""

from __future__ import annotations

import base64
import json
import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from solders.pubkey import Pubkey

from engine.errors import ConfigError
from engine.store import Store
from execution.wallet import Wallet, parse_secret
from local.apigw import LambdaContext, http_event
from local.chain import LocalChain, seed
from local.handlers import fresh_handler
from local.poller import sqs_event
from tests.auth import as_key


def encodings() -> list[str]:
    """The key as wallets and libraries write it: base58 (Phantom, solders' str), a JSON byte
    array (solana-keygen), hex and base64, of the 64-byte keypair and of its 32-byte seed."""
    raw = bytes(seed.WALLET_KEYPAIR)
    out: list[str] = [str(seed.WALLET_KEYPAIR), str(Pubkey(raw[:32]))]  # base58 of key and seed
    for secret in (raw, raw[:32]):
        out += [
            json.dumps(list(secret)),
            json.dumps(list(secret), separators=(",", ":")),
            secret.hex(),
            base64.b64encode(secret).decode(),
            str(list(secret)),
        ]
    return out


@pytest.fixture
def debug_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_DEBUG", "true")
    monkeypatch.setenv("CONFIRM_POLL_SECONDS", "0.05")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    yield
    root.setLevel(level)


def http(handler: Any, method: str, path: str, body: Any = None) -> dict[str, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    event = http_event(method, path, headers={"content-type": "application/json"}, body=raw)
    reply: dict[str, Any] = handler(event, LambdaContext("submit"))
    return reply


def test_no_encoding_of_the_wallet_key_appears_anywhere(
    store: Store,
    private_orders_queue: str,
    status_queue: str,
    served_chain: tuple[LocalChain, str],
    debug_logging: None,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    api_key: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    submit, execute = as_key(fresh_handler("submit"), api_key[0].id), fresh_handler("execute")
    sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
    arn = sqs.get_queue_attributes(QueueUrl=private_orders_queue, AttributeNames=["QueueArn"])
    seen: list[str] = []

    # A good order, one the wallet cannot pay for, and one the chain refuses: every path logs.
    bodies = [
        {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"},
        {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "500"},
        {
            "tokenIn": "SOL",
            "tokenOut": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
            "amountIn": "1",
        },
    ]
    ids: list[uuid.UUID] = []
    for body in bodies:
        reply = http(submit, "POST", "/api/orders/execute", body)
        seen.append(json.dumps(reply))
        ids.append(uuid.UUID(json.loads(reply["body"])["orderId"]))
    delivered = 0
    while delivered < len(ids):
        got = sqs.receive_message(
            QueueUrl=private_orders_queue, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        if not got:
            continue
        seen.append(
            json.dumps(
                execute(
                    sqs_event(got, arn["Attributes"]["QueueArn"], "us-east-1"),
                    LambdaContext("execute"),
                )
            )
        )
        for m in got:
            sqs.delete_message(QueueUrl=private_orders_queue, ReceiptHandle=m["ReceiptHandle"])
        delivered += len(got)

    final = {str(o.status) for oid in ids if (o := store.get_order(oid))}
    assert final == {"confirmed", "failed"}
    for oid in ids:
        seen.append(json.dumps(http(submit, "GET", f"/api/orders/{oid}")))
        seen += [json.dumps(e.frame(), default=str) for e in store.events(oid)]
    seen.append(json.dumps(http(submit, "GET", "/api/orders?limit=50")))
    seen.append(json.dumps(http(submit, "GET", "/health")))

    # The wallet's own faces: repr, str, and a bad secret's error message.
    wallet = Wallet(seed.WALLET_KEYPAIR)
    seen += [repr(wallet), str(wallet), f"{wallet}"]
    bad = str(seed.WALLET_KEYPAIR)[:-3] + "000"
    with pytest.raises(ConfigError) as refused:
        parse_secret(bad + "!")
    seen.append(str(refused.value))

    out = capfd.readouterr()
    seen += [out.out, out.err, caplog.text]
    everything = "\n".join(seen)
    assert "order step done" in everything  # the capture did see the handlers' logs
    assert len(everything) > 10_000
    for secret in encodings():
        assert secret not in everything
