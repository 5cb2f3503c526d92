"""The HTTP API through the real Lambda handler (Mangum) with API Gateway v2 events."""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from engine.store import Store
from local.apigw import LambdaContext, ensure_event_loop, http_event
from local.handlers import fresh_handler
from tests.auth import as_key

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01", "slippage": 0.5}


@pytest.fixture
def submit(database_url: str, orders_queue: str, served_chain: Any, api_key: Any) -> Any:
    """The submit handler, called as the HTTP API calls it for the session's API key."""
    return as_key(fresh_handler("submit"), api_key[0].id)


def restarted(submit: Any) -> Any:
    """A new submit container for the same key, built from the environment as it is now."""
    return as_key(fresh_handler("submit"), submit.api_key_id)


def call(handler: Any, method: str, path: str, body: Any = None, **headers: str | None) -> Any:
    raw = (
        body
        if isinstance(body, bytes)
        else (json.dumps(body).encode() if body is not None else b"")
    )
    given = {
        "content-type": "application/json",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    hdrs = {k: v for k, v in given.items() if v is not None}  # content_type=None: no header
    path, _, query = path.partition("?")
    event = http_event(method, path, headers=hdrs, body=raw, query=query)
    ensure_event_loop()  # a test's worker thread is a container of its own
    reply = handler(event, LambdaContext("submit"))
    reply["json"] = json.loads(reply["body"]) if reply.get("body") else None
    return reply


def queued_ids(queue_url: str) -> list[str]:
    sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
    out: list[str] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
        )
        msgs = got.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"])["orderId"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_submit_stores_then_enqueues_and_replies_202(
    submit: Any, orders_queue: str, store: Store
) -> None:
    queued_ids(orders_queue)
    reply = call(submit, "POST", "/api/orders/execute", ORDER)
    assert reply["statusCode"] == 202
    body = reply["json"]
    assert body["status"] == "pending"
    order_id = uuid.UUID(body["orderId"])
    row = store.get_order(order_id)
    assert row
    assert row.status == "pending"
    assert row.enqueued_at is not None
    assert queued_ids(orders_queue) == [body["orderId"]]


def test_get_order_shows_request_status_and_events(submit: Any) -> None:
    order_id = call(submit, "POST", "/api/orders/execute", ORDER)["json"]["orderId"]
    reply = call(submit, "GET", f"/api/orders/{order_id}")
    assert reply["statusCode"] == 200
    detail = reply["json"]
    assert detail["orderId"] == order_id
    assert detail["status"] == "pending"
    assert detail["request"]["tokenIn"] == "SOL"
    assert detail["amountIn"] == "0.01"
    assert [e["status"] for e in detail["events"]] == ["pending"]
    assert detail["events"][0]["seq"] == 1


def test_unknown_order_is_404_and_malformed_id_is_400(submit: Any) -> None:
    missing = call(submit, "GET", f"/api/orders/{uuid.uuid4()}")
    assert missing["statusCode"] == 404
    assert missing["json"]["error"]["code"] == "order_not_found"
    bad = call(submit, "GET", "/api/orders/not-a-uuid")
    assert bad["statusCode"] == 400
    assert bad["json"]["error"]["field"] == "orderId"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**ORDER, "amountIn": "-1"}, "amountIn"),
        ({**ORDER, "slippage": 51}, "slippage"),
        ({**ORDER, "tokenOut": "SOL"}, "tokenOut"),
        ({**ORDER, "orderType": "limit"}, "slippage"),
        ({**ORDER, "orderType": "stop"}, "orderType"),
        ({"tokenIn": "SOL"}, "tokenOut"),
    ],
)
def test_invalid_orders_get_400_naming_the_field_and_store_nothing(
    submit: Any, store: Store, body: dict[str, Any], field: str
) -> None:
    before, _ = store.list_orders(limit=100)
    reply = call(submit, "POST", "/api/orders/execute", body)
    assert reply["statusCode"] == 400
    assert reply["json"]["error"]["field"] == field
    after, _ = store.list_orders(limit=100)
    assert [o.id for o in after] == [o.id for o in before]


@pytest.mark.parametrize("raw", [b"{", b"[1,2]", b"\xff\xfe", b'{"amountIn": NaN}', b""])
def test_malformed_json_is_400(submit: Any, raw: bytes) -> None:
    reply = call(submit, "POST", "/api/orders/execute", raw)
    assert reply["statusCode"] == 400
    assert "error" in reply["json"]


def test_wrong_content_type_is_refused(submit: Any) -> None:
    reply = call(submit, "POST", "/api/orders/execute", ORDER, content_type="text/plain")
    assert reply["statusCode"] == 415
    assert reply["json"]["error"]["code"] == "unsupported_media_type"


def test_body_over_64_kib_is_413(submit: Any) -> None:
    big = {**ORDER, "tokenIn": "S" * (65 * 1024)}
    reply = call(submit, "POST", "/api/orders/execute", big)
    assert reply["statusCode"] == 413
    assert reply["json"]["error"]["code"] == "payload_too_large"


def test_idempotency_key_replays_and_conflicts(submit: Any) -> None:
    key = f"key-{uuid.uuid4()}"
    first = call(submit, "POST", "/api/orders/execute", ORDER, idempotency_key=key)
    again = call(submit, "POST", "/api/orders/execute", ORDER, idempotency_key=key)
    assert first["statusCode"] == again["statusCode"] == 202
    assert first["json"]["orderId"] == again["json"]["orderId"]
    assert again["headers"].get("idempotent-replayed") == "true"
    other = call(
        submit, "POST", "/api/orders/execute", {**ORDER, "amountIn": "0.02"}, idempotency_key=key
    )
    assert other["statusCode"] == 409
    assert other["json"]["error"]["code"] == "idempotency_conflict"


def test_racing_http_submits_with_one_key_make_one_order(submit: Any) -> None:
    key = f"race-{uuid.uuid4()}"
    barrier = threading.Barrier(6)

    def post(_: int) -> str:
        barrier.wait()
        return str(
            call(submit, "POST", "/api/orders/execute", ORDER, idempotency_key=key)["json"][
                "orderId"
            ]
        )

    with ThreadPoolExecutor(6) as pool:
        assert len(set(pool.map(post, range(6)))) == 1


def test_enqueue_failure_fails_the_order_with_a_reason_and_frees_the_key(
    submit: Any, store: Store, monkeypatch: pytest.MonkeyPatch, orders_queue: str
) -> None:
    # A queue URL that does not exist on the (real) SQS server: SendMessage is refused.
    monkeypatch.setenv("ORDERS_QUEUE_URL", orders_queue.rsplit("/", 1)[0] + "/missing-queue")
    key = f"k-{uuid.uuid4()}"
    reply = call(restarted(submit), "POST", "/api/orders/execute", ORDER, idempotency_key=key)
    monkeypatch.undo()
    assert reply["statusCode"] == 503
    assert reply["json"]["error"]["code"] == "queue_unavailable"
    page, _ = store.list_orders(limit=1)
    failed = page[0]
    assert failed.status == "failed"
    assert failed.failure_code == "queue_unavailable"
    assert [e.status for e in store.events(failed.id)] == ["pending", "failed"]
    # The key was released: the client's retry, now that the queue is back, is accepted.
    retry = call(submit, "POST", "/api/orders/execute", ORDER, idempotency_key=key)
    assert retry["statusCode"] == 202
    assert retry["json"]["orderId"] != str(failed.id)


def test_list_orders_newest_first_with_cursor_and_bounded_limit(submit: Any) -> None:
    ids = [call(submit, "POST", "/api/orders/execute", ORDER)["json"]["orderId"] for _ in range(3)]
    page = call(submit, "GET", "/api/orders?limit=2")["json"]
    assert [o["orderId"] for o in page["orders"]] == ids[::-1][:2]
    rest = call(submit, "GET", f"/api/orders?limit=2&cursor={page['nextCursor']}")["json"]
    assert rest["orders"][0]["orderId"] == ids[0]
    assert call(submit, "GET", "/api/orders?limit=1000")["statusCode"] == 400
    assert call(submit, "GET", "/api/orders?cursor=%%%")["statusCode"] == 400


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 1000 + b"]" * 1000,  # the probe's: a RecursionError in the decoder was a 500
        b'{"a": 1, "a": 2}',
        b'["2026-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000", 1]',
        b"\xff\xfe",
        b"[NaN, 1]",
        b'["2020-01-01T00:00:00+00:00", 5]',  # issue 25: a non-string id was a 500
        b'[5, "00000000-0000-0000-0000-000000000000"]',
    ],
    ids=["nested", "duplicate key", "three items", "not utf-8", "nan", "int id", "int time"],
)
def test_a_cursor_we_did_not_make_is_400_on_cursor(submit: Any, raw: bytes) -> None:
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    reply = call(submit, "GET", f"/api/orders?cursor={cursor}")
    assert reply["statusCode"] == 400
    assert reply["json"]["error"] == {
        "code": "invalid_request",
        "message": "cursor is not valid",
        "field": "cursor",
    }


def test_health_reports_database_and_queue(submit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = call(submit, "GET", "/health")
    assert ok["statusCode"] == 200
    assert ok["json"]["checks"]["queue"]["ok"] is True
    monkeypatch.setenv("ORDERS_QUEUE_URL", "http://127.0.0.1:9/000000000000/nothing")
    monkeypatch.setenv("SQS_ENDPOINT_URL", "http://127.0.0.1:9")
    down = call(restarted(submit), "GET", "/health")
    monkeypatch.undo()
    assert down["statusCode"] == 503
    assert down["json"]["checks"]["queue"]["ok"] is False
    assert down["json"]["checks"]["database"]["ok"] is True


def test_health_reports_the_rpc(submit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert call(submit, "GET", "/health")["json"]["checks"]["rpc"] == {"ok": True}
    monkeypatch.setenv("SOLANA_RPC_URL", "http://127.0.0.1:9")
    down = call(restarted(submit), "GET", "/health")
    monkeypatch.undo()
    assert down["statusCode"] == 503
    assert down["json"]["checks"]["rpc"]["ok"] is False
    assert "127.0.0.1" not in json.dumps(down["json"])  # RPC URLs can carry API keys


def test_openapi_is_served(submit: Any) -> None:
    spec = call(submit, "GET", "/openapi.json")["json"]
    assert "/api/orders/execute" in spec["paths"]
    assert "requestBody" in spec["paths"]["/api/orders/execute"]["post"]


def test_unknown_route_is_a_json_404(submit: Any) -> None:
    reply = call(submit, "GET", "/nope")
    assert reply["statusCode"] == 404
    assert reply["json"]["error"]["code"] == "not_found"


def test_the_openapi_body_is_the_model_that_validates_orders(submit: Any) -> None:
    """Issue 25 item 0: one model validates and documents every order body. Every field the
    document lists is one submit takes (a 202 with it), and a field it does not list is a 400
    naming that field (the document says additionalProperties: false)."""
    spec = call(submit, "GET", "/openapi.json")["json"]
    content = spec["paths"]["/api/orders/execute"]["post"]["requestBody"]["content"]
    schema = content["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"tokenIn", "tokenOut"}
    # exactly one of amountIn (exact in) and amountOut (exact out)
    assert schema["oneOf"] == [{"required": ["amountIn"]}, {"required": ["amountOut"]}]
    market = {"slippage": 1, "poolId": None, "baseIn": True, "maxPriorityFeeLamports": "5000"}
    for name in set(schema["properties"]) - {"tokenIn", "tokenOut", "amountIn", "orderType"}:
        if name in market:
            reply = call(submit, "POST", "/api/orders/execute", {**ORDER, name: market[name]})
            assert reply["statusCode"] == 202, (name, reply["json"])
        else:  # a limit or sniper order's field: refused on a market order, naming it
            reply = call(submit, "POST", "/api/orders/execute", {**ORDER, name: "1"})
            assert reply["json"]["error"]["field"] == name
    assert "maxPriorityFeeLamports" in schema["properties"]
    reply = call(submit, "POST", "/api/orders/execute", {**ORDER, "notAField": 1})
    assert reply["statusCode"] == 400
    assert reply["json"]["error"]["field"] == "notAField"
