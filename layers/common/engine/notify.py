"""Status delivery: post each committed status event to every WebSocket subscribed to its order.

Guarantee: per (connection, order) subscription, frames go out in seq order, each once, with no
gap, also at the seam between a `subscribe` replay and live notifications. `deliver` is the one
way a frame is posted: in one transaction it locks the subscription row, reads the events after
`delivered_seq`, posts them in order and stores the last one posted. Replay (`subscribe`) and
live notification (`fan_out`) both call it, so the row lock serialises them: whichever runs
second sees the first one's progress and posts only what is still missing.

Producers (the executor) call `publish(event)` after each committed transition. With
STATUS_QUEUE_URL set it only enqueues the frame (the notify function fans out); without it, it
fans out in-process (local runs and tests).

A post that fails with 410 GoneException deletes the connection (its subscriptions cascade).
Posts have a short timeout and no retries, and different connections are served concurrently,
so one hung or dead socket never holds up the others.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from engine import db
from engine.config import settings
from engine.connections import Connections, Pool
from engine.store import Event, Store

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient

logger = Logger(child=True)

# A post answers in milliseconds when the socket is healthy; anything slower is a socket we
# should not wait on. No retries: the frame stays undelivered (delivered_seq does not move) and
# the next delivery for that subscription sends it again.
POST_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 1},
    max_pool_connections=32,
)
FAN_OUT_WORKERS = 16
# API Gateway answers 410 to a post that arrives before `$connect` has returned and the
# upgrade completed; a connection this young is "not ready yet", not gone.
CONNECT_GRACE = timedelta(seconds=10)
# A backlog message is delayed so that it reaches notify after the upgrade has completed.
BACKLOG_DELAY_SECONDS = 1
# How long a delivery may wait for another delivery of the same subscription.
LOCK_TIMEOUT = "15s"

_client_lock = threading.Lock()
_clients: dict[str, ApiGatewayManagementApiClient] = {}
_executor: ThreadPoolExecutor | None = None


# -- the management API ---------------------------------------------------------------------------


def management_client(endpoint: str) -> ApiGatewayManagementApiClient:
    """A management API client for `endpoint` (one per endpoint; botocore clients are threadsafe,
    creating them is not)."""
    with _client_lock:
        client = _clients.get(endpoint)
        if client is None:
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            client = boto3.session.Session().client(
                "apigatewaymanagementapi",
                endpoint_url=endpoint,
                region_name=region or "us-east-1",
                config=POST_CONFIG,
            )
            _clients[endpoint] = client
        return client


def endpoint_for(domain: str | None, stage: str | None) -> str:
    """The management endpoint: WS_MANAGEMENT_ENDPOINT, else the one API Gateway implies."""
    configured = settings().ws_management_endpoint
    if configured:
        return configured
    if not domain:
        raise RuntimeError("set WS_MANAGEMENT_ENDPOINT: the connection names no domain")
    return f"https://{domain}/{stage}" if stage and stage != "$default" else f"https://{domain}"


def encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, default=str, separators=(",", ":")).encode()


def post_frame(endpoint: str, connection_id: str, frame: dict[str, Any]) -> bool:
    """Post one frame outside any subscription (error frames). False if the socket is gone."""
    try:
        management_client(endpoint).post_to_connection(
            ConnectionId=connection_id, Data=encode(frame)
        )
    except ClientError as exc:
        if _is_gone(exc):
            return False
        raise
    return True


def _is_gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") == "GoneException" or status == 410


# -- delivery -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What one `deliver` did. outcome: ok | gone | not_ready | not_subscribed | failed."""

    connection_id: str
    order_id: uuid.UUID
    outcome: str
    posted: int = 0
    delivered_seq: int | None = None
    error: str | None = None

    @property
    def retryable(self) -> bool:
        """Frames are still owed to a live socket: worth another delivery later."""
        return self.outcome in ("not_ready", "failed")


def _pool_of(store_or_pool: Store | Connections | Pool | None) -> Pool:
    if store_or_pool is None:
        return db.pool()
    if isinstance(store_or_pool, Store | Connections):
        return store_or_pool.pool
    return store_or_pool


def deliver(
    store_or_pool: Store | Connections | Pool | None, connection_id: str, order_id: uuid.UUID
) -> Delivery:
    """Post every event of the order after the subscription's delivered_seq, in order.

    Holds the subscription's row lock while posting (each post is bounded by POST_CONFIG), so
    concurrent deliveries to one subscription run one after the other and never repeat a frame.
    Raises only for database errors.
    """
    pool = _pool_of(store_or_pool)
    gone = False
    failure: str | None = None
    posted = 0
    with pool.connection() as conn, conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        row = conn.execute(
            """SELECT s.delivered_seq, c.domain, c.stage, c.endpoint, c.connected_at
                     FROM subscriptions s JOIN connections c USING (connection_id)
                    WHERE s.connection_id = %s AND s.order_id = %s
                      FOR UPDATE OF s""",
            (connection_id, order_id),
        ).fetchone()
        if row is None:
            return Delivery(connection_id, order_id, "not_subscribed")
        # Read after the lock is held: a delivery that committed while we waited has moved
        # delivered_seq, and this statement's snapshot sees every event committed before it.
        events = conn.execute(
            "SELECT * FROM order_events WHERE order_id = %s AND seq > %s ORDER BY seq",
            (order_id, row["delivered_seq"]),
        ).fetchall()
        last = int(row["delivered_seq"])
        if events:
            client = management_client(row["endpoint"] or endpoint_for(row["domain"], row["stage"]))
            for event_row in events:
                frame = Event.from_row(event_row).frame()
                try:
                    client.post_to_connection(ConnectionId=connection_id, Data=encode(frame))
                except ClientError as exc:
                    if _is_gone(exc):
                        gone = True
                    else:
                        failure = f"{type(exc).__name__}: {exc.response.get('Error', {})}"
                    break
                except BotoCoreError as exc:  # timeouts, refused connections
                    failure = type(exc).__name__
                    break
                last = int(event_row["seq"])
                posted += 1
            if posted:
                conn.execute(
                    "UPDATE subscriptions SET delivered_seq = %s"
                    " WHERE connection_id = %s AND order_id = %s",
                    (last, connection_id, order_id),
                )
    # The transaction is over: deleting the connection locks its other subscriptions, which
    # other deliveries may hold; doing it inside our own lock could deadlock with them.
    if gone:
        young = datetime.now(UTC) - row["connected_at"] < CONNECT_GRACE
        if young:
            return Delivery(connection_id, order_id, "not_ready", posted, last)
        Connections(pool).remove(connection_id)
        logger.info("connection gone; removed", extra={"connection_id": connection_id})
        return Delivery(connection_id, order_id, "gone", posted, last)
    if failure:
        logger.warning(
            "post failed; frames stay owed",
            extra={"connection_id": connection_id, "order_id": str(order_id), "error": failure},
        )
        return Delivery(connection_id, order_id, "failed", posted, last, failure)
    return Delivery(connection_id, order_id, "ok", posted, last)


def _pool_executor() -> ThreadPoolExecutor:
    global _executor
    with _client_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(FAN_OUT_WORKERS, thread_name_prefix="notify")
        return _executor


def deliver_many(
    store_or_pool: Store | Connections | Pool | None,
    pairs: Iterable[tuple[str, uuid.UUID]],
) -> list[Delivery]:
    """Deliver to several subscriptions concurrently; a database error becomes `failed`."""
    pool = _pool_of(store_or_pool)
    todo = list(pairs)
    if len(todo) == 1:  # the common case: no thread hop
        return [deliver(pool, *todo[0])]
    futures = [_pool_executor().submit(deliver, pool, cid, oid) for cid, oid in todo]
    results: list[Delivery] = []
    for (cid, oid), future in zip(todo, futures, strict=True):
        try:
            results.append(future.result())
        except Exception as exc:
            logger.exception("delivery failed", extra={"connection_id": cid})
            results.append(Delivery(cid, oid, "failed", error=type(exc).__name__))
    return results


def fan_out(
    order_id: uuid.UUID, store_or_pool: Store | Connections | Pool | None = None
) -> list[Delivery]:
    """Deliver the order's outstanding events to every connection subscribed to it."""
    pool = _pool_of(store_or_pool)
    subscribers = Connections(pool).subscribers(order_id)
    return deliver_many(pool, ((cid, order_id) for cid in subscribers))


# -- producers ------------------------------------------------------------------------------------


def _send_status_message(body: dict[str, Any], delay_seconds: int = 0) -> None:
    from engine.queue import sqs_client  # the SQS client the submit path already configures

    cfg = settings()
    assert cfg.status_queue_url
    sqs_client(cfg.sqs_endpoint_url).send_message(
        QueueUrl=cfg.status_queue_url,
        MessageBody=json.dumps(body, default=str),
        DelaySeconds=delay_seconds,
    )


def publish(event: Event) -> None:
    """What producers call after a status transition commits (the executor's `publish`).

    The message is only a trigger: notify reads the events from Postgres, so a lost, repeated
    or reordered message cannot reorder or duplicate frames.
    """
    if settings().status_queue_url:
        _send_status_message(event.frame())
    else:
        fan_out(event.order_id)


def publish_backlog(order_id: uuid.UUID) -> None:
    """Ask for the order's history to be delivered to its (new) subscribers.

    Used by `$connect ?orderId=`: a post from inside `$connect` is refused (410), so the backlog
    goes out from notify shortly after the upgrade completes.
    """
    if settings().status_queue_url:
        _send_status_message(
            {"orderId": str(order_id), "backlog": True}, delay_seconds=BACKLOG_DELAY_SECONDS
        )
        return
    # No queue (local, tests): a background thread plays notify's part, retrying while the
    # socket is not ready yet.
    pool = db.pool()

    def later() -> None:
        for _ in range(20):
            time.sleep(0.25)
            try:
                if not any(d.outcome == "not_ready" for d in fan_out(order_id, pool)):
                    return
            except Exception:
                logger.exception("backlog delivery failed", extra={"order_id": str(order_id)})
                return

    threading.Thread(target=later, name=f"backlog-{order_id}", daemon=True).start()


def subscribe_and_deliver(
    connections: Connections,
    connection_id: str,
    order_id: uuid.UUID,
    from_seq: int = 0,
    *,
    domain: str | None = None,
    stage: str | None = None,
    endpoint: str | None = None,
) -> Delivery:
    """The `subscribe` route: reset the subscription to `from_seq`, then replay what follows.

    A notification racing with this either runs before our delivery (it posts from `from_seq`
    on, ours then finds nothing new) or after it (it finds our delivered_seq): no gap, no dup.
    """
    connections.subscribe(
        connection_id, order_id, from_seq, domain=domain, stage=stage, endpoint=endpoint
    )
    return deliver(connections.pool, connection_id, order_id)
