"""The orders queue (SQS): hand an order to the executors, and report the queue's health."""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from engine.config import settings
from engine.errors import QueueUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# Fail fast: a submit that cannot reach the queue must answer within API Gateway's 29 s.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2})


@lru_cache(maxsize=4)
def sqs_client(endpoint_url: str | None = None) -> SQSClient:
    return boto3.client("sqs", endpoint_url=endpoint_url, config=_CLIENT_CONFIG)


def _queue_url() -> str:
    url = settings().orders_queue_url
    if not url:
        raise QueueUnavailable("ORDERS_QUEUE_URL is not configured")
    return url


def enqueue_order(order_id: uuid.UUID) -> str:
    """Send the order's message; returns the SQS message id or raises QueueUnavailable."""
    try:
        reply = sqs_client(settings().sqs_endpoint_url).send_message(
            QueueUrl=_queue_url(), MessageBody=json.dumps({"orderId": str(order_id)})
        )
    except QueueUnavailable:
        raise
    except Exception as exc:  # botocore raises many types; all mean "not enqueued"
        raise QueueUnavailable(f"the order queue is unavailable ({type(exc).__name__})") from exc
    return reply["MessageId"]


def queue_depth() -> int:
    attrs = sqs_client(settings().sqs_endpoint_url).get_queue_attributes(
        QueueUrl=_queue_url(), AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def retry_delay_seconds(receive_count: int) -> int:
    """Exponential backoff for a transient failure: base * 2^(n-1), capped at 15 minutes."""
    base = settings().retry_base_seconds
    return int(min(base * 2 ** max(receive_count - 1, 0), 900))


def delay_retry(receipt_handle: str, receive_count: int) -> int:
    """SQS has no native backoff: push the message's next delivery out by hand."""
    delay = retry_delay_seconds(receive_count)
    sqs_client(settings().sqs_endpoint_url).change_message_visibility(
        QueueUrl=_queue_url(), ReceiptHandle=receipt_handle, VisibilityTimeout=delay
    )
    return delay
