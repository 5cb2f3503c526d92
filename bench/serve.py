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
import functools
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import worker_probe

BENCH_DB = "orders_bench"

# Every function in this process (--in-process): their steps' marks and durations, as the
# workers record theirs (bench/worker_probe.py).
records = worker_probe.Records()
# Calls the engine made, by kind (`sqs:SendMessage`, `postgres`, `rpc:reading pools`, ...):
# totals since start; the client takes differences around a run.
calls: dict[str, int] = defaultdict(int)
_calls_lock = threading.Lock()


def _count(kind: str) -> None:
    with _calls_lock:
        calls[kind] += 1


def count_calls() -> None:
    """Count every SQS call (a botocore event on the default session, which every client the
    stack and the functions create comes from), every Postgres statement and every Solana RPC
    call (one per attempt), across the whole process."""
    import boto3
    import psycopg

    from execution.chain import Chain

    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    if session is not None:
        session.events.register("before-call.sqs", lambda model, **_: _count(f"sqs:{model.name}"))
    execute = psycopg.Connection.execute

    @functools.wraps(execute)
    def counted_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        _count("postgres")
        return execute(self, *args, **kwargs)

    psycopg.Connection.execute = counted_execute  # type: ignore[method-assign]
    rpc = Chain._rpc

    @functools.wraps(rpc)
    async def counted_rpc(self: Chain, doing: str, call: Any) -> Any:
        _count(f"rpc:{doing}")
        return await rpc(self, doing, call)

    Chain._rpc = counted_rpc  # type: ignore[method-assign]
    if session is not None:  # frames posted to WebSocket connections (WebSocket API messages)
        session.events.register(
            "before-call.apigatewaymanagementapi",
            lambda model, **_: _count(f"wsapi:{model.name}"),
        )


# Handler invocations and the time they took, per function: the cost model's GB-seconds.
invocations: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])


class _LogSink(io.TextIOBase):
    """Where the functions' log lines end in the bench (the stack's EMF reader in front of it
    counts them, as CloudWatch Logs would ingest them): nowhere."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


def _invoked(function: str, seconds: float) -> None:
    with _calls_lock:
        entry = invocations[function]
        entry[0] += 1
        entry[1] += seconds


def time_invocations() -> None:
    """Time every handler invocation the gateway and the pollers make, per function."""
    from local import gateway
    from local.iam import AccessChecker
    from local.poller import Poller

    invoke = gateway._invoke

    @functools.wraps(invoke)
    def timed_invoke(
        handler: Any,
        event: dict[str, Any],
        name: str,
        timeout: float,
        access: AccessChecker | None = None,
    ) -> Any:
        started = time.perf_counter()
        try:
            return invoke(handler, event, name, timeout, access)
        finally:
            _invoked(name, time.perf_counter() - started)

    gateway._invoke = timed_invoke
    poll_invoke = Poller._invoke

    @functools.wraps(poll_invoke)
    def timed_poll_invoke(self: Poller, slot: int, messages: Any, received: float) -> None:
        started = time.perf_counter()
        try:
            poll_invoke(self, slot, messages, received)
        finally:
            _invoked(self.function_name, time.perf_counter() - started)

    Poller._invoke = timed_poll_invoke  # type: ignore[method-assign]


def fresh_database(name: str) -> None:
    """Drop `name`: before a run (the stack creates it empty) and after it."""
    import psycopg
    from psycopg import sql

    from local import postgres

    # The server's maintenance database: DATABASE_URL may name the very database to drop.
    admin = psycopg.conninfo.make_conninfo(postgres.server_url(), dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _dump(path: str, stack: Any, events: str | None) -> None:
    """Write the per-order timings, calls and invocations so far to `path`; `events`: the
    workers' records (bench/worker_probe.py), merged with this process's own."""
    with _calls_lock:
        counted = dict(calls)
        invoked = {k: list(v) for k, v in invocations.items()}
    marks = {oid: dict(seen) for oid, seen in records.marks.items()}
    durations = {oid: dict(per) for oid, per in records.durations.items()}
    if events is not None:
        workers = worker_probe.read_events(events)
        for oid, seen in workers.marks.items():
            marks.setdefault(oid, {}).update(seen)
        for oid, per in workers.durations.items():
            durations.setdefault(oid, {}).update(per)
        for kind, n in workers.calls.items():
            counted[kind] = counted.get(kind, 0) + n
    logged = stack.metrics.bytes_seen() if stack.metrics else {}
    with open(path, "w") as f:
        json.dump(
            {
                "marks": marks,
                "durations": durations,
                "calls": counted,
                "invocations": invoked,
                "log_bytes": logged,
            },
            f,
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
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="every function in this process (before issue 24); default: in worker processes",
    )
    args = parser.parse_args(argv)
    workers = not args.in_process
    # Account concurrency for the run: the executors, their notify, the API functions.
    os.environ.setdefault("LOCAL_LAMBDA_CONCURRENCY", str(max(24, args.concurrency + 14)))

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    os.environ["LOCAL_EXECUTE_CONCURRENCY"] = str(args.concurrency)
    os.environ["CONFIRM_POLL_SECONDS"] = str(args.poll)
    if not workers:  # every function shares the process's pool: the executors plus the rest
        os.environ["DB_POOL_MAX"] = str(args.db_pool or args.concurrency + 10)
    # The bench's key may have every order of a run in flight at once.
    os.environ.setdefault("LOCAL_API_KEY_MAX_IN_FLIGHT", "1000000")
    # The functions log at the template's level (INFO), as in the cloud; their output is
    # counted by the stack's EMF reader (what CloudWatch Logs would ingest, for the cost model)
    # and dropped, so the pipe to the bench carries only this protocol.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    protocol = sys.stdout
    sys.stdout = _LogSink()

    from local.stack import Stack

    if args.chain:  # the seeded local chain in another process: what the engine needs for it
        from local.chain import local_env

        os.environ.update(local_env(args.chain))
    if not args.chain:  # the chain runs in this process: same blockhash lifetime as bench.aux
        from bench.aux import keep_blockhash_lifetime

        keep_blockhash_lifetime(args.tick)
    fresh_database(args.database)
    worker_probe.instrument_into(records)
    count_calls()
    time_invocations()
    events = tempfile.mkdtemp(prefix="bench-events-")
    function_env = {
        # Each worker runs bench/worker_probe.py before awslambdaric (the same instruments,
        # its records in `events`), and polls confirmations as this run asks.
        "LOCAL_LAMBDA_PRELOAD": str(Path(__file__).with_name("worker_probe.py")),
        "BENCH_EVENTS_DIR": events,
        "CONFIRM_POLL_SECONDS": str(args.poll),
    }
    stack = Stack(
        workers=workers,
        function_env=function_env,
        port=args.port,
        database=args.database,
        chain_tick_seconds=args.tick,
        aws_endpoint_url=args.sqs,
        emulator=args.emulator,
        api_key_file=None,  # the key goes to the client on stdout, not to .local-data
        # Market orders only: the watcher's ticks (bench/watching.py measures it) would take CPU
        # from the figures of this run.
        run_watcher=False,
    )
    urls = {**stack.start(), "api_key": stack.api_key}
    print("READY " + json.dumps(urls), file=protocol, flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "dump":
                _dump(args.timings, stack, events if workers else None)
                print("DUMPED", file=protocol, flush=True)
            elif command == "stop":
                break
    finally:
        stack.stop()
        shutil.rmtree(events, ignore_errors=True)
        fresh_database(args.database)  # nothing of the run is left on the server
    return 0


if __name__ == "__main__":
    sys.exit(main())
