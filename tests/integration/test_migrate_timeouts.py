"""CloudFormation always hears back from the migrate function, before the function's timeout
(and so within the custom resource's ServiceTimeout), whatever the database does: a host that
accepts and never answers, a port nobody listens on, a bad setting. A Delete never needs the
database. The ResponseURL is a real HTTP server recording what it gets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from local.apigw import LambdaContext
from local.handlers import fresh_handler
from local.template import load_template, resource
from tests.integration.test_migrate_function import CloudFormation, event

INVOCATION_SECONDS = 8.0  # a short invocation, so the test is quick; 300 s in the template


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    cfn = CloudFormation()
    yield cfn
    cfn.server.shutdown()


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A TCP server that accepts connections and never says a word (a proxy or a security group
    swallowing the startup): libpq waits 130 s on it without connect_timeout."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    yield f"postgresql://engine_admin@127.0.0.1:{port}/orders"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as s:  # bound, never listening: every connect is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://engine_admin@127.0.0.1:{port}/orders"


def invoke(request_type: str, cfn: CloudFormation) -> tuple[dict[str, str], float]:
    started = time.monotonic()
    context = LambdaContext("migrate", timeout_seconds=INVOCATION_SECONDS)
    answer = fresh_handler("migrate")(event(request_type, cfn.url), context)
    return answer, time.monotonic() - started


@pytest.mark.parametrize("database", ["silent_database", "closed_port"])
def test_an_unreachable_database_is_reported_before_the_function_times_out(
    database: str,
    request: pytest.FixtureRequest,
    cloudformation: CloudFormation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", request.getfixturevalue(database))
    monkeypatch.delenv("DB_ROLE_SECRETS", raising=False)
    monkeypatch.delenv("FIRST_API_KEY_SECRET_ARN", raising=False)
    for request_type in ("Create", "Update"):
        answer, took = invoke(request_type, cloudformation)
        assert answer == {"Status": "FAILED"}
        assert took < INVOCATION_SECONDS, request_type  # the reply went before the timeout
        reply = cloudformation.replies[-1][1]
        assert reply["Status"] == "FAILED"
        # psycopg.OperationalError, or its ConnectionTimeout: the database named, no secret
        assert reply["Reason"].split(":")[0] in {"OperationalError", "ConnectionTimeout"}
        assert reply["PhysicalResourceId"] == "orders-database-schema"
    assert len(cloudformation.replies) == 2


def test_a_delete_replies_without_the_database(
    closed_port: str, cloudformation: CloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", closed_port)
    answer, took = invoke("Delete", cloudformation)
    assert answer == {"Status": "SUCCESS"}
    assert took < 2
    assert cloudformation.replies[-1][1]["Status"] == "SUCCESS"


def test_a_bad_setting_is_reported_not_raised(
    cloudformation: CloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PORT", "not-a-port")
    answer, _ = invoke("Create", cloudformation)
    assert answer == {"Status": "FAILED"}
    assert "DB_PORT" in cloudformation.replies[-1][1]["Reason"]


def test_the_custom_resource_gives_up_after_the_function_would_have_replied() -> None:
    tpl = load_template()
    timeout = resource("MigrateFunction", tpl)["Properties"]["Timeout"]
    assert timeout < resource("DatabaseSchema", tpl)["Properties"]["ServiceTimeout"] < 3600
