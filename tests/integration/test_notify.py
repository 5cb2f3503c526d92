"""Status delivery (engine.notify) against real sockets: the local gateway's management API with
real WebSocket clients, a socket that never answers, and real Postgres."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from websockets.sync.client import ClientConnection, connect

from engine import notify
from engine.connections import Connections
from engine.notify import Fanout, StatusQueue
from engine.orders import Status, parse_order_request
from engine.store import Store
from local.gateway import Gateway, Served, serve_in_thread
from local.poller import wait_until
from tests.inprocess import InProcessPublisher

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}
PATH = [Status.ROUTING, Status.BUILDING, Status.SUBMITTED, Status.CONFIRMED]


class Recorder:
    """A ws_connect stand-in: accepts every route and remembers which tag got which id."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.endpoint = ""  # the gateway's management API, once it serves

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        ctx = event["requestContext"]
        if ctx["routeKey"] == "$connect":
            self.ids[(event.get("queryStringParameters") or {})["tag"]] = ctx["connectionId"]
        return {"statusCode": 200}


@pytest.fixture(scope="module")
def gateway(database_url: str) -> Iterator[tuple[Served, Recorder]]:
    recorder = Recorder()
    gw = Gateway(lambda e, c: {"statusCode": 404}, recorder, auth=False)  # no authorizer here
    served = serve_in_thread(gw.app)
    recorder.endpoint = gw.management_endpoint(served.url)
    yield served, recorder
    served.stop()


class Client:
    """A real WebSocket client on the gateway, with its connection row in Postgres."""

    def __init__(self, served: Served, recorder: Recorder, connections: Connections) -> None:
        tag = uuid.uuid4().hex
        # Entered by hand: the socket outlives this constructor (closed by the fixture).
        self.ws: ClientConnection = connect(
            served.url.replace("http", "ws") + f"/?tag={tag}"
        ).__enter__()
        self.id = recorder.ids[tag]
        connections.add(self.id, endpoint=recorder.endpoint)

    def frames(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        return [json.loads(self.ws.recv(timeout=timeout)) for _ in range(n)]

    def nothing_more(self, wait: float = 0.3) -> bool:
        try:
            self.ws.recv(timeout=wait)
        except TimeoutError:
            return True
        return False


def new_order(store: Store) -> uuid.UUID:
    order, _ = store.create_order(parse_order_request(ORDER))
    return order.id


def step(store: Store, order_id: uuid.UUID, i: int) -> None:
    current = Status.PENDING if i == 0 else PATH[i - 1]
    done = store.transition(order_id, current, PATH[i], detail={"n": i})
    assert done is not None
    InProcessPublisher(Fanout(store.pool)).publish(done.event)  # no status queue here


@pytest.fixture
def clients(gateway: tuple[Served, Recorder], store: Store) -> Iterator[Any]:
    made: list[Client] = []

    def make() -> Client:
        c = Client(*gateway, Connections(store.pool))
        made.append(c)
        return c

    yield make
    for c in made:
        c.ws.close()


def test_frames_in_order_once(store: Store, clients: Any) -> None:
    order_id = new_order(store)
    a, b = clients(), clients()
    conns = Connections(store.pool)
    conns.subscribe(a.id, order_id)
    conns.subscribe(b.id, order_id)
    for i in range(len(PATH)):
        step(store, order_id, i)
    for c in (a, b):
        frames = c.frames(5)
        assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5]
        assert [f["status"] for f in frames] == ["pending", *map(str, PATH)]
        assert {f["orderId"] for f in frames} == {str(order_id)}
    assert all(d.posted == 0 for d in Fanout(store.pool).fan_out(order_id))  # nothing owed: no dup
    assert a.nothing_more()
    assert b.nothing_more()


def test_gone_connection_is_deleted_young_one_is_not_ready(
    store: Store, gateway: tuple[Served, Recorder]
) -> None:
    _, recorder = gateway
    order_id = new_order(store)
    conns = Connections(store.pool)
    old, young = "gone" + uuid.uuid4().hex[:8], "young" + uuid.uuid4().hex[:8]
    for cid in (old, young):
        conns.add(cid, endpoint=recorder.endpoint)
        conns.subscribe(cid, order_id)
    with store.pool.connection() as conn:
        conn.execute(
            "UPDATE connections SET connected_at = now() - interval '1 minute'"
            " WHERE connection_id = %s",
            (old,),
        )
    outcomes = {d.connection_id: d.outcome for d in Fanout(store.pool).fan_out(order_id)}
    assert outcomes == {old: "gone", young: "not_ready"}
    assert conns.get(old) is None
    assert conns.delivered_seq(old, order_id) is None
    assert conns.delivered_seq(young, order_id) is not None


def test_management_api_reaches_a_real_client(
    gateway: tuple[Served, Recorder], clients: Any
) -> None:
    _, recorder = gateway
    c = clients()
    api = boto3.client("apigatewaymanagementapi", endpoint_url=recorder.endpoint)
    api.post_to_connection(ConnectionId=c.id, Data=b'{"hello": 1}')
    assert c.frames(1) == [{"hello": 1}]
    info = api.get_connection(ConnectionId=c.id)
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    api.delete_connection(ConnectionId=c.id)
    with pytest.raises(api.exceptions.GoneException):
        api.post_to_connection(ConnectionId=c.id, Data=b"{}")


@pytest.mark.parametrize(
    "endpoint",
    ["{url}", "{url}/local", "{url}/not-the-secret"],
    ids=["no secret (the probe's)", "a stage name", "a wrong secret"],
)
def test_the_management_api_needs_the_stacks_secret(
    gateway: tuple[Served, Recorder], clients: Any, endpoint: str
) -> None:
    """The probe pushed a forged `confirmed` frame into a client's socket through
    /@connections/{id} on the public port, with no credential."""
    served, _ = gateway
    c = clients()
    forger = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint.format(url=served.url))
    forged = b'{"status": "confirmed"}'
    with pytest.raises(ClientError) as refused:
        forger.post_to_connection(ConnectionId=c.id, Data=forged)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] in (403, 404)
    with pytest.raises(ClientError):
        forger.delete_connection(ConnectionId=c.id)
    assert c.nothing_more()  # nothing reached the socket, and it is still open
    c.ws.send("{}")


class SilentEndpoint:
    """A TCP server that accepts connections and never answers a byte, until `release` closes
    every connection it holds (a post on one then fails at once)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn = self.server.accept()[0]
            except OSError:
                continue
            self.held.append(conn)
            if self.released.is_set():
                conn.close()

    def release(self) -> None:
        """Close every connection held, and from now on each one as it is accepted (a post's
        connection may still wait in the listen backlog)."""
        self.released.set()
        for s in self.held:
            s.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.release()
        self.server.close()


@pytest.fixture
def silent_endpoint() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.close()


def hung_and_good(store: Store, clients: Any, silent: SilentEndpoint) -> tuple[Any, str, list[Any]]:
    order_id = new_order(store)
    conns = Connections(store.pool)
    hung = "hung" + uuid.uuid4().hex[:8]
    conns.add(hung, endpoint=silent.url)
    conns.subscribe(hung, order_id)
    good = [clients() for _ in range(3)]
    for c in good:
        conns.subscribe(c.id, order_id)
    return order_id, hung, good


def test_a_hung_socket_does_not_hold_up_the_others(
    store: Store, clients: Any, silent_endpoint: SilentEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hung post waits as long as the test needs (not the 2 s it gets in production), so
    # "the good ones did not wait for it" is an order of events, not a race against a timer.
    monkeypatch.setattr(notify, "POST_CONFIG", notify.POST_CONFIG.merge(Config(read_timeout=120)))
    monkeypatch.setattr(notify, "_clients", {})  # none made earlier with the 2 s timeout
    order_id, hung, good = hung_and_good(store, clients, silent_endpoint)
    result: list[notify.Delivery] = []
    runner = threading.Thread(target=lambda: result.extend(Fanout(store.pool).fan_out(order_id)))
    runner.start()
    for c in good:
        assert c.frames(1, timeout=30)[0]["seq"] == 1
    assert runner.is_alive()  # every good socket has its frame while the hung post still waits
    assert wait_until(lambda: len(silent_endpoint.held) == 1, 30)  # it has connected
    silent_endpoint.release()  # the hung socket goes: its post fails
    runner.join(30)
    assert not runner.is_alive()
    outcomes = {d.connection_id: d.outcome for d in result}
    assert outcomes[hung] == "failed"
    assert {outcomes[c.id] for c in good} == {"ok"}


def test_a_hung_post_gives_up_after_its_timeout_without_retrying(
    store: Store, clients: Any, silent_endpoint: SilentEndpoint
) -> None:
    order_id, hung, _ = hung_and_good(store, clients, silent_endpoint)
    conns = Connections(store.pool)
    result = Fanout(store.pool).fan_out(order_id)  # returns: the post timed out (1 s + 2 s)
    outcomes = {d.connection_id: d.outcome for d in result}
    assert outcomes[hung] == "failed"
    assert wait_until(lambda: len(silent_endpoint.held) >= 1, 30)  # accepted from the backlog
    assert len(silent_endpoint.held) == 1  # one attempt: no retries
    assert conns.delivered_seq(hung, order_id) == 0
    assert conns.get(hung) is not None  # owed, not gone: a later delivery retries it


def test_replay_and_live_seam_never_skips_or_repeats(store: Store, clients: Any) -> None:
    """Subscribes (with a random fromSeq) race the transitions and their notifications."""
    conns = Connections(store.pool)
    rng = random.Random(7)
    cases = []
    for _ in range(12):
        c = clients()
        cases.append((new_order(store), c, rng.randint(0, 2), rng.random() * 0.05))
    errors: list[BaseException] = []

    def produce(order_id: uuid.UUID) -> None:
        try:
            for i in range(len(PATH)):
                time.sleep(rng.random() * 0.01)
                step(store, order_id, i)
        except BaseException as exc:
            errors.append(exc)

    def subscribe(order_id: uuid.UUID, c: Client, from_seq: int, delay: float) -> None:
        try:
            time.sleep(delay)
            Fanout(store.pool).subscribe_and_deliver(c.id, order_id, from_seq)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(oid,)) for oid, *_ in cases]
    threads += [threading.Thread(target=subscribe, args=case) for case in cases]
    rng.shuffle(threads)
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    for order_id, c, from_seq, _ in cases:
        expected = list(range(from_seq + 1, 6))
        frames = c.frames(len(expected))
        assert [f["seq"] for f in frames] == expected, (order_id, from_seq)
        assert c.nothing_more(0.2)
        assert conns.delivered_seq(c.id, order_id) == 5


def test_publish_with_a_status_queue_only_enqueues_a_trigger(store: Store, localstack: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=localstack)
    url = sqs.create_queue(QueueName=f"status-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    order_id = new_order(store)
    done = store.transition(order_id, Status.PENDING, Status.ROUTING, detail={"venue": "x"})
    assert done is not None
    triggers = StatusQueue(url, localstack)
    triggers.publish(done.event)
    assert triggers.flush()
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    # Only what names the change: notify reads the frames themselves from Postgres.
    assert json.loads(message["Body"]) == {"orderId": str(order_id), "seq": 2, "status": "routing"}


def test_triggers_of_changes_that_follow_each_other_share_sends(
    store: Store, moto_server: str
) -> None:
    """Ten orders moving three steps each, published as fast as the executor commits them: the
    changes that commit while a send is in flight ride on the next batch, and once flushed every
    order's latest change has been announced."""
    sqs = boto3.client("sqs", endpoint_url=moto_server)
    url = sqs.create_queue(QueueName=f"status-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    triggers = StatusQueue(url, moto_server)
    orders = [new_order(store) for _ in range(10)]
    for oid in orders:
        for i in range(3):
            current = Status.PENDING if i == 0 else PATH[i - 1]
            done = store.transition(oid, current, PATH[i])
            assert done is not None
            triggers.publish(done.event)
    assert triggers.flush()
    received: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        received += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    latest = {t["orderId"]: t["seq"] for t in sorted(received, key=lambda t: t["seq"])}
    assert latest == {str(oid): 4 for oid in orders}  # submitted is each order's 4th event
    assert len(received) < 30  # fewer messages than changes
    assert triggers.sends < 30  # and fewer SendMessageBatch calls still


def test_a_batch_whose_every_record_is_owed_frames_is_reported_not_raised(
    store: Store,
    gateway: tuple[Served, Recorder],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The notify function on a batch whose only record still owes a socket its frames: the
    record comes back in batchItemFailures (SQS delivers it again) and the invocation succeeds,
    instead of raising, which Lambda would count as a function error (FunctionErrorsAlarm)."""
    from local.apigw import LambdaContext
    from local.handlers import fresh_handler
    from local.poller import sqs_event

    _, recorder = gateway
    order_id = new_order(store)
    conns = Connections(store.pool)
    young = "young" + uuid.uuid4().hex[:8]  # just connected: not ready for frames yet
    conns.add(young, endpoint=recorder.endpoint)
    conns.subscribe(young, order_id)
    monkeypatch.setenv("DATABASE_URL", database_url)
    handler = fresh_handler("notify")
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": json.dumps({"orderId": str(order_id)}),
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    arn = "arn:aws:sqs:us-east-1:123456789012:status-events"
    reply = handler(sqs_event([message], arn, "us-east-1"), LambdaContext("notify"))  # type: ignore[list-item]
    assert reply == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
