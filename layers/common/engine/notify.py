"""Status delivery: post each committed status event to every WebSocket subscribed to its order.

Guarantee: per (connection, order) subscription, frames go out in seq order, each once, with no
gap, also at the seam between a `subscribe` replay and live notifications. `deliver` is the one
way a frame is posted: in one transaction it locks the subscription row, reads the events after
`delivered_seq`, posts them in order and stores the last one posted. Replay (`subscribe`) and
live notification (`fan_out`) both call it, so the row lock serialises them: whichever runs
second sees the first one's progress and posts only what is still missing.

Producers (the executor) hold a `Publisher` and call `publish(event)` after each committed
transition. In the cloud and the local stack that is `StatusQueue`: a small trigger message on the
status-events queue, which the notify function consumes and answers with `Fanout.fan_out`. A
test may pass any other Publisher (e.g. one that fans out in-process).

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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import Connection
from psycopg.rows import DictRow

from engine import observability
from engine.config import Settings
from engine.connections import Connections
from engine.db import Pool
from engine.errors import ConfigError
from engine.metrics import Metric
from engine.store import Event

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

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
REVOKED_MESSAGE = "this connection's API key was revoked; the connection is closed"

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


def encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, default=str, separators=(",", ":")).encode()


def _is_gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") == "GoneException" or status == 410


# -- delivery -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What one `deliver` did. outcome: ok | gone | not_ready | not_subscribed | failed |
    revoked (the connection's API key was revoked: nothing posted, the socket closed)."""

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


# -- producers ------------------------------------------------------------------------------------


@dataclass
class _Posting:
    """The progress of posting one subscription's outstanding frames."""

    last: int  # the last seq posted (the subscription's delivered_seq to store)
    posted: int = 0
    gone: bool = False  # the socket answered 410
    failure: str | None = None  # another error: the frames stay owed
    lag: list[float] = field(default_factory=list)

    def post(
        self,
        client: ApiGatewayManagementApiClient,
        connection_id: str,
        events: list[Any],
        live: bool,
    ) -> None:
        """Post `events` in order until one fails."""
        for event_row in events:
            frame = Event.from_row(event_row).frame()
            try:
                client.post_to_connection(ConnectionId=connection_id, Data=encode(frame))
            except ClientError as exc:
                if _is_gone(exc):
                    self.gone = True
                else:
                    self.failure = f"{type(exc).__name__}: {exc.response.get('Error', {})}"
                return
            except BotoCoreError as exc:  # timeouts, refused connections
                self.failure = type(exc).__name__
                return
            self.last = int(event_row["seq"])
            self.posted += 1
            if live:
                self.lag.append((datetime.now(UTC) - event_row["at"]).total_seconds())

    def report(self) -> None:
        for seconds in self.lag:
            observability.milliseconds(Metric.NOTIFY_LAG, seconds)
        if self.posted:
            observability.count(Metric.FRAMES_POSTED, self.posted)


def _pool_executor() -> ThreadPoolExecutor:
    global _executor
    with _client_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(FAN_OUT_WORKERS, thread_name_prefix="notify")
        return _executor


class Fanout:
    """Posting frames to WebSocket connections, over one database and management endpoint."""

    def __init__(self, pool: Pool, management_endpoint: str | None = None) -> None:
        self.pool = pool
        self.connections = Connections(pool)
        self.management_endpoint = management_endpoint  # WS_MANAGEMENT_ENDPOINT, if set

    @classmethod
    def from_settings(cls, pool: Pool, cfg: Settings) -> Fanout:
        return cls(pool, cfg.ws_management_endpoint)

    def endpoint_for(self, domain: str | None, stage: str | None) -> str:
        """The management endpoint: the configured one, else the one API Gateway implies."""
        if self.management_endpoint:
            return self.management_endpoint
        if not domain:
            raise ConfigError(
                "set WS_MANAGEMENT_ENDPOINT: the connection names no domain",
                field="WS_MANAGEMENT_ENDPOINT",
            )
        return f"https://{domain}/{stage}" if stage and stage != "$default" else f"https://{domain}"

    def post_frame(self, endpoint: str, connection_id: str, frame: dict[str, Any]) -> bool:
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

    def deliver(
        self,
        connection_id: str,
        order_id: uuid.UUID,
        *,
        live: bool = False,
        close_revoked: bool = True,
    ) -> Delivery:
        """Post every event of the order after the subscription's delivered_seq, in order
        (`live`: a notification of new events, whose lag from commit to post is measured; a
        replay of history is not).

        Holds the subscription's row lock while posting (each post is bounded by POST_CONFIG),
        so concurrent deliveries to one subscription run one after the other and never repeat a
        frame. A connection whose API key is revoked gets the frames it is owed (the
        cancellations its revocation made are the last of them), then it is closed with the
        reason. Raises only for database errors.
        """
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            row = conn.execute(
                """SELECT s.delivered_seq, c.domain, c.stage, c.endpoint, c.connected_at,
                          k.revoked_at
                         FROM subscriptions s JOIN connections c USING (connection_id)
                         LEFT JOIN api_keys k ON k.id = c.api_key_id
                        WHERE s.connection_id = %s AND s.order_id = %s
                          FOR UPDATE OF s""",
                (connection_id, order_id),
            ).fetchone()
            if row is None:
                return Delivery(connection_id, order_id, "not_subscribed")
            endpoint = row["endpoint"] or self.endpoint_for(row["domain"], row["stage"])
            posting = _Posting(last=int(row["delivered_seq"]))
            self._post_owed(conn, endpoint, connection_id, order_id, posting, live)
        if row["revoked_at"] is not None and close_revoked:  # outside the lock, as a gone
            self.close(endpoint, connection_id)  # connection's removal
            return Delivery(connection_id, order_id, "revoked")
        posting.report()
        return self._outcome(connection_id, order_id, row["connected_at"], posting)

    def _post_owed(
        self,
        conn: Connection[DictRow],
        endpoint: str,
        connection_id: str,
        order_id: uuid.UUID,
        posting: _Posting,
        live: bool,
    ) -> None:
        """Post the events after `posting.last` and store how far it got (under the row lock)."""
        # Read after the lock is held: a delivery that committed while we waited has moved
        # delivered_seq, and this statement's snapshot sees every event committed before it.
        events = conn.execute(
            "SELECT * FROM order_events WHERE order_id = %s AND seq > %s ORDER BY seq",
            (order_id, posting.last),
        ).fetchall()
        if events:
            posting.post(management_client(endpoint), connection_id, events, live)
        if posting.posted:
            conn.execute(
                "UPDATE subscriptions SET delivered_seq = %s"
                " WHERE connection_id = %s AND order_id = %s",
                (posting.last, connection_id, order_id),
            )

    def close(
        self,
        endpoint: str,
        connection_id: str,
        reason: str = REVOKED_MESSAGE,
        *,
        only_if_known: bool = True,
    ) -> bool:
        """Close a connection from our side, once: forget it (the one caller whose delete
        removed the row goes on; a concurrent delivery or frame finds it gone), then a last
        error frame saying why, then the management API's DELETE (API Gateway closes the
        socket). A socket already gone is simply forgotten. `only_if_known=False` (a frame
        arrived on the socket, so it is open) closes it even when its row is gone already.
        False when the management API refused (the socket may still be open)."""
        if not self.connections.remove(connection_id) and only_if_known:
            return True
        client = management_client(endpoint)
        frame = {"error": {"code": "api_key_revoked", "message": reason}}
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=encode(frame))
            client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if not _is_gone(exc):
                logger.warning("closing a connection failed", extra={"error": str(exc)})
                return False
        except BotoCoreError as exc:
            logger.warning("closing a connection failed", extra={"error": type(exc).__name__})
            return False
        logger.info("connection closed", extra={"connection_id": connection_id})
        return True

    def close_key(self, api_key_id: uuid.UUID) -> tuple[int, int]:
        """Close every open connection of a (revoked) API key, each after the frames it is
        owed (the cancellations of its orders): (closed, failed). One that failed is closed at
        its next delivery or frame, which check the key."""
        closed = failed = 0
        for sock in self.connections.of_key(api_key_id):
            endpoint = sock.endpoint or self.endpoint_for(sock.domain, sock.stage)
            try:
                for order_id in self.connections.orders_of(sock.connection_id):
                    self.deliver(sock.connection_id, order_id, close_revoked=False)
                done = self.close(endpoint, sock.connection_id)
            except (ClientError, BotoCoreError) as exc:
                logger.warning("closing a connection failed", extra={"error": type(exc).__name__})
                done = False
            closed, failed = closed + done, failed + (not done)
        return closed, failed

    def _outcome(
        self, connection_id: str, order_id: uuid.UUID, connected_at: datetime, posting: _Posting
    ) -> Delivery:
        # The transaction is over: deleting the connection locks its other subscriptions, which
        # other deliveries may hold; doing it inside our own lock could deadlock with them.
        done = (posting.posted, posting.last)
        if posting.gone:
            if datetime.now(UTC) - connected_at < CONNECT_GRACE:
                return Delivery(connection_id, order_id, "not_ready", *done)
            self.connections.remove(connection_id)
            logger.info("connection gone; removed", extra={"connection_id": connection_id})
            return Delivery(connection_id, order_id, "gone", *done)
        if posting.failure:
            logger.warning(
                "post failed; frames stay owed",
                extra={
                    "connection_id": connection_id,
                    "order_id": str(order_id),
                    "error": posting.failure,
                },
            )
            return Delivery(connection_id, order_id, "failed", *done, posting.failure)
        return Delivery(connection_id, order_id, "ok", *done)

    def deliver_many(
        self, pairs: Iterable[tuple[str, uuid.UUID]], *, live: bool = False
    ) -> list[Delivery]:
        """Deliver to several subscriptions concurrently; a database error becomes `failed`."""
        todo = list(pairs)
        if len(todo) == 1:  # the common case: no thread hop
            return [self.deliver(*todo[0], live=live)]
        futures = [_pool_executor().submit(self.deliver, cid, oid, live=live) for cid, oid in todo]
        results: list[Delivery] = []
        for (cid, oid), future in zip(todo, futures, strict=True):
            try:
                results.append(future.result())
            except Exception as exc:
                logger.exception("delivery failed", extra={"connection_id": cid})
                results.append(Delivery(cid, oid, "failed", error=type(exc).__name__))
        return results

    def fan_out(self, order_id: uuid.UUID) -> list[Delivery]:
        """Deliver the order's outstanding events to every connection subscribed to it."""
        subscribers = self.connections.subscribers(order_id)
        return self.deliver_many(((cid, order_id) for cid in subscribers), live=True)

    def subscribe_and_deliver(
        self,
        connection_id: str,
        order_id: uuid.UUID,
        from_seq: int = 0,
        *,
        domain: str | None = None,
        stage: str | None = None,
        endpoint: str | None = None,
    ) -> Delivery:
        """The `subscribe` route: reset the subscription to `from_seq`, then replay what follows.

        A notification racing with this either runs before our delivery (it posts from
        `from_seq` on, ours then finds nothing new) or after it (it finds our delivered_seq): no
        gap, no dup.
        """
        self.connections.subscribe(
            connection_id, order_id, from_seq, domain=domain, stage=stage, endpoint=endpoint
        )
        return self.deliver(connection_id, order_id)


# -- producers ------------------------------------------------------------------------------------


class Publisher(Protocol):
    """What producers tell after a status change commits; delivery itself reads Postgres."""

    def publish(self, event: Event) -> None: ...

    def publish_backlog(self, order_id: uuid.UUID) -> None: ...


def announce(publisher: Publisher | None, event: Event) -> None:
    """Publish one committed status event from a request handler, and wait until it is sent
    (the function is frozen once it replies). A failure to publish never undoes the change:
    the order's history has it, and a (re)subscribing client replays it."""
    if publisher is None:
        return
    try:
        publisher.publish(event)
        flush = getattr(publisher, "flush", None)
        if callable(flush):
            flush()
    except Exception:  # the status is committed; telling notify is best effort here
        logger.exception("publishing a status event failed")


class StatusQueue:
    """The status-events queue: a small trigger message per order whose status changed.

    The message is only a trigger: notify reads the events from Postgres, so a lost, repeated or
    reordered message cannot reorder or duplicate frames, and one trigger covers every change of
    the order committed before it was sent. So `publish` only notes the order and returns at
    once; a sender thread sends the notes in `SendMessageBatch` calls (up to 10 orders each),
    and changes that commit while a send is in flight ride on the next one. Sending is off the
    order's critical path; `flush()` waits until every note published so far is sent, and a
    handler calls it before it returns (a Lambda is frozen once its handler returns: nothing
    may be left to send then).
    """

    BATCH = 10  # SendMessageBatch's limit
    SEND_ATTEMPTS = 3

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        self.url = url
        self.endpoint_url = endpoint_url
        self._cond = threading.Condition()
        self._pending: dict[str, dict[str, Any]] = {}  # order id -> its latest trigger
        self._sending = 0  # triggers taken by the sender and not yet sent
        self._sender: threading.Thread | None = None
        self.sends = 0  # SendMessageBatch calls made (the bench counts them)

    @classmethod
    def from_settings(cls, cfg: Settings) -> StatusQueue:
        return cls(cfg.require("status_queue_url"), cfg.sqs_endpoint_url)

    def publish(self, event: Event) -> None:
        order_id = str(event.order_id)
        trigger: dict[str, Any] = {"orderId": order_id, "seq": event.seq, "status": event.status}
        with self._cond:
            self._pending[order_id] = trigger
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(
                    target=self._send_forever, name="status-triggers", daemon=True
                )
                self._sender.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every trigger published so far has been sent (or given up on); False if
        `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning(
                        "status triggers still unsent at flush",
                        extra={"unsent": len(self._pending) + self._sending},
                    )
                    return False
                self._cond.wait(left)
        return True

    def _send_forever(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batch = list(self._pending.values())[: self.BATCH]
                for trigger in batch:
                    del self._pending[trigger["orderId"]]
                self._sending = len(batch)
            try:
                self._send(batch)
            finally:
                with self._cond:
                    self._sending = 0
                    self._cond.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        """One SendMessageBatch, its failed entries retried; what still fails is logged (its
        frames go out with the order's next trigger, or a redelivery's republish)."""
        from engine.queue import sqs_client  # the SQS client the submit path already configures

        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "MessageBody": json.dumps(t, separators=(",", ":"))}
            for i, t in enumerate(batch)
        ]
        for attempt in range(self.SEND_ATTEMPTS):
            try:
                reply = sqs_client(self.endpoint_url).send_message_batch(
                    QueueUrl=self.url,
                    Entries=entries,
                )
            except (BotoCoreError, ClientError) as exc:
                if attempt == self.SEND_ATTEMPTS - 1:
                    logger.exception("status triggers not sent", extra={"error": str(exc)})
                    return
                continue
            finally:
                self.sends += 1
            failed = {f["Id"] for f in reply.get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                return
        logger.warning("status triggers not sent", extra={"unsent": len(entries)})

    def publish_backlog(self, order_id: uuid.UUID) -> None:
        """Ask for the order's history to be delivered to its (new) subscribers.

        Used by `$connect ?orderId=`: a post from inside `$connect` is refused (410), so the
        backlog goes out from notify shortly after the upgrade completes. Sent at once: the
        `$connect` reply waits for it, and no later change of the order would carry it.
        """
        from engine.queue import sqs_client

        sqs_client(self.endpoint_url).send_message(
            QueueUrl=self.url,
            MessageBody=json.dumps({"orderId": str(order_id), "backlog": True}),
            DelaySeconds=BACKLOG_DELAY_SECONDS,
        )
