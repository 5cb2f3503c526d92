"""API Gateway Lambda authorizer replies: who is calling, and the answer in the shape each API
wants. `functions/authorizer` serves both APIs with one handler:

- HTTP API, payload format 2.0 with simple responses: `{"isAuthorized", "context"}`; API Gateway
  itself answers 401 when the `x-api-key` identity source is missing, 403 when not authorized.
- WebSocket API `$connect` (a REQUEST authorizer; its event has `methodArn`): an IAM policy that
  allows or denies `execute-api:Invoke` on that ARN, with `principalId` and `context`. The key
  comes from `?apiKey=` (browsers cannot set headers on a WebSocket) or the `x-api-key` header.
  With neither, the function fails with `Unauthorized`, whose message is exactly
  "Unauthorized": AWS documents that error as a Lambda authorizer's way to have API Gateway
  answer 401 (the WebSocket authorizer has no identity source, so it cannot answer 401
  itself). A key that is wrong or revoked gets a Deny policy, which API Gateway answers 403.

The context carries `apiKeyId` only: never the key or its hash.
"""

from __future__ import annotations

from typing import Any

from engine import keys
from engine.db import Pool
from engine.errors import Unauthorized

API_KEY_HEADER = "x-api-key"
API_KEY_QUERY = "apiKey"


# The message API Gateway matches: the Lambda error {"errorType": "Unauthorized",
# "errorMessage": "Unauthorized"} is the documented 401, any other error is a 500.
UNAUTHORIZED = "Unauthorized"


def missing_key() -> Unauthorized:
    return Unauthorized(UNAUTHORIZED)


def is_websocket(event: dict[str, Any]) -> bool:
    return "methodArn" in event


def presented_key(event: dict[str, Any]) -> str | None:
    """The secret the caller sent: `x-api-key` (any case), or `?apiKey=` on a WebSocket."""
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == API_KEY_HEADER and value:
            return str(value)
    if is_websocket(event):
        value = (event.get("queryStringParameters") or {}).get(API_KEY_QUERY)
        if value:
            return str(value)
    return None


def authorize(event: dict[str, Any], pool: Pool) -> dict[str, Any]:
    """The authorizer's reply for either API (raises `Unauthorized` for a WebSocket `$connect`
    without a key: see the module doc)."""
    secret = presented_key(event)
    if secret is None and is_websocket(event):
        raise missing_key()
    key = keys.verify(secret, pool=pool) if secret is not None else None
    if is_websocket(event):
        return websocket_policy(event["methodArn"], key)
    return http_simple_response(key)


def http_simple_response(key: keys.ApiKey | None) -> dict[str, Any]:
    if key is None:
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": {"apiKeyId": str(key.id)}}


def websocket_policy(method_arn: str, key: keys.ApiKey | None) -> dict[str, Any]:
    statement = {
        "Action": "execute-api:Invoke",
        "Effect": "Allow" if key is not None else "Deny",
        "Resource": method_arn,
    }
    policy: dict[str, Any] = {
        "principalId": str(key.id) if key is not None else "anonymous",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
    }
    if key is not None:
        policy["context"] = {"apiKeyId": str(key.id)}
    return policy
