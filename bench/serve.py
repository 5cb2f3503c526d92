"""The local stack in its own process, instrumented, for the end-to-end runs.

    python -m bench.serve --port P --concurrency 10 --tick 0.005 --poll 0.01 --timings FILE \
        [--sqs ENDPOINT --emulator localstack|moto]

Prints one line `READY {json}` once the stack serves. Reads commands on stdin: `dump` writes the
per-order server-side timings to FILE (then prints `DUMPED`); `calls` prints `CALLS {json}`, the
AWS API calls the stack's clients have made so far by service and operation; `stop` or end of
input stops it.

`--sqs` names an endpoint already running that serves SQS and Secrets Manager (the bench's
LocalStack, or moto's server in a process of its own) and `--emulator` what it is; without
`--sqs`, `--emulator moto` runs moto's server inside this process and `localstack` starts one.

The instrumentation wraps engine functions by module attribute (the handlers look them up at call
time) and records wall-clock marks and durations per order id. It adds a perf_counter call or
two per wrapped call; it does not change what the engine does.
"""

from __future__ import annotations

import argparse
import contextvars
import functools
import json
import logging
import os
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

BENCH_DB = "orders_bench"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_order", default=None)
marks: dict[str, dict[str, float]] = defaultdict(dict)
durations: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
aws_calls: dict[str, int] = defaultdict(int)  # "sqs.SendMessage" -> calls, every client


def _add(oid: str | None, phase: str, seconds: float) -> None:
    if oid is not None:
        durations[oid][phase] += seconds


def instrument() -> None:
    """Wrap the engine's steps so each order's time can be split by where it went. The handlers
    build their objects from these classes, so wrapping the class methods reaches every
    container."""
    from engine.notify import StatusQueue
    from engine.queue import OrdersQueue
    from engine.store import Store
    from execution import builder, router
    from execution.executor import Executor

    enqueue = OrdersQueue.enqueue

    @functools.wraps(enqueue)
    def enqueue_order(self: OrdersQueue, order_id: uuid.UUID) -> str:
        reply = enqueue(self, order_id)
        marks[str(order_id)].setdefault("enqueued", time.time())
        return reply

    OrdersQueue.enqueue = enqueue_order  # type: ignore[method-assign]

    def execution(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        # Whatever else the handler passes goes through untouched: the bench follows the
        # engine's signature instead of pinning it.
        @functools.wraps(fn)
        async def wrapper(self: Executor, order_id: uuid.UUID, *args: Any, **kwargs: Any) -> Any:
            oid = str(order_id)
            marks[oid].setdefault("exec_start", time.time())
            token = _current.set(oid)
            try:
                return await fn(self, order_id, *args, **kwargs)
            finally:
                _current.reset(token)
                marks[oid]["exec_end"] = time.time()

        return wrapper

    Executor.run = execution(Executor.run)  # type: ignore[method-assign,assignment]
    Executor.settle_dead_letter = execution(  # type: ignore[method-assign,assignment]
        Executor.settle_dead_letter
    )

    def timed_async(fn: Callable[..., Awaitable[Any]], phase: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                _add(_current.get(), phase, time.perf_counter() - started)

        return wrapper

    def timed(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _add(_current.get(), phase, time.perf_counter() - started)

        return wrapper

    count_aws_calls()
    router.quote_all_venues = timed_async(router.quote_all_venues, "routing")
    builder.build_swap = timed_async(builder.build_swap, "building")
    Store.transition = timed(Store.transition, "db_write")  # type: ignore[method-assign]
    Store.get_order = timed(Store.get_order, "db_read")  # type: ignore[method-assign]
    StatusQueue.publish = timed(StatusQueue.publish, "publish")  # type: ignore[method-assign]
    Executor._send = timed_async(Executor._send, "send")  # type: ignore[method-assign]


def count_aws_calls() -> None:
    """Count every AWS API call any botocore client of this process makes (the engine's, the
    pollers', the management API's): one wrapper where every client's operations pass."""
    from botocore.client import BaseClient

    # Not in botocore's stubs: a private method, but the one every operation goes through.
    make_api_call: Callable[..., Any] = BaseClient._make_api_call  # type: ignore[attr-defined]

    @functools.wraps(make_api_call)
    def counted(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        aws_calls[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        return make_api_call(self, operation_name, api_params)

    BaseClient._make_api_call = counted  # type: ignore[attr-defined]


def fresh_database(name: str) -> None:
    """Drop `name` so every run starts from an empty database (the stack recreates it)."""
    import psycopg
    from psycopg import sql

    from local import postgres

    with psycopg.connect(postgres.server_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="an instrumented local stack for the bench")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--tick", type=float, default=0.005, help="seconds per block")
    parser.add_argument("--poll", type=float, default=0.01, help="CONFIRM_POLL_SECONDS")
    parser.add_argument("--db-pool", type=int, default=0, help="DB_POOL_MAX (0: auto)")
    parser.add_argument("--database", default=BENCH_DB)
    parser.add_argument("--timings", required=True)
    parser.add_argument(
        "--sqs", help="an endpoint already running for SQS and Secrets Manager (see --emulator)"
    )
    parser.add_argument(
        "--emulator",
        choices=("localstack", "moto"),
        default="localstack",
        help="what serves SQS and Secrets Manager: at --sqs, else started by the stack",
    )
    parser.add_argument("--chain", help="a local chain's RPC URL (else the chain in-process)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    os.environ["LOCAL_EXECUTE_CONCURRENCY"] = str(args.concurrency)
    os.environ["CONFIRM_POLL_SECONDS"] = str(args.poll)
    # Every function shares the process's pool: size it for the executors plus submit/notify.
    os.environ["DB_POOL_MAX"] = str(args.db_pool or args.concurrency + 10)
    # The bench's key may have every order of a run in flight at once.
    os.environ.setdefault("LOCAL_API_KEY_MAX_IN_FLIGHT", "1000000")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    from local.stack import Stack

    if args.chain:  # the seeded local chain in another process: what the engine needs for it
        from local.chain import local_env

        os.environ.update(local_env(args.chain))
    if not args.chain:  # the chain runs in this process: same blockhash lifetime as bench.aux
        from bench.aux import keep_blockhash_lifetime

        keep_blockhash_lifetime(args.tick)
    fresh_database(args.database)
    instrument()
    stack = Stack(
        port=args.port,
        database=args.database,
        chain_tick_seconds=args.tick,
        aws_endpoint_url=args.sqs,
        emulator=args.emulator,
        api_key_file=None,  # the key goes to the client on stdout, not to .local-data
    )
    urls = {**stack.start(), "api_key": stack.api_key}
    print("READY " + json.dumps(urls), flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "dump":
                with open(args.timings, "w") as f:
                    json.dump({"marks": marks, "durations": durations}, f)
                print("DUMPED", flush=True)
            elif command == "calls":
                print("CALLS " + json.dumps(aws_calls), flush=True)
            elif command == "stop":
                break
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
