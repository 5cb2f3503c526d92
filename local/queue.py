"""The local queue: SQS on moto's server, created with the template's settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class QueueUrls:
    orders: str
    dlq: str


def create_queues(sqs: SQSClient, prefix: str = "local") -> QueueUrls:
    """Create the orders queue and its DLQ as template.yaml declares them."""
    from local.template import queue_settings

    qs = queue_settings()
    dlq = sqs.create_queue(QueueName=f"{prefix}-orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    orders = sqs.create_queue(
        QueueName=f"{prefix}-orders",
        Attributes={
            "VisibilityTimeout": str(qs.visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": qs.max_receive_count}
            ),
        },
    )["QueueUrl"]
    return QueueUrls(orders=orders, dlq=dlq)
