"""The orders queue (SQS): hand an order to the executors, back off a retry, report the depth."""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from engine.config import Settings
from engine.errors import QueueUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# Fail fast: a submit that cannot reach the queue must answer within API Gateway's 29 s.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2})
MAX_RETRY_DELAY_SECONDS = 900  # SQS caps a visibility change at 12 h; 15 min is plenty here


@lru_cache(maxsize=4)
def sqs_client(endpoint_url: str | None = None) -> SQSClient:
    """One SQS client per endpoint per process (botocore clients are thread-safe)."""
    return boto3.client("sqs", endpoint_url=endpoint_url, config=_CLIENT_CONFIG)


class OrdersQueue:
    def __init__(self, url: str | None, endpoint_url: str | None = None) -> None:
        self.url = url
        self.endpoint_url = endpoint_url

    @classmethod
    def from_settings(cls, cfg: Settings) -> OrdersQueue:
        return cls(cfg.orders_queue_url, cfg.sqs_endpoint_url)

    @property
    def sqs(self) -> SQSClient:
        return sqs_client(self.endpoint_url)

    def _url(self) -> str:
        if not self.url:
            raise QueueUnavailable("ORDERS_QUEUE_URL is not configured")
        return self.url

    def enqueue(self, order_id: uuid.UUID, *, requeued: int = 0) -> str:
        """Send the order's message; returns the SQS message id or raises QueueUnavailable.
        `requeued`: how often the dead-letter settler has put it back (carried in the body)."""
        body: dict[str, object] = {"orderId": str(order_id)}
        if requeued:
            body["requeued"] = requeued
        try:
            reply = self.sqs.send_message(QueueUrl=self._url(), MessageBody=json.dumps(body))
        except QueueUnavailable:
            raise
        except Exception as exc:  # botocore raises many types; all mean "not enqueued"
            raise QueueUnavailable(
                f"the order queue is unavailable ({type(exc).__name__})"
            ) from exc
        return reply["MessageId"]

    def depth(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self._url(), AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def delay_retry(self, receipt_handle: str, receive_count: int, base_seconds: float) -> int:
        """SQS has no native backoff: push the message's next delivery out by hand."""
        delay = retry_delay_seconds(receive_count, base_seconds)
        self.sqs.change_message_visibility(
            QueueUrl=self._url(), ReceiptHandle=receipt_handle, VisibilityTimeout=delay
        )
        return delay


def retry_delay_seconds(receive_count: int, base_seconds: float) -> int:
    """Exponential backoff for a transient failure: base * 2^(n-1), capped at 15 minutes."""
    return int(min(base_seconds * 2 ** max(receive_count - 1, 0), MAX_RETRY_DELAY_SECONDS))
