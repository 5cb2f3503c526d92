"""The stack's functions as Lambda deploys them, seen from the outside: each worker logs in to
Postgres as the role the template gives its function (and that role is refused what its grants
leave out), and `make sam-env` writes an env.json that gives every function of the template a
value for every variable it declares, pointing at this running stack."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
from psycopg import errors

from local.handlers import ROOT
from local.template import function_environment, load_template
from tests.stack import (
    Running,
    assert_full_stream,
    follow,
    http_json,
    isolated_stack,
    open_ws,
    query,
    submit_http,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(pg_base_url: str, localstack: str) -> Iterator[Running]:
    with isolated_stack(
        pg_base_url, f"orders_e2e_lambda_{uuid.uuid4().hex[:8]}", aws=localstack, workers=True
    ) as running:
        yield running


def database_name(stack: Running) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(stack.database_url)["dbname"])


def sam_env(stack: Running, out: Path, *args: str) -> dict[str, dict[str, str]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "local.sam_env",
            "--database",
            database_name(stack),
            "--out",
            str(out),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o077 == 0  # it names the management API's secret URL
    env: dict[str, dict[str, str]] = json.loads(out.read_text())
    return env


def test_each_function_logs_in_as_its_own_role(stack: Running) -> None:
    assert stack.functions is not None
    with open_ws(stack.ws) as ws:
        ws.send('{"action": "subscribe", "orderId": "nope"}')  # ws_connect answers it
        error = json.loads(ws.recv(timeout=30))
        assert error["error"]["code"] == "invalid_request", error
    accepted = submit_http(stack)
    with open_ws(f"{stack.ws}?orderId={accepted['orderId']}") as ws:
        assert_full_stream(follow(ws), accepted["orderId"])

    # The workers that ran (the authorizer, submit, ws_connect, execute, notify) hold their
    # pools' connections, each as the function's role; nothing logged in as another role.
    logins = {
        row["usename"]
        for row in query(
            stack,
            "SELECT usename FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()",
        )
    }
    ran = {"engine_authorizer", "engine_submit", "engine_ws_connect", "engine_execute"}
    assert ran | {"engine_notify"} <= logins, logins
    pools = stack.functions.pools()
    for function in ("authorizer", "submit", "ws_connect", "execute", "notify"):
        url = pools[function].env["DATABASE_URL"]
        assert psycopg.conninfo.conninfo_to_dict(url)["user"] == f"engine_{function}"

    # A function's role is refused what its grants leave out: notify reads order events and
    # delivers them, it never reads a key or writes an order.
    notify = pools["notify"].env["DATABASE_URL"]
    with psycopg.connect(notify, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM order_events").fetchone()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT key_hash FROM api_keys")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE orders SET status = 'failed'")
    # And the order is as execute left it: confirmed, whatever notify's role tried.
    status, order = http_json("GET", f"{stack.http}/api/orders/{accepted['orderId']}")
    assert (status, order["status"]) == (200, "confirmed")


def test_sam_env_covers_every_function_and_points_at_this_stack(
    stack: Running, tmp_path: Path
) -> None:
    env = sam_env(stack, tmp_path / "env.json")
    doc = load_template()
    functions = {
        logical
        for logical, res in doc["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
    assert set(env) == functions
    for logical in functions:
        declared = set(function_environment(logical))
        assert set(env[logical]) == declared, logical  # SAM sets only what is declared
        assert all(isinstance(v, str) for v in env[logical].values()), logical

    submit, execute = env["SubmitFunction"], env["ExecuteFunction"]
    # Postgres: the stack's database, as the function's role.
    login = psycopg.conninfo.conninfo_to_dict(submit["DATABASE_URL"])
    assert (login["dbname"], login["user"]) == (database_name(stack), "engine_submit")
    with psycopg.connect(submit["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("engine_submit",)
    owner = psycopg.conninfo.conninfo_to_dict(env["MigrateFunction"]["DATABASE_URL"])
    assert owner["user"] != "engine_migrate"  # the migrate function is the owner, as in AWS
    # LocalStack: the stack's queues and its wallet secret.
    sqs = boto3.client("sqs", endpoint_url=submit["SQS_ENDPOINT_URL"])
    for url in (submit["ORDERS_QUEUE_URL"], submit["STATUS_QUEUE_URL"]):
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    sm = boto3.client("secretsmanager", endpoint_url=execute["SECRETS_ENDPOINT_URL"])
    assert sm.describe_secret(SecretId=execute["WALLET_SECRET_ARN"])["ARN"]
    # The chain and the management API.
    assert execute["SOLANA_RPC_URL"] == stack.rpc
    reply = http_json(
        "POST", execute["SOLANA_RPC_URL"], {"jsonrpc": "2.0", "id": 1, "method": "getHealth"}
    )
    assert reply == (200, {"jsonrpc": "2.0", "id": 1, "result": "ok"})
    assert env["NotifyFunction"]["WS_MANAGEMENT_ENDPOINT"].startswith(stack.http + "/")
    # A deployed-only value is empty (the function uses DATABASE_URL instead of the proxy).
    assert submit["DB_HOST"] == submit["DB_SECRET_ARN"] == ""

    # Containers that do not share the host's network reach it by name.
    named = sam_env(stack, tmp_path / "named.json", "--host", "host.docker.internal")
    text = json.dumps(named)
    assert "127.0.0.1" not in text
    assert "localhost" not in text
    assert psycopg.conninfo.conninfo_to_dict(named["SubmitFunction"]["DATABASE_URL"])["host"] == (
        "host.docker.internal"
    )
