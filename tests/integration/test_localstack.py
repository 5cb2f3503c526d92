"""LocalStack as the local AWS (local/localstack.py): the template's queues redrive on it as the
template says, the execute function takes its wallet key from its Secrets Manager, and the
process comes and goes as promised: ready before use, on loopback only, gone with whoever
started it (even a SIGKILLed one), and a start that fails says why and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from solders.keypair import Keypair

from engine.store import Order, Store
from local import localstack as ls
from local import stack
from local.apigw import LambdaContext, http_event
from local.chain import LocalChain, seed
from local.handlers import ROOT, fresh_handler
from local.localstack import PortTaken
from local.poller import sqs_event, wait_until
from local.ports import free_port
from local.queue import create_queue_with_dlq, create_queues
from local.template import LOCAL_PARAMETERS, queue_settings
from tests.auth import as_key

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}


def running(pid: int) -> bool:
    """The process exists and is not a zombie (an unreaped exit is not a process left behind)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) that listen on `port`."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


# -- SQS: the template's redrive ------------------------------------------------------------------


@pytest.mark.parametrize("queue", ["OrdersQueue", "StatusEventsQueue"])
def test_the_templates_redrive_moves_a_message_to_the_dlq_after_its_receives(
    localstack: str, queue: str
) -> None:
    settings = queue_settings(queue, parameters=LOCAL_PARAMETERS)
    assert settings.max_receive_count == 3  # what the local stack deploys both queues with
    sqs = boto3.client("sqs", endpoint_url=localstack)
    url, dlq = create_queue_with_dlq(sqs, queue, f"redrive-{uuid.uuid4().hex[:8]}")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn["QueueArn"],
        "maxReceiveCount": 3,
    }
    assert int(attributes["VisibilityTimeout"]) == settings.visibility_timeout

    body = json.dumps({"orderId": str(uuid.uuid4())})
    sqs.send_message(QueueUrl=url, MessageBody=body)
    counts: list[int] = []
    for _ in range(settings.max_receive_count):
        [message] = sqs.receive_message(
            QueueUrl=url, WaitTimeSeconds=2, MessageSystemAttributeNames=["ApproximateReceiveCount"]
        )["Messages"]
        assert message["Body"] == body
        counts.append(int(message["Attributes"]["ApproximateReceiveCount"]))
        # A failed invocation whose retry is due now (the template's visibility is minutes).
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert counts == [1, 2, 3]
    # The receive after the third: SQS moves the message to the DLQ instead of delivering it.
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    [dead] = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2)["Messages"]
    assert dead["Body"] == body


def test_a_tests_visibility_timeout_is_the_queues_from_its_creation(localstack: str) -> None:
    """A test's short redelivery (the chaos suite's 15 s; 2 s here): a message received, then
    left unfinished (its executor killed), is delivered again after it, not after the
    template's 720 s. Given at creation: a change made later does not reach a long poll already
    waiting."""
    sqs = boto3.client("sqs", endpoint_url=localstack)
    urls = create_queues(sqs, prefix=f"vis-{uuid.uuid4().hex[:8]}", visibility_timeout=2)
    attributes = sqs.get_queue_attributes(QueueUrl=urls.orders, AttributeNames=["All"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "2"
    sqs.send_message(QueueUrl=urls.orders, MessageBody="unfinished")
    [first] = sqs.receive_message(QueueUrl=urls.orders, WaitTimeSeconds=2)["Messages"]
    received = time.monotonic()
    # Redelivered after its 2 s (the queue's update pass runs each second), long before 720 s.
    again: list[str] = []
    while not again and time.monotonic() - received < 60:
        reply = sqs.receive_message(QueueUrl=urls.orders, WaitTimeSeconds=1)
        again = [m["MessageId"] for m in reply.get("Messages", [])]
    assert again == [first["MessageId"]]


# -- Secrets Manager: the wallet key, as in the cloud ---------------------------------------------


def put_secret(endpoint: str, value: str) -> str:
    sm = boto3.client("secretsmanager", endpoint_url=endpoint)
    return sm.create_secret(Name=f"wallet-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]


def execute_one_order(store: Store, api_key: Any, queue_url: str) -> Order:
    """Submit an order through the submit handler and run its message through a new execute
    container (one that has never read a wallet), as the orders poller does."""
    submit, execute = as_key(fresh_handler("submit"), api_key[0].id), fresh_handler("execute")
    event = http_event(
        "POST",
        "/api/orders/execute",
        headers={"content-type": "application/json"},
        body=json.dumps(ORDER).encode(),
    )
    reply = submit(event, LambdaContext("submit"))
    assert reply["statusCode"] == 202, reply
    order_id = uuid.UUID(json.loads(reply["body"])["orderId"])
    sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    messages: list[Any] = []

    def received() -> bool:
        got = sqs.receive_message(
            QueueUrl=queue_url, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
        )
        messages.extend(got.get("Messages", []))
        return bool(messages)

    assert wait_until(received)
    execute(sqs_event(messages, arn["Attributes"]["QueueArn"], "us-east-1"), LambdaContext("x"))
    order = store.get_order(order_id)
    assert order is not None
    return order


def test_the_executor_signs_with_the_key_secrets_manager_holds(
    store: Store,
    localstack: str,
    private_orders_queue: str,
    status_queue: str,
    served_chain: tuple[LocalChain, str],
    api_key: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, _ = served_chain
    monkeypatch.delenv("WALLET_PRIVATE_KEY")  # served_chain's: the key must come from SM only
    monkeypatch.setenv("SECRETS_ENDPOINT_URL", localstack)

    # The funded local wallet's key in Secrets Manager: the order lands, signed by that wallet.
    monkeypatch.setenv(
        "WALLET_SECRET_ARN", put_secret(localstack, json.dumps(list(bytes(seed.WALLET_KEYPAIR))))
    )
    confirmed = execute_one_order(store, api_key, private_orders_queue)
    assert confirmed.status == "confirmed", confirmed.failure_code
    landed = {tx["signature"] for tx in chain.txlog() if tx["err"] is None}
    assert confirmed.tx_signature in landed

    # Another key in Secrets Manager, one the chain has never funded: a new container signs
    # with it, so the same order fails for want of funds and nothing lands.
    stranger = Keypair()
    monkeypatch.setenv("WALLET_SECRET_ARN", put_secret(localstack, str(stranger)))
    before = len(chain.txlog())
    refused = execute_one_order(store, api_key, private_orders_queue)
    assert refused.status == "failed"
    assert refused.failure_code == "insufficient_funds", refused.failure_reason
    assert [tx for tx in chain.txlog()[before:] if tx["err"] is None] == []


# -- the process ----------------------------------------------------------------------------------


@pytest.mark.emulator
def test_a_started_localstack_serves_on_loopback_and_dies_with_its_parent(tmp_path: Path) -> None:
    """The parent is SIGKILLed (no cleanup of its own runs): LocalStack goes all the same, and
    so do its files."""
    script = (
        "from local import localstack\n"
        "aws = localstack.start()\n"
        "print(aws.pid, aws.endpoint, flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ls.ENDPOINT_VARIABLE}
    env["TMPDIR"] = str(tmp_path)  # where its directory goes
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid_text, endpoint = parent.stdout.readline().split()
        pid, port = int(pid_text), int(endpoint.rsplit(":", 1)[1])
        answer = ls.health(endpoint)
        assert answer is not None
        assert ls.missing_services(answer) == []
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        assert running(pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert wait_until(lambda: not running(pid), timeout=30), f"LocalStack {pid} outlived its parent"
    assert ls.health(endpoint, timeout=0.5) is None
    assert list(tmp_path.glob("localstack-*")) == []


@pytest.mark.emulator
def test_a_localstack_that_cannot_start_says_why_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ls.ENDPOINT_VARIABLE, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its directory (kept: it failed)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortTaken) as refused:
            ls.start(port, timeout=60)  # its port given: no trying another
    message = str(refused.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "Address already in use" in message  # from the tail of LocalStack's own log
    assert str(tmp_path) in message  # where the whole log is
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_boot_on(p, port)]


def _is_boot_on(proc: Path, port: int) -> bool:
    """A LocalStack of ours told to listen on `port` (its environment names it)."""
    try:
        environ = (proc / "environ").read_bytes()
    except OSError:
        return False
    return f"GATEWAY_LISTEN=127.0.0.1:{port}".encode() in environ and running(int(proc.name))


def test_make_run_stops_and_says_so_when_localstack_endpoint_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(ls.ENDPOINT_VARIABLE, dead)
    for explicit in ("SQS_ENDPOINT_URL", "SECRETS_ENDPOINT_URL"):  # other fixtures' settings
        monkeypatch.delenv(explicit, raising=False)
    monkeypatch.setattr("local.stack.signal.signal", lambda *_args: None)
    with pytest.raises(SystemExit) as exited:
        stack.main(threading.Event())
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert f"error: LOCALSTACK_ENDPOINT={dead}: nothing answers" in err


def test_localstack_endpoint_is_used_as_it_is_and_left_running(
    localstack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ls.ENDPOINT_VARIABLE, localstack + "/")
    with ls.start() as aws:
        assert aws.endpoint == localstack
        assert not aws.started_here
    assert ls.health(localstack) is not None  # stopping it was not ours to do
