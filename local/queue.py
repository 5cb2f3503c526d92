"""The local queues: SQS (LocalStack's, or any endpoint), created with the template's settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType


@dataclass(frozen=True)
class QueueUrls:
    orders: str
    dlq: str


def create_queue_with_dlq(
    sqs: SQSClient, queue: str, name: str, visibility_timeout: int | None = None
) -> tuple[str, str]:
    """Queue `name` and `name`-dlq with the settings template.yaml gives `queue` (a logical id)
    and its dead-letter queue: visibility, retention, redrive; `visibility_timeout` (a test's)
    in place of the template's. Returns (queue url, dlq url)."""
    from local.template import LOCAL_PARAMETERS, load_template, queue_settings, resource

    template = load_template()
    qs = queue_settings(queue, template, LOCAL_PARAMETERS)
    dlq_props = resource(qs.dead_letter_queue, template)["Properties"]
    dlq_attributes: dict[QueueAttributeNameType, str] = {}
    if "VisibilityTimeout" in dlq_props:
        dlq_attributes["VisibilityTimeout"] = str(dlq_props["VisibilityTimeout"])
    if "MessageRetentionPeriod" in dlq_props:
        dlq_attributes["MessageRetentionPeriod"] = str(dlq_props["MessageRetentionPeriod"])
    dlq = sqs.create_queue(QueueName=f"{name}-dlq", Attributes=dlq_attributes)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout or qs.visibility_timeout),
            "MessageRetentionPeriod": str(qs.message_retention),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": qs.max_receive_count}
            ),
        },
    )["QueueUrl"]
    return url, dlq


def create_queues(
    sqs: SQSClient, prefix: str = "local", visibility_timeout: int | None = None
) -> QueueUrls:
    """Create the orders queue and its DLQ as template.yaml declares them (`visibility_timeout`:
    the orders queue's, a test's, in place of the template's)."""
    orders, dlq = create_queue_with_dlq(sqs, "OrdersQueue", f"{prefix}-orders", visibility_timeout)
    return QueueUrls(orders=orders, dlq=dlq)
