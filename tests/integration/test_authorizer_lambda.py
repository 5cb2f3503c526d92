"""The authorizer function as API Gateway calls it, answered as AWS documents: for a WebSocket
`$connect` without a key the function fails with the error `Unauthorized` (API Gateway: 401),
for a wrong or revoked key it returns a Deny policy (403), for a good key an Allow; the HTTP API
gets simple responses. Real handler, real Postgres, the repository's sample event."""

from __future__ import annotations

import copy
import json
import traceback
from typing import Any

import pytest

from engine import db, keys
from local.apigw import LambdaContext
from local.handlers import ROOT, fresh_handler


@pytest.fixture
def authorizer(database_url: str) -> Any:
    return fresh_handler("authorizer")


def sample(query: dict[str, str] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "authorizer_ws_connect.json").read_text())
    event = copy.deepcopy(event)
    event["queryStringParameters"] = query
    event["headers"].pop("x-api-key", None)
    return event


def lambda_error(exc: BaseException) -> dict[str, Any]:
    """What the Lambda Python runtime reports for an exception that escapes the handler, and
    what API Gateway reads: the class name and the message."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def test_websocket_without_a_key_fails_with_unauthorized(
    authorizer: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Exception) as raised:  # noqa: PT011  # the type is what is checked
        authorizer(sample(), LambdaContext("authorizer"))
    error = lambda_error(raised.value)
    assert (error["errorType"], error["errorMessage"]) == ("Unauthorized", "Unauthorized")
    out = capfd.readouterr().out
    assert "ApiKeyDenied" in out  # counted like any refusal
    # and apart: Lambda counts this raise as an Error, which FunctionErrorsAlarm subtracts
    assert '"ApiKeyMissing"' in out


def test_websocket_with_a_wrong_or_revoked_key_is_denied(
    authorizer: Any, database_url: str
) -> None:
    key, secret = keys.create_key("ws-authorizer", pool=db.pool(database_url))
    event = sample({"apiKey": secret})
    allowed = authorizer(event, LambdaContext("authorizer"))
    [statement] = allowed["policyDocument"]["Statement"]
    assert (statement["Effect"], statement["Resource"]) == ("Allow", event["methodArn"])
    assert allowed["context"] == {"apiKeyId": str(key.id)}

    for wrong in ("oek_" + "x" * 43, "short", secret + "x"):
        denied = authorizer(sample({"apiKey": wrong}), LambdaContext("authorizer"))
        assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
        assert "context" not in denied
    keys.revoke(key.id, pool=db.pool(database_url))
    revoked = authorizer(event, LambdaContext("authorizer"))
    assert revoked["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_http_answers_are_simple_responses(authorizer: Any, database_url: str) -> None:
    event = json.loads((ROOT / "events" / "authorizer_http.json").read_text())
    _, secret = keys.create_key("http-authorizer", pool=db.pool(database_url))
    event["headers"]["x-api-key"] = secret
    assert authorizer(event, LambdaContext("authorizer"))["isAuthorized"] is True
    event["headers"]["x-api-key"] = "oek_" + "y" * 43
    assert authorizer(event, LambdaContext("authorizer")) == {"isAuthorized": False}
