"""The deploy's database step, as the database's owner: migrations, the function roles' logins,
the first API key (`engine.provision`). CloudFormation runs it through a custom resource each
time the common layer (which carries the migrations) or a role's secret changes; invoked
directly (`make db-provision`), it runs the same step and returns what it did.

A Delete changes nothing: the database, and its final snapshot, outlive the stack.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from engine import custom_resource, provision
from engine.config import Settings
from engine.observability import metrics, tracer

logger = Logger(service="migrate")
tracing = tracer()
cfg = Settings.from_env()
PHYSICAL_ID = "orders-database-schema"  # stable: an update never replaces (or deletes) it


def run(request_type: str) -> dict[str, str]:
    if request_type == "Delete":
        return {}
    done = provision.provision(cfg)
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
    if "ResponseURL" not in event:  # a direct invocation: errors surface as the function's
        return run("Update")
    try:
        data = run(str(event["RequestType"]))
        body = custom_resource.reply(event, "SUCCESS", physical_id=PHYSICAL_ID, data=data)
    except Exception as exc:  # CloudFormation must hear of every failure, or it waits an hour
        logger.exception("provisioning failed")
        reason = f"{type(exc).__name__}: {exc} (see the function's log)"
        body = custom_resource.reply(event, "FAILED", physical_id=PHYSICAL_ID, reason=reason)
    custom_resource.send(event, body)
    return {"Status": body["Status"]}
