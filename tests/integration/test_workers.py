"""Functions in worker processes as Lambda runs them (local/workers.py): AWS's awslambdaric
against the local Runtime API, each function with its own import path, environment, timeout,
freezing between invocations and its IAM role.

The code under each worker is a probe in a temporary folder standing in for the function's own
folder (the first entry of its import path, as /var/task); everything else is the function's:
its layers, the runtime folder, its environment from the template."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.poller import wait_until
from local.workers import (
    AccountLimit,
    FunctionPool,
    InvokeError,
    Throttled,
    TimedOut,
    worker_environment,
)

PROBE = """
import importlib, json, os, sys, threading, time

def _can_import(name):
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("tick_file"):
        def tick():
            while True:
                with open(event["tick_file"], "a") as fh:
                    fh.write(".")
                time.sleep(0.01)
        threading.Thread(target=tick, daemon=True).start()
    return {
        "pid": os.getpid(),
        "imports": {n: _can_import(n) for n in event.get("imports", [])},
        "environ": sorted(os.environ),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "venv_on_path": any(".venv" in p for p in sys.path),
    }
"""


def probe(tmp_path: Path, source: str = PROBE) -> Path:
    code = tmp_path / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "app.py").write_text(textwrap.dedent(source))
    return code


# What a local stack sets for all its functions together (as `make run` exports it).
STACK_ENV = {
    "WS_MANAGEMENT_ENDPOINT": "http://127.0.0.1:9/secret",
    "ORDERS_QUEUE_URL": "http://127.0.0.1:9/000000000000/orders",
    "WALLET_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:w",
    "VENUE_POOLS": "pools",
    "DATABASE_URL": "postgresql://127.0.0.1:9/x",
}


@pytest.fixture
def notify_pool(tmp_path: Path) -> Iterator[FunctionPool]:
    pool = FunctionPool(
        "notify",
        concurrency=2,
        account=AccountLimit(4),
        code=probe(tmp_path),
        timeout=60,
        env=worker_environment("notify", STACK_ENV),
    )
    yield pool
    pool.stop()


def test_a_function_sees_only_its_layers_and_its_own_environment(
    notify_pool: FunctionPool,
) -> None:
    reply = notify_pool.invoke(
        {"imports": ["engine.notify", "psycopg", "execution", "solders", "awslambdaric", "moto"]}
    )
    # notify's layer (common) is there, the Solana layer and the project's dev tools are not.
    assert reply["imports"] == {
        "engine.notify": True,
        "psycopg": True,
        "execution": False,
        "solders": False,
        "awslambdaric": True,
        "moto": False,
    }
    assert reply["venv_on_path"] is False
    assert reply["function_name"] == "notify"
    assert {"WS_MANAGEMENT_ENDPOINT", "DATABASE_URL"} <= set(reply["environ"])  # its own
    for other in ("ORDERS_QUEUE_URL", "WALLET_SECRET_ARN", "VENUE_POOLS"):  # others' only
        assert other not in reply["environ"], other


def test_another_functions_code_cannot_be_imported(tmp_path: Path) -> None:
    pool = FunctionPool(
        "execute", concurrency=1, account=AccountLimit(2), code=probe(tmp_path), timeout=60
    )
    try:
        reply = pool.invoke({"imports": ["execution.executor", "functions", "app"]})
    finally:
        pool.stop()
    assert reply["imports"] == {"execution.executor": True, "functions": False, "app": True}


def test_a_warm_environment_is_reused_and_remaining_time_counts_down(
    notify_pool: FunctionPool,
) -> None:
    first = notify_pool.invoke({})
    second = notify_pool.invoke({})
    assert first["pid"] == second["pid"]
    assert notify_pool.cold_starts == 1
    assert 0 < first["remaining_ms"] <= 60_000


def test_a_handler_past_its_timeout_fails_and_its_worker_is_killed(
    notify_pool: FunctionPool,
) -> None:
    pid = notify_pool.invoke({})["pid"]
    with pytest.raises(TimedOut) as timed_out:
        notify_pool.invoke({"sleep": 30}, timeout=1)
    assert timed_out.value.error_type == "Sandbox.Timedout"
    assert not Path(f"/proc/{pid}").exists()
    assert notify_pool.invoke({})["pid"] != pid  # a new environment


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_frozen_worker_runs_nothing_between_invocations(
    notify_pool: FunctionPool, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    pid = notify_pool.invoke({"tick_file": str(ticks)})["pid"]
    assert wait_until(lambda: _state(pid) == "T", timeout=10)  # stopped once it asks for more
    size = ticks.stat().st_size if ticks.exists() else 0
    assert not wait_until(lambda: ticks.exists() and ticks.stat().st_size > size, timeout=0.5)
    notify_pool.invoke({"sleep": 0.2})  # thawed: the leftover thread runs again meanwhile
    assert ticks.stat().st_size > size


def test_an_import_error_fails_the_invocation_as_lambdas_init_error(tmp_path: Path) -> None:
    code = probe(tmp_path, "import solders\n\ndef handler(event, context):\n    return 1\n")
    # notify: a function whose layers hold no solders (submit's now do, for a limit's quote)
    pool = FunctionPool("notify", concurrency=1, account=AccountLimit(1), code=code, timeout=60)
    try:
        with pytest.raises(InvokeError) as failed:
            pool.invoke({})
    finally:
        pool.stop()
    assert failed.value.error_type == "Runtime.ImportModuleError"
    assert "solders" in failed.value.message


def test_past_its_concurrency_an_invoke_is_throttled(tmp_path: Path) -> None:
    account = AccountLimit(1)
    pool = FunctionPool("notify", concurrency=1, account=account, code=probe(tmp_path), timeout=60)
    try:
        pool.invoke({})
        account.acquire()  # another function's invocation holds the account's only slot
        with pytest.raises(Throttled):
            pool.invoke({})
        account.release()
        assert pool.invoke({})["function_name"] == "notify"
    finally:
        pool.stop()


def test_a_denied_aws_call_fails_as_access_denied_inside_the_worker(tmp_path: Path) -> None:
    from local.iam import AccessChecker, LocalResources, Roles

    base = "http://127.0.0.1:9/000000000000"
    resources = LocalResources.for_stack(
        {"OrdersQueue": f"{base}/w-orders", "StatusEventsQueue": f"{base}/w-status"}
    )
    checker = AccessChecker(Roles(resources))
    code = probe(
        tmp_path,
        f'''
        import boto3, botocore.exceptions
        def handler(event, context):
            sqs = boto3.client("sqs", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                               aws_access_key_id="x", aws_secret_access_key="x")
            try:
                sqs.send_message(QueueUrl="{base}/w-orders", MessageBody="x")
            except botocore.exceptions.ClientError as exc:
                return exc.response["Error"]["Code"]
            return "sent"
        ''',
    )
    pool = FunctionPool(
        "notify", concurrency=1, account=AccountLimit(1), code=code, timeout=60, access=checker
    )
    try:
        assert pool.invoke({}) == "AccessDenied"
    finally:
        pool.stop()
    assert [(d.function, d.action) for d in checker.denials] == [("notify", "sqs:SendMessage")]


def test_past_the_account_limit_an_idle_environment_is_reclaimed(tmp_path: Path) -> None:
    """The stack keeps at most LOCAL_LAMBDA_CONCURRENCY environments (each a process holding
    Postgres connections): a function's new one reclaims another function's idle one."""
    account = AccountLimit(1)
    pools = [
        FunctionPool(name, concurrency=1, account=account, code=probe(tmp_path / name), timeout=60)
        for name in ("notify", "ws_connect")
    ]
    try:
        first = pools[0].invoke({})
        [env] = pools[0].environments()
        second = pools[1].invoke({})  # room made by reclaiming notify's idle environment
        assert second["pid"] != first["pid"]
        assert env.dead
        assert env.process.returncode == -9
        assert pools[0].environments() == []
        assert pools[0].exits == []  # reclaimed by the stack: not a crash of its own
        again = pools[0].invoke({})  # a cold start again, reclaiming ws_connect's
        assert again["pid"] not in (first["pid"], second["pid"])
        assert pools[0].cold_starts == 2
    finally:
        for pool in pools:
            pool.stop()
