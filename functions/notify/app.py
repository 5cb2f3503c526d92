"""SQS consumer of the status-events queue: deliver each order's outstanding frames to its sockets.

A message only names the order (`{"orderId", ...}`: a status trigger, or a backlog request from
`$connect`); what to post is read from Postgres, so duplicates and reordering are harmless.
A record fails (SQS redelivers it; after 3 receives it goes to the DLQ) when frames are still
owed to a live socket: a post timed out, or the socket was not ready yet.
"""

from __future__ import annotations

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

from engine import db
from engine.config import Settings
from engine.notify import Fanout
from engine.observability import metrics, tracer

logger = Logger(service="notify")
tracing = tracer()
# A batch whose every record is owed frames is still a partial-failure reply (each record is
# redelivered), not a crashed invocation that FunctionErrorsAlarm would count.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
cfg = Settings.from_env()
fanout = Fanout.from_settings(db.open_pool(cfg), cfg)


class FramesOwed(Exception):
    """Some subscriber could not be reached yet: let SQS deliver the record again."""


def record_handler(record: SQSRecord) -> None:
    try:
        order_id = uuid.UUID(str(json.loads(record.body)["orderId"]))
    except (ValueError, KeyError, TypeError):
        logger.error("dropping a message that names no order", extra={"id": record.message_id})
        return
    owed = [d for d in fanout.fan_out(order_id) if d.retryable]
    if owed:
        raise FramesOwed(f"{len(owed)} subscriber(s) of {order_id} still owed frames")


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reply = process_partial_response(  # {"batchItemFailures": [...]}
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(reply)
