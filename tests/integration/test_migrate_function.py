"""The deploy's database step as CloudFormation runs it: functions/migrate answers its custom
resource by PUTting to the event's ResponseURL (here a real HTTP server), after migrating a
fresh database as its owner, giving each function role its secret's password, and making the
first API key into its secret (LocalStack's Secrets Manager). Updates change nothing that is already
done; a failure is reported to CloudFormation, with no secret in it; a Delete keeps the data."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import psycopg
import pytest

from engine import db, keys
from engine import secrets as engine_secrets
from engine.provision import FIRST_KEY_NAME, FUNCTION_ROLES
from local import postgres
from local.apigw import LambdaContext
from local.handlers import ROOT, fresh_handler


class CloudFormation:
    """The pre-signed ResponseURL: records each reply PUT to it."""

    def __init__(self) -> None:
        replies: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.replies = replies

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                replies.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/response?X-Amz-Signature=x"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    cfn = CloudFormation()
    yield cfn
    cfn.server.shutdown()


@pytest.fixture
def deploy(
    pg_base_url: str, localstack: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, dict[str, str], str, Any]]:
    """A fresh database and the secrets a deploy creates: (url, role -> ARN, first-key ARN, sm)."""
    url = postgres.create_database(pg_base_url, "orders_deploy")
    # LocalStack's Secrets Manager (the session's), as the deploy's are AWS's; names are unique
    # per test.
    monkeypatch.setenv("SECRETS_ENDPOINT_URL", localstack)
    engine_secrets._client.cache_clear()
    engine_secrets._provider.cache_clear()
    sm = boto3.client("secretsmanager", endpoint_url=localstack, region_name="us-east-1")
    run = secrets.token_hex(4)
    roles = {
        role: sm.create_secret(
            Name=f"db-{role}-{run}",
            SecretString=json.dumps({"username": role, "password": secrets.token_hex(16)}),
        )["ARN"]
        for role in sorted(FUNCTION_ROLES)
    }
    first = sm.create_secret(Name=f"first-api-key-{run}")["ARN"]  # empty, as the template makes it
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_ROLE_SECRETS", json.dumps(roles))
    monkeypatch.setenv("FIRST_API_KEY_SECRET_ARN", first)
    yield url, roles, first, sm
    engine_secrets._client.cache_clear()
    engine_secrets._provider.cache_clear()
    db.pool(url).close()
    db._pools.pop(url, None)
    postgres.drop_database(pg_base_url, url)


def event(request_type: str, response_url: str) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(
        (ROOT / "events" / "migrate_custom_resource.json").read_text()
    )
    sample.update(RequestType=request_type, ResponseURL=response_url)
    if request_type != "Create":
        sample["PhysicalResourceId"] = "orders-database-schema"
    return sample


def test_create_then_update_provisions_once(
    deploy: tuple[str, dict[str, str], str, Any], cloudformation: CloudFormation
) -> None:
    url, _roles, first, sm = deploy
    handler = fresh_handler("migrate")
    assert handler(event("Create", cloudformation.url), LambdaContext("migrate")) == {
        "Status": "SUCCESS"
    }
    [(headers, created)] = cloudformation.replies
    assert headers["content-type"] == ""  # what the pre-signed S3 URL was signed for
    assert created["Status"] == "SUCCESS"
    assert (created["RequestId"], created["LogicalResourceId"]) == (
        "6d7e8f90-a1b2-43c4-85d6-e7f8091a2b3c",
        "DatabaseSchema",
    )
    assert created["PhysicalResourceId"] == "orders-database-schema"
    assert "005_function_roles" in created["Data"]["Migrations"].split(",")
    assert set(created["Data"]["Logins"].split(",")) == FUNCTION_ROLES

    # The first key is in its secret, and it is a key the authorizer accepts.
    secret = sm.get_secret_value(SecretId=first)["SecretString"]
    assert secret.startswith(keys.SECRET_PREFIX)
    key = keys.verify(secret, pool=db.pool(url))
    assert key is not None
    assert (str(key.id), key.name) == (created["Data"]["FirstApiKeyId"], FIRST_KEY_NAME)
    assert secret not in json.dumps(cloudformation.replies)  # the reply names the key's id only
    with psycopg.connect(url) as conn:
        logins = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname = ANY(%s)",
            (sorted(FUNCTION_ROLES),),
        ).fetchall()
    assert {r[0] for r in logins} == FUNCTION_ROLES

    # A later deploy (a new layer version): nothing left to migrate, the same key.
    handler(event("Update", cloudformation.url), LambdaContext("migrate"))
    updated = cloudformation.replies[-1][1]
    assert updated["Status"] == "SUCCESS"
    assert updated["Data"]["Migrations"] == ""
    assert updated["Data"]["FirstApiKeyId"] == str(key.id)
    assert sm.get_secret_value(SecretId=first)["SecretString"] == secret
    assert len(keys.list_keys(pool=db.pool(url))) == 1

    # A stack deletion leaves the database alone.
    handler(event("Delete", cloudformation.url), LambdaContext("migrate"))
    assert cloudformation.replies[-1][1]["Status"] == "SUCCESS"
    assert keys.verify(secret, pool=db.pool(url)) == key


def test_a_direct_invocation_runs_the_same_step(
    deploy: tuple[str, dict[str, str], str, Any],
) -> None:
    data = fresh_handler("migrate")({}, LambdaContext("migrate"))
    assert "001_orders" in data["Migrations"]
    assert data["FirstApiKeyId"]


def test_a_failure_is_reported_to_cloudformation_without_secrets(
    deploy: tuple[str, dict[str, str], str, Any],
    cloudformation: CloudFormation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, roles, _, sm = deploy
    monkeypatch.setenv("DB_ROLE_SECRETS", json.dumps({"engine_root": roles["engine_submit"]}))
    handler = fresh_handler("migrate")
    assert handler(event("Create", cloudformation.url), LambdaContext("migrate")) == {
        "Status": "FAILED"
    }
    reply = cloudformation.replies[-1][1]
    assert reply["Status"] == "FAILED"
    assert "no such function role" in reply["Reason"]
    password = json.loads(sm.get_secret_value(SecretId=roles["engine_submit"])["SecretString"])
    assert password["password"] not in json.dumps(reply)
