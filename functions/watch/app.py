"""The watcher (`execution.watcher`), on an EventBridge schedule (every minute): each invocation
ticks every WATCH_TICK_SECONDS until a few seconds before its timeout (or for
WATCH_RUN_SECONDS, or - WATCH_STOP_WHEN_IDLE - until a tick finds nothing watching), then the
next scheduled one takes over. Reserved concurrency 1: one runs at
a time; a second one racing it still triggers nothing twice (the transitions are guarded).

A missed tick is replaced by the next one: no retries, a short maximum event age.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from botocore.exceptions import BotoCoreError, ClientError

from engine import db
from engine.config import Settings
from engine.errors import EngineError
from engine.metrics import Metric
from engine.notify import StatusQueue
from engine.observability import metrics, tracer
from engine.queue import OrdersQueue
from engine.store import Store
from execution.chain import Chain
from execution.launches import creation_feed
from execution.wallet import wallet_address
from execution.watcher import STOP_BEFORE_TIMEOUT_SECONDS, TickReport, Watcher

logger = Logger(service="watch")
tracing = tracer()
cfg = Settings.from_env()
store = Store(db.open_pool(cfg))
status_queue = StatusQueue.from_settings(cfg)
# One loop per container: the RPC client and its connections live across invocations.
loop = asyncio.new_event_loop()
chain = Chain(cfg.solana_rpc_url)
watcher = Watcher(
    store,
    chain,
    OrdersQueue.from_settings(cfg),
    cfg,
    publish=status_queue.publish,
    # New pools over logsSubscribe where the RPC serves it (kept open across invocations).
    creation_feed=creation_feed(cfg),
)


# An invocation lasts most of a minute: its metrics go out every so often, not only at its end.
METRICS_EVERY_SECONDS = 10.0
_flushed_at = time.monotonic()


def flush_now_and_then(_report: TickReport) -> None:
    global _flushed_at
    if time.monotonic() - _flushed_at >= METRICS_EVERY_SECONDS:
        metrics.flush_metrics()
        _flushed_at = time.monotonic()


def report_wallet_balance() -> None:
    """WalletBalance (SOL) once per invocation, i.e. every minute, orders or not: an empty
    wallet alarms before an order fails on it. The address is the wallet secret's tag (the
    key stays the execute function's); a failure to read it only logs a warning."""
    try:
        pubkey = wallet_address(cfg)
        if pubkey is None:
            return
        account = loop.run_until_complete(chain.accounts([pubkey])).get(pubkey)
    except (EngineError, BotoCoreError, ClientError) as exc:
        logger.warning("wallet balance not read", extra={"error": type(exc).__name__})
        return
    lamports = account.lamports if account is not None else 0
    metrics.add_metric(name=Metric.WALLET_BALANCE, unit=MetricUnit.NoUnit, value=lamports / 1e9)


def ticking_until(context: Any) -> float:
    """The monotonic time this invocation stops ticking at."""
    left = float(context.get_remaining_time_in_millis()) / 1000 - STOP_BEFORE_TIMEOUT_SECONDS
    if cfg.watch_run_seconds is not None:
        left = min(left, cfg.watch_run_seconds)
    return time.monotonic() + max(left, 0.0)


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: Any) -> dict[str, Any]:
    logger.info("watching", extra={"scheduled_at": event.time, "rule": event.resources[:1]})
    report_wallet_balance()
    stop_at = ticking_until(context)  # after it: the balance's RPC call is not a tick's time

    def keep_going() -> bool:
        # A tick must end before the invocation does; remaining time also falls to 0 when the
        # local scheduler stops the stack.
        return time.monotonic() < stop_at and context.get_remaining_time_in_millis() > 0

    try:
        reports = loop.run_until_complete(
            watcher.run(
                keep_going,
                cfg.watch_tick_seconds,
                flush_now_and_then,
                stop_when_idle=cfg.watch_stop_when_idle,
            )
        )
    finally:
        status_queue.flush()
    return {
        "ticks": len(reports),
        "watched": reports[-1].watched if reports else 0,
        "triggered": sum(r.triggered for r in reports),
        "expired": sum(r.expired for r in reports),
        "requeued": sum(r.requeued for r in reports),
    }
