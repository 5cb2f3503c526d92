"""The bench's instruments inside each function's worker process (run by the worker before
awslambdaric starts: LOCAL_LAMBDA_PRELOAD, local/workers.py).

Engine steps timed per order, SQS, Postgres and RPC calls counted, each record written as a
JSON line to BENCH_EVENTS_DIR/<pid>.jsonl as it happens: a worker is frozen between invocations,
so it cannot be asked for them later; the stack process reads every file when the bench asks for
its timings (bench/serve.py). With every function in the stack's process (`bench.serve
--in-process`), the same wrappers record into that process's memory instead (`instrument_into`).
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

_sinks: list[Callable[[list[Any]], None]] = []  # where records go, once started
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_order", default=None)


def _write(record: list[Any]) -> None:
    _sinks[0](record)


class Records:
    """Records gathered: marks (the first of each, the last exec_end), summed durations and
    call counts, per order id."""

    def __init__(self) -> None:
        self.marks: dict[str, dict[str, float]] = {}
        self.durations: dict[str, dict[str, float]] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, record: list[Any]) -> None:
        with self._lock:
            if record[0] == "mark":
                _, oid, what, at, first = record
                seen = self.marks.setdefault(oid, {})
                seen[what] = (min if first else max)(at, seen.get(what, at))
            elif record[0] == "dur":
                _, oid, phase, seconds = record
                per = self.durations.setdefault(oid, {})
                per[phase] = per.get(phase, 0.0) + seconds
            elif record[0] == "call":
                self.calls[record[1]] = self.calls.get(record[1], 0) + 1


def mark(oid: str, name: str, first: bool = True) -> None:
    _write(["mark", oid, name, time.time(), first])


def _add(oid: str | None, phase: str, seconds: float) -> None:
    if oid is not None:
        _write(["dur", oid, phase, seconds])


def count(kind: str) -> None:
    _write(["call", kind])


def _count_calls() -> None:
    import boto3
    import botocore.client
    import psycopg

    create = botocore.client.ClientCreator.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = create(self, *args, **kwargs)
        service = client.meta.service_model.service_name
        if service in ("sqs", "apigatewaymanagementapi"):
            prefix = "sqs" if service == "sqs" else "wsapi"
            client.meta.events.register(
                "before-call", lambda model, **_: count(f"{prefix}:{model.name}")
            )
        return client

    botocore.client.ClientCreator.create_client = create_client  # type: ignore[method-assign]
    del boto3
    execute = psycopg.Connection.execute

    @functools.wraps(execute)
    def counted_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        count("postgres")
        return execute(self, *args, **kwargs)

    psycopg.Connection.execute = counted_execute  # type: ignore[method-assign]
    try:
        from execution.chain import Chain
    except ImportError:  # a function without the Solana layer
        return
    rpc = Chain._rpc

    @functools.wraps(rpc)
    async def counted_rpc(self: Chain, doing: str, call: Any) -> Any:
        count(f"rpc:{doing}")
        return await rpc(self, doing, call)

    Chain._rpc = counted_rpc  # type: ignore[method-assign]


def _timed_async(fn: Callable[..., Awaitable[Any]], phase: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            _add(_current.get(), phase, time.perf_counter() - started)

    return wrapper


def _timed(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _add(_current.get(), phase, time.perf_counter() - started)

    return wrapper


def _instrument() -> None:
    from engine.notify import StatusQueue
    from engine.queue import OrdersQueue
    from engine.store import Store

    enqueue = OrdersQueue.enqueue

    @functools.wraps(enqueue)
    def enqueue_order(self: OrdersQueue, order_id: uuid.UUID, *, requeued: int = 0) -> str:
        reply = enqueue(self, order_id, requeued=requeued)
        mark(str(order_id), "enqueued")
        return reply

    OrdersQueue.enqueue = enqueue_order  # type: ignore[method-assign]
    Store.transition = _timed(Store.transition, "db_write")  # type: ignore[method-assign]
    Store.get_order = _timed(Store.get_order, "db_read")  # type: ignore[method-assign]
    StatusQueue.publish = _timed(StatusQueue.publish, "publish")  # type: ignore[method-assign]
    try:
        from execution import builder, router
        from execution.executor import Executor
    except ImportError:  # a function without the Solana layer
        return

    def execution(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapper(self: Executor, order_id: uuid.UUID, *args: Any, **kwargs: Any) -> Any:
            oid = str(order_id)
            mark(oid, "exec_start")
            token = _current.set(oid)
            try:
                return await fn(self, order_id, *args, **kwargs)
            finally:
                _current.reset(token)
                mark(oid, "exec_end", first=False)

        return wrapper

    Executor.run = execution(Executor.run)  # type: ignore[method-assign,assignment]
    Executor.settle_dead_letter = execution(  # type: ignore[method-assign,assignment]
        Executor.settle_dead_letter
    )
    router.quote_all_venues = _timed_async(router.quote_all_venues, "routing")
    builder.build_swap = _timed_async(builder.build_swap, "building")
    Executor._send = _timed_async(Executor._send, "send")  # type: ignore[method-assign]


def start() -> None:
    """In a worker: open its record file, then wrap what the bench measures."""
    path = os.path.join(os.environ["BENCH_EVENTS_DIR"], f"{os.getpid()}.jsonl")
    sink = open(path, "a", buffering=1)  # noqa: SIM115 - for the worker's life
    lock = threading.Lock()

    def write(record: list[Any]) -> None:
        with lock:
            sink.write(json.dumps(record) + "\n")

    _sinks.append(write)
    _count_calls()
    _instrument()


def instrument_into(records: Records) -> None:
    """In the stack's process (every function in it): the engine's steps timed into `records`.
    Its calls are counted by bench/serve.py, for the stack's own clients too."""
    _sinks.append(records.add)
    _instrument()


if __name__ == "local_lambda_preload":
    start()


def read_events(folder: str) -> Records:
    """Every worker's records in `folder`."""
    records = Records()
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:  # a line a killed worker left half-written
                    continue
                records.add(record)
    return records
