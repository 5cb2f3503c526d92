"""CloudFormation custom resources: the reply CloudFormation waits for.

A custom resource's function must PUT a JSON reply to the event's pre-signed `ResponseURL`
(an S3 URL signed without a content type, hence the empty one), or the stack waits for an hour
and then fails. The protocol is AWS's documented one (the `cfn-response` module); it is written
here because crhelper, the library for it, would set up the root logger, open Lambda, Events and
Logs clients at every cold start and sleep two minutes on each Delete, and the common layer
already has an HTTP client.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import httpx

Status = Literal["SUCCESS", "FAILED"]
MAX_REASON = 1000  # the whole reply may not exceed 4 KiB
ATTEMPTS = 4


def reply(
    event: dict[str, Any],
    status: Status,
    *,
    physical_id: str,
    data: dict[str, str] | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """The reply's body for this request."""
    return {
        "Status": status,
        "Reason": reason[:MAX_REASON] or status.lower(),
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": data or {},
    }


def send(
    event: dict[str, Any], body: dict[str, Any], *, timeout: float = 30.0, within: float = 60.0
) -> None:
    """PUT the reply to the event's ResponseURL, retrying a few times (S3 can blink), all of it
    within `within` seconds (the time the function has left)."""
    payload = json.dumps(body).encode()
    deadline = time.monotonic() + within
    for attempt in range(ATTEMPTS):
        try:
            response = httpx.put(
                event["ResponseURL"],
                content=payload,
                headers={"content-type": ""},
                timeout=max(1.0, min(timeout, deadline - time.monotonic())),
            )
            response.raise_for_status()
            return
        except httpx.HTTPError:
            pause = 2**attempt
            if attempt == ATTEMPTS - 1 or time.monotonic() + pause + 1 >= deadline:
                raise
            time.sleep(pause)
