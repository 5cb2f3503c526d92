"""IAM as the template says, on the whole local stack: every route, queue and schedule is
driven, and every AWS call a function made (and every SQS call its event source mapping made
for it) is judged against that function's role from SAM's expansion of template.yaml
(local/iam.py). No call may be denied; the calls that need a statement of their own (closing a
revoked key's socket: DELETE on @connections, from notify and from ws_connect) must have been
made and allowed."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from engine import db, keys
from engine.config import Settings
from engine.notify import StatusQueue
from local.iam import AccessChecker, denials_report
from local.poller import wait_until
from local.template import http_routes
from tests.stack import Running, follow, http_json, isolated_stack, open_ws, submit_http

pytestmark = pytest.mark.e2e

# A concrete request for each route of the HTTP API (the test fails on a route it lacks).
ROUTE_PATHS = {
    "/api/orders/{orderId}": "/api/orders/{order}",
    "/docs/{proxy+}": "/docs/swagger-ui.css",
    "/console/{proxy+}": "/console/app.js",
}


@pytest.fixture(scope="module")
def stack(pg_base_url: str, localstack: str) -> Iterator[Running]:
    with isolated_stack(
        pg_base_url, f"orders_e2e_iam_{uuid.uuid4().hex[:8]}", aws=localstack, workers=True
    ) as running:
        yield running


def limit_order() -> dict[str, Any]:
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    return {
        "orderType": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": "0.01",
        "limitPrice": "100000",  # never reached: it stays watched
        "expiresAt": expires,
    }


def open_as(stack: Running, secret: str, query: str = "") -> ClientConnection:
    url = f"{stack.ws}{query}"
    return connect(url, open_timeout=30, additional_headers={"x-api-key": secret}).__enter__()


def last_frame_then_closed(ws: ClientConnection, access: AccessChecker) -> dict[str, Any]:
    """Read frames until the server closes the socket; the last one read."""
    last: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            last = json.loads(ws.recv(timeout=deadline - time.monotonic()))
        except ConnectionClosed:
            return last
        except TimeoutError:
            break
    raise AssertionError(
        f"the socket stayed open (last frame {last}); denied: {denials_report(access.denials)}"
    )


def test_every_route_queue_and_schedule_runs_with_no_call_denied(stack: Running) -> None:
    access = stack.access
    assert access is not None, "the stack checks IAM by default"
    pool = db.pool(stack.database_url)

    # The orders queue (execute), the status queue (notify), and the HTTP API's every route.
    market = submit_http(stack)
    with open_ws(market["wsUrl"]) as ws:
        assert follow(ws)[-1]["status"] == "confirmed"
    status, watched = http_json("POST", f"{stack.http}/api/orders/execute", limit_order())
    assert status == 202, watched
    for method, path in http_routes():
        concrete = ROUTE_PATHS.get(path, path).format(order=watched["orderId"])
        query = "?tokenIn=SOL&tokenOut=USDC&amountIn=0.01" if path == "/api/quote" else ""
        body = limit_order() if (method, path) == ("POST", "/api/orders/execute") else None
        if method != "GET" or path.startswith("/api/") or path == "/health":
            code, reply = http_json(method, f"{stack.http}{concrete}{query}", body)
            assert code < 500, (method, path, code, reply)
        else:  # a page: its function answered (503 when Swagger UI's files are not vendored)
            code, page = _get_page(f"{stack.http}{concrete}")
            assert code not in (500, 502, 504), (method, path, code, page)

    # The dead-letter queue (execute's second mapping): a dead letter of a finished order is
    # settled (nothing to do) and deleted.
    settings = Settings.from_env()
    assert settings.orders_dlq_arn is not None
    sqs = boto3.client("sqs", endpoint_url=settings.sqs_endpoint_url)
    dlq_url = sqs.get_queue_url(QueueName=settings.orders_dlq_arn.rsplit(":", 1)[1])
    sqs.send_message(
        QueueUrl=dlq_url["QueueUrl"], MessageBody=json.dumps({"orderId": market["orderId"]})
    )

    # A revoked key's sockets are closed by the function that finds out: ws_connect on the
    # socket's next frame, notify at its next delivery (each posts a last frame, then DELETE).
    key, secret = keys.create_key("revoked while connected", pool=pool)
    asking = open_as(stack, secret)
    asking.send(json.dumps(limit_order()))
    followed = uuid.UUID(json.loads(asking.recv(timeout=30))["orderId"])
    following = open_as(stack, secret, f"?orderId={followed}")
    revoked = keys.revoke(key.id, pool=pool)  # cancels the key's watching order too
    assert revoked is not None
    assert [e.order_id for e in revoked.cancelled] == [followed]
    asking.send(json.dumps({"action": "subscribe", "orderId": str(followed)}))
    assert last_frame_then_closed(asking, access)["error"]["code"] == "api_key_revoked"
    # The cancellation's frame is owed to the socket following the order: notify's delivery
    # finds the key revoked and closes that socket.
    for event in revoked.cancelled:
        StatusQueue.from_settings(Settings.from_env()).publish(event)
    assert last_frame_then_closed(following, access)["error"]["code"] == "api_key_revoked"

    def seen(function: str, action: str, fragment: str = "") -> bool:
        return any(
            (f, a) == (function, action) and fragment in r for f, a, r in list(access.allowed)
        )

    # The dead letter was received and deleted under execute's role; the schedule has run.
    assert wait_until(lambda: seen("execute", "sqs:DeleteMessage", "-dlq"), timeout=30)
    assert wait_until(lambda: watch_ticks(stack) > 0, timeout=30)
    manage = "execute-api:ManageConnections"
    for function in ("notify", "ws_connect"):
        assert seen(function, manage, "/POST/@connections/"), function
        assert seen(function, manage, "/DELETE/@connections/"), function
    assert seen("submit", "sqs:SendMessage")
    assert seen("execute", "secretsmanager:GetSecretValue")
    assert seen("execute", "sqs:ReceiveMessage")
    assert seen("notify", "sqs:ReceiveMessage")
    assert access.denials == [], denials_report(access.denials)


def test_each_function_runs_in_worker_processes_of_its_own(stack: Running) -> None:
    """After the test above drove every function: one process tree per function, each worker's
    command line naming its function, none of them this process."""
    assert stack.functions is not None, "this stack runs its functions in workers"
    seen: dict[str, set[int]] = {}
    for function, pool in stack.functions.pools().items():
        for env in pool.environments():
            if env.dead:
                continue
            argv = Path(f"/proc/{env.pid}/cmdline").read_bytes().split(b"\0")
            assert function.encode() in argv, (function, argv)
            assert b"awslambdaric" in b" ".join(argv)
            seen.setdefault(function, set()).add(env.pid)
    assert {"submit", "authorizer", "ws_connect", "execute", "notify", "watch"} <= set(seen)
    pids = [pid for pids in seen.values() for pid in pids]
    assert len(pids) == len(set(pids))
    assert os.getpid() not in pids


def watch_ticks(stack: Running) -> int:
    metrics = http_json("GET", f"{stack.http}/_local/metrics")[1]["metrics"]
    found = [m for m in metrics if m.get("name") == "WatchTick"]
    return int(found[0]["count"]) if found else 0


def _get_page(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:200].decode(errors="replace")
