"""The local SQS poller against LocalStack's SQS: partial batch failures, redrive, concurrency."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import SQSEvent

from local.poller import Poller, wait_until


def queues(localstack: str, visibility: int = 1, max_receive: int = 2) -> tuple[Any, str, str]:
    sqs = boto3.client("sqs", endpoint_url=localstack)
    name = f"poll-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": max_receive}
            ),
        },
    )["QueueUrl"]
    return sqs, url, dlq


def count(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def test_partial_failures_are_retried_then_dead_lettered(localstack: str) -> None:
    sqs, url, dlq = queues(localstack)
    seen: list[tuple[str, int, str]] = []

    def handler(event: dict[str, Any], _ctx: Any) -> dict[str, Any]:
        failures = []
        for record in SQSEvent(event).records:  # the event parses as a real SQS event
            assert record.event_source == "aws:sqs"
            assert record.event_source_arn.endswith(url[-13:])
            count_ = int(record.attributes.approximate_receive_count)
            seen.append((record.body, count_, record.message_id))
            if record.body == "bad":
                failures.append({"itemIdentifier": record.message_id})
        return {"batchItemFailures": failures}

    for body in ("ok-1", "bad", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    poller = Poller(sqs, url, lambda _i: handler, batch_size=10, max_concurrency=2).start()
    try:
        # The good ones go at once; "bad" is received twice (maxReceiveCount) and then moved.
        assert wait_until(lambda: count(sqs, dlq) == 1, 15)
        assert count(sqs, url) == 0
    finally:
        poller.stop()
    assert sorted(b for b, _, _ in seen if b.startswith("ok")) == ["ok-1", "ok-2"]
    assert [n for b, n, _ in seen if b == "bad"] == [1, 2]
    [moved] = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert moved["Body"] == "bad"


def test_a_raising_handler_keeps_the_whole_batch(localstack: str) -> None:
    sqs, url, _ = queues(localstack, visibility=30)
    calls = 0

    def handler(event: dict[str, Any], _ctx: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    sqs.send_message(QueueUrl=url, MessageBody="x")
    poller = Poller(sqs, url, lambda _i: handler, max_concurrency=1).start()
    try:
        assert wait_until(lambda: calls == 1, 30)
        time.sleep(0.3)
    finally:
        poller.stop()
    assert count(sqs, url) == 1  # in flight until its visibility timeout ends


def test_at_most_max_concurrency_invocations_in_flight(localstack: str) -> None:
    sqs, url, _ = queues(localstack, visibility=30)
    lock = threading.Lock()
    running = peak = done = 0

    def handler(event: dict[str, Any], _ctx: Any) -> dict[str, Any]:
        nonlocal running, peak, done
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.3)
        with lock:
            running -= 1
            done += len(event["Records"])
        return {"batchItemFailures": []}

    for i in range(8):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    poller = Poller(sqs, url, lambda _i: handler, batch_size=1, max_concurrency=3).start()
    try:
        assert wait_until(lambda: done == 8, 15)
    finally:
        poller.stop()
    assert peak == 3
    assert count(sqs, url) == 0


def test_a_throttled_batch_is_invoked_again_within_its_visibility_timeout(
    localstack: str,
) -> None:
    """As the mapping does when Lambda throttles the function: the same batch again, backing
    off, while its visibility timeout leaves room for a run of the function (the reason for the
    6x rule); one receive, never a second, and the message is gone once it succeeded."""
    from local.workers import Throttled

    sqs, url, dlq = queues(localstack, visibility=600, max_receive=2)
    seen: list[str] = []

    def handler(event: dict[str, Any], _ctx: Any) -> None:
        seen.append(event["Records"][0]["messageId"])
        if len(seen) < 3:
            raise Throttled("account concurrency 1 reached")

    sqs.send_message(QueueUrl=url, MessageBody="x")
    poller = Poller(sqs, url, lambda _i: handler, max_concurrency=1, function_timeout=30).start()
    try:
        # Long before the 600 s visibility timeout would have given the message back.
        assert wait_until(lambda: count(sqs, url) == 0, 60), seen
    finally:
        poller.stop()
    assert len(seen) == 3
    assert len(set(seen)) == 1  # the same message, the same receive
    assert count(sqs, dlq) == 0
