"""Lambda authorizer for both APIs: the HTTP API (payload 2.0, simple responses) and the
WebSocket API's `$connect` (IAM policy). The rules live in `engine.authorizer`; this logs the
outcome (the key id, never the key) and returns the reply."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from engine import db
from engine.authorizer import authorize, is_websocket
from engine.config import Settings
from engine.errors import Unauthorized
from engine.metrics import Metric
from engine.observability import count, metrics, tracer

logger = Logger(service="authorizer")
tracing = tracer()
cfg = Settings.from_env()
pool = db.open_pool(cfg)


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    api = "websocket" if is_websocket(event) else "http"
    try:
        reply = authorize(event, pool)
    except Unauthorized:  # re-raised as is: its type and message are what API Gateway reads
        logger.info("no API key", extra={"api": api})
        count(Metric.API_KEY_DENIED)
        # Lambda counts this raise in the function's Errors: FunctionErrorsAlarm subtracts it.
        count(Metric.API_KEY_MISSING)
        raise
    allowed = reply.get("isAuthorized") or "context" in reply
    count(Metric.API_KEY_ALLOWED if allowed else Metric.API_KEY_DENIED)
    key_id = (reply.get("context") or {}).get("apiKeyId")
    logger.info("authorized" if allowed else "denied", extra={"api": api, "api_key_id": key_id})
    return reply
