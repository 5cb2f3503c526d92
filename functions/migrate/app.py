"""The deploy's database step, as the database's owner: migrations, the function roles' logins,
the first API key (`engine.provision`). CloudFormation runs it through a custom resource each
time the common layer (which carries the migrations) or a role's secret changes; invoked
directly (`make db-provision`), it runs the same step and returns what it did.

CloudFormation hears back on every path (Create, Update, Delete, a failure, a bad setting, a
database that cannot be reached) before this function's own timeout: the step gets the time
left minus what the reply needs, and every connection attempt fits in it. A Delete changes
nothing: the database, and its final snapshot, outlive the stack.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from engine import custom_resource, provision
from engine.config import Settings
from engine.observability import metrics, tracer

logger = Logger(service="migrate")
tracing = tracer()
PHYSICAL_ID = "orders-database-schema"  # stable: an update never replaces (or deletes) it
REPLY_SECONDS = 20.0  # kept for the reply (an S3 PUT, retried) out of a long invocation


def budget(context: Any) -> tuple[float, float]:
    """(seconds for the step, seconds for the reply) out of the invocation's time left: the
    reply keeps REPLY_SECONDS, or a fifth of a short invocation."""
    left = context.get_remaining_time_in_millis() / 1000.0
    reply = min(REPLY_SECONDS, left / 5)
    return max(0.0, left - reply), reply


def run(request_type: str, seconds: float) -> dict[str, str]:
    if request_type == "Delete":
        return {}
    cfg = Settings.from_env()  # here, not at import: a bad setting is reported, not a hang
    done = provision.provision(cfg, wait_seconds=seconds)
    logger.info(
        "database provisioned",
        extra={
            "migrations": done.migrations,
            "logins": done.logins,
            "first_key_id": done.first_key_id,
            "first_key_created": done.first_key_created,
        },
    )
    return done.data()


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    step, _reply = budget(context)
    if "ResponseURL" not in event:  # a direct invocation: errors surface as the function's
        return run("Update", step)
    try:
        data = run(str(event["RequestType"]), step)
        body = custom_resource.reply(event, "SUCCESS", physical_id=PHYSICAL_ID, data=data)
    except Exception as exc:  # CloudFormation must hear of every failure, or it waits
        logger.exception("provisioning failed")
        reason = f"{type(exc).__name__}: {exc} (see the function's log)"
        body = custom_resource.reply(event, "FAILED", physical_id=PHYSICAL_ID, reason=reason)
    left = context.get_remaining_time_in_millis() / 1000.0
    custom_resource.send(event, body, within=max(1.0, left - 0.5))
    return {"Status": body["Status"]}
