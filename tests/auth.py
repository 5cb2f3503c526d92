"""Calling the handlers as API Gateway does once an authorizer has let an API key in."""

from __future__ import annotations

import uuid
from typing import Any

from local.apigw import authorize_http, authorize_ws

Handler = Any


def as_key(handler: Handler, api_key_id: uuid.UUID) -> Handler:
    """`handler`, with the authorizer's context for `api_key_id` put into every event that does
    not carry one yet (HTTP API: `requestContext.authorizer.lambda`; WebSocket:
    `requestContext.authorizer`)."""

    def call(event: dict[str, Any], context: Any) -> Any:
        ctx = event["requestContext"]
        if "authorizer" not in ctx:
            if "http" in ctx:
                authorize_http(event, {"apiKeyId": str(api_key_id)})
            else:
                authorize_ws(event, str(api_key_id), {"apiKeyId": str(api_key_id)})
        return handler(event, context)

    call.api_key_id = api_key_id  # type: ignore[attr-defined]
    return call
