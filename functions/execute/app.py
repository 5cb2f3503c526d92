"""SQS consumer: execute each order (route, build, sign, send, confirm) with partial failures.

Everything the executor needs is built once per container, in the container's event loop, and
kept across invocations; the wallet is read on the first order (an empty secret then fails that
order's attempt, not the container's start).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from engine import db
from engine.config import Settings
from engine.errors import EngineError
from engine.metrics import Metric
from engine.notify import StatusQueue
from engine.observability import metrics, tracer
from engine.queue import OrdersQueue
from engine.store import Store
from execution.chain import Chain
from execution.executor import Executor, Outcome
from execution.wallet import load_wallet

logger = Logger(service="execute")
tracing = tracer()
# A batch whose every record failed is still a partial-failure reply, not a crashed invocation:
# the records' own retry delays (ChangeMessageVisibility) then stand.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
cfg = Settings.from_env()
store = Store(db.open_pool(cfg))
orders = OrdersQueue.from_settings(cfg)
status_queue = StatusQueue.from_settings(cfg)
# One loop per container: the RPC client and its connections live across invocations.
loop = asyncio.new_event_loop()
chain = Chain(cfg.solana_rpc_url)
_executor: Executor | None = None
BALANCE_EVERY_SECONDS = 60.0
_balance_reported_at = -BALANCE_EVERY_SECONDS


class RetryLater(Exception):
    """A transient failure: report the record as failed so SQS delivers it again."""


def executor() -> Executor:
    global _executor
    if _executor is None:
        _executor = Executor(store, chain, load_wallet(cfg), cfg, publish=status_queue.publish)
    return _executor


def execute(
    order_id: uuid.UUID, receive_count: int, dead_letter: bool, requeued: int = 0
) -> Outcome:
    runner = executor()
    if dead_letter:  # the message came from the orders DLQ: settle the order
        return loop.run_until_complete(runner.settle_dead_letter(order_id, requeued))
    return loop.run_until_complete(runner.run(order_id, receive_count))


def record_handler(record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
        order_id = uuid.UUID(body["orderId"])
        requeued = int(body.get("requeued", 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.error(
            "dropping a message that names no order", extra={"message_id": record.message_id}
        )
        return
    logger.append_keys(order_id=str(order_id))
    receive_count = int(record.attributes.approximate_receive_count or 1)
    dead_letter = record.event_source_arn == cfg.orders_dlq_arn
    outcome = execute(order_id, receive_count, dead_letter, requeued)
    logger.info(
        "order step done",
        extra={"outcome": outcome.status, "dead_letter": dead_letter, "requeued": requeued},
    )
    if dead_letter and outcome.status == "requeue":  # a throttle is not a failed order
        orders.enqueue(order_id, requeued=requeued + 1)
    if outcome.retry and not dead_letter:  # a settled dead letter is never retried
        delay = orders.delay_retry(record.receipt_handle, receive_count, cfg.retry_base_seconds)
        raise RetryLater(f"{outcome.reason}; next attempt in {delay}s")


def report_wallet_balance() -> None:
    """The WalletBalance metric (SOL), at most once a minute per container: one RPC call, after
    the batch, never failing it (a balance unread now is read after the next batch)."""
    global _balance_reported_at
    if time.monotonic() - _balance_reported_at < BALANCE_EVERY_SECONDS:
        return
    try:
        pubkey = load_wallet(cfg).pubkey  # cached by the secrets provider
        account = loop.run_until_complete(chain.accounts([pubkey])).get(pubkey)
    except EngineError as exc:
        logger.warning("wallet balance not read", extra={"error": exc.code})
        return
    _balance_reported_at = time.monotonic()
    lamports = account.lamports if account is not None else 0
    metrics.add_metric(name=Metric.WALLET_BALANCE, unit=MetricUnit.NoUnit, value=lamports / 1e9)


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        reply = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        # Status triggers go out in the background while the order moves on; none may be left
        # unsent when Lambda freezes the container after this returns.
        status_queue.flush()
    report_wallet_balance()
    return dict(reply)
