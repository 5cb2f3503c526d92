"""SQS consumer: execute each order (route, build, sign, send, confirm) with partial failures."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from engine import queue
from engine.config import settings
from execution import executor

logger = Logger(service="execute")
# A batch whose every record failed is still a partial-failure reply, not a crashed invocation:
# the records' own retry delays (ChangeMessageVisibility) then stand.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# One loop per container: the RPC client and its connections live across invocations.
_loop = asyncio.new_event_loop()


class RetryLater(Exception):
    """A transient failure: report the record as failed so SQS delivers it again."""


def record_handler(record: SQSRecord) -> None:
    try:
        order_id = uuid.UUID(json.loads(record.body)["orderId"])
    except (ValueError, KeyError, TypeError):
        logger.error(
            "dropping a message that names no order", extra={"message_id": record.message_id}
        )
        return
    receive_count = int(record.attributes.approximate_receive_count or 1)
    dead_letter = record.event_source_arn == settings().orders_dlq_arn
    outcome = _loop.run_until_complete(
        executor.execute_order(order_id, receive_count, dead_letter=dead_letter)
    )
    logger.info(
        "order step done",
        extra={"order_id": str(order_id), "outcome": outcome.status, "dead_letter": dead_letter},
    )
    if outcome.retry and not dead_letter:  # a settled dead letter is never retried
        delay = queue.delay_retry(record.receipt_handle, receive_count)
        raise RetryLater(f"{outcome.reason}; next attempt in {delay}s")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reply = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(reply)
