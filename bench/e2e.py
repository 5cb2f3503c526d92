"""End-to-end runs: throughput (HTTP submit -> `confirmed` frame) and per-order engine overhead.

One stack process (`bench.serve`) per executor concurrency; this process is the client. SQS and
Secrets Manager come from LocalStack (`sqs="localstack"`, a process of its own, started here for
each run) or moto's server (`sqs="moto"`: a process of its own with `split`, else inside the stack
process), so the two can be compared on the same runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench import load
from bench.stats import percentiles
from local import localstack
from local.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class StackProcess:
    proc: subprocess.Popen[str]
    urls: dict[str, str]
    timings_file: str
    database: str
    helpers: dict[str, subprocess.Popen[str]]  # "chain", "moto": processes of bench.aux
    aws: localstack.LocalStack | None = None  # the run's LocalStack

    def command(self, line: str, expect: str) -> str:
        stdin: IO[str] | None = self.proc.stdin
        stdout: IO[str] | None = self.proc.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(line + "\n")
        stdin.flush()
        while True:
            reply = stdout.readline()
            if not reply:
                raise RuntimeError(f"the stack exited while waiting for {expect}")
            if reply.strip().startswith(expect):
                return reply.strip()[len(expect) :].strip()

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU each process has used so far (Linux /proc): the stack (gateway,
        pollers, scheduler: the services), the functions' worker processes (its children, live
        and ended), then the chain and moto when in processes of their own, and LocalStack."""
        pids = {"engine": self.proc.pid, **{n: p.pid for n, p in self.helpers.items()}}
        if self.aws is not None and self.aws.pid is not None:
            pids["localstack"] = self.aws.pid
        out = {name: _cpu(pid) for name, pid in pids.items()}
        out["functions"] = _children_cpu(self.proc.pid)
        return out

    def timings(self) -> dict[str, Any]:
        self.command("dump", "DUMPED")
        return dict(json.loads(Path(self.timings_file).read_text()))

    def stop(self) -> None:
        for proc in (self.proc, *self.helpers.values()):
            if proc.poll() is None:
                try:
                    assert proc.stdin is not None
                    if proc is self.proc:
                        proc.stdin.write("stop\n")
                    proc.stdin.close()
                    proc.wait(30)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()
                    proc.wait()
        if self.aws is not None:
            self.aws.stop()
        Path(self.timings_file).unlink(missing_ok=True)


def _stat(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu(pid: int) -> float:
    fields = _stat(pid)
    if fields is None:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu(pid: int) -> float:
    """CPU of `pid`'s children: those it has reaped (its cutime + cstime) and the live ones."""
    own = _stat(pid)
    if own is None:
        return float("nan")
    ticks = int(own[13]) + int(own[14])
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields is not None and int(fields[1]) == pid:  # field 4, ppid
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _ready(proc: subprocess.Popen[str], what: str) -> str:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} did not start (see the stack log)")
        if line.startswith("READY "):
            return line[6:].strip()


def _spawn(args: list[str], log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def start_stack(
    concurrency: int,
    tick: float,
    poll: float,
    log: IO[str],
    *,
    split: bool = True,
    sqs: str = "localstack",
) -> StackProcess:
    """The instrumented stack in its own process; SQS and Secrets Manager from `sqs`
    ("localstack": LocalStack, always a process of its own; "moto": moto's server, in a process
    of its own with `split`); with `split`, the chain in a process of its own too (bench/aux.py).
    A LocalStack that cannot start raises `LocalStackError` with its log's tail: no fallback."""
    port = free_port()
    fd, timings_file = tempfile.mkstemp(prefix="bench-timings-", suffix=".json")
    os.close(fd)
    # Per bench process: two benches on one Postgres server never drop each other's database.
    database = f"orders_bench_c{concurrency}_{os.getpid()}"
    args = [
        "bench.serve",
        f"--port={port}",
        f"--concurrency={concurrency}",
        f"--tick={tick}",
        f"--poll={poll}",
        f"--database={database}",
        f"--timings={timings_file}",
        f"--emulator={sqs}",
    ]
    helpers: dict[str, subprocess.Popen[str]] = {}
    aws: localstack.LocalStack | None = None
    try:
        if sqs == "localstack":
            aws = localstack.start()
            args.append(f"--sqs={aws.endpoint}")
        if split:
            helpers["chain"] = _spawn(["bench.aux", "chain", f"--tick={tick}"], log)
            args.append(f"--chain={_ready(helpers['chain'], 'the chain')}")
            if sqs == "moto":
                helpers["moto"] = _spawn(["bench.aux", "sqs"], log)
                args.append(f"--sqs={_ready(helpers['moto'], 'moto')}")
        proc = _spawn(args, log)
    except BaseException:
        for h in helpers.values():
            h.kill()
        if aws is not None:
            aws.stop()
        raise
    stack = StackProcess(proc, {}, timings_file, database, helpers, aws)
    try:
        stack.urls = json.loads(_ready(proc, "the bench stack"))
    except BaseException:
        stack.stop()
        raise
    return stack


def psycopg_url(server: str, database: str) -> str:
    import psycopg

    return str(psycopg.conninfo.make_conninfo(server, dbname=database))


def order_events(database: str, order_ids: list[str]) -> dict[str, dict[str, float]]:
    """`at` (epoch seconds) of each status event of the given orders, from Postgres."""
    import psycopg

    from local import postgres

    url = psycopg.conninfo.make_conninfo(postgres.server_url(), dbname=database)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT order_id::text, status, extract(epoch FROM at)::float8"
            " FROM order_events WHERE order_id = ANY(%s::uuid[])",
            (order_ids,),
        ).fetchall()
    out: dict[str, dict[str, float]] = {}
    for oid, status, at in rows:
        out.setdefault(oid, {})[status] = at
    return out


def db_counts(database: str) -> dict[str, int]:
    """Cross-check in Postgres: orders by status and events per order."""
    import psycopg

    from local import postgres

    url = psycopg.conninfo.make_conninfo(postgres.server_url(), dbname=database)
    with psycopg.connect(url) as conn:
        by_status: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall()
        )
        bad = conn.execute(
            "SELECT count(*) FROM (SELECT order_id, count(*) n, max(seq) m FROM order_events"
            " GROUP BY order_id) x WHERE n <> m"
        ).fetchone()
    return {
        **{str(k): int(v) for k, v in by_status.items()},
        "event_gaps": int(bad[0] if bad else 0),
    }


def breakdown(
    result: load.RunResult, events: dict[str, dict[str, float]], server: dict[str, Any]
) -> dict[str, Any]:
    """Per-order overhead (client submit -> confirmed frame, minus submitted->confirmed on
    chain) and where the time went, as p50/p95/p99 in milliseconds."""
    marks, durations = server["marks"], server["durations"]
    series: dict[str, list[float]] = {
        k: []
        for k in (
            "total",
            "chain",
            "overhead",
            "http_202",
            "to_queue",
            "queue_wait",
            "routing",
            "building",
            "db_write",
            "db_read",
            "publish",
            "send",
            "notify_confirmed",
        )
    }
    for oid, t in result.orders.items():
        term = t.terminal
        ev = events.get(oid, {})
        m = marks.get(oid, {})
        d = durations.get(oid, {})
        if term is None or term[0] != "confirmed" or "submitted" not in ev or "confirmed" not in ev:
            continue
        total = term[1] - t.t_submit
        chain = ev["confirmed"] - ev["submitted"]
        ms = 1000.0
        series["total"].append(total * ms)
        series["chain"].append(chain * ms)
        series["overhead"].append((total - chain) * ms)
        series["http_202"].append((t.t_accepted - t.t_submit) * ms)
        if "enqueued" in m:
            series["to_queue"].append((m["enqueued"] - t.t_submit) * ms)
        if "enqueued" in m and "exec_start" in m:
            series["queue_wait"].append((m["exec_start"] - m["enqueued"]) * ms)
        for phase in ("routing", "building", "db_write", "db_read", "publish", "send"):
            series[phase].append(d.get(phase, 0.0) * ms)
        series["notify_confirmed"].append((term[1] - ev["confirmed"]) * ms)
    return {k: percentiles(v) for k, v in series.items()}


def calls_per_order(before: dict[str, int], after: dict[str, int], orders: int) -> dict[str, float]:
    """Calls the engine made per order during a run, by kind, and the totals per service."""
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    per = {k: v / max(orders, 1) for k, v in sorted(delta.items()) if v}
    for service in ("sqs", "postgres", "rpc"):
        per[f"{service} (all)"] = sum(v for k, v in per.items() if k.split(":")[0] == service)
    return per


def functions_per_order(
    before: dict[str, Any], after: dict[str, Any], orders: int
) -> dict[str, Any]:
    """Per order during a run: each function's invocations and their billed milliseconds, and
    the bytes of log and EMF lines the functions wrote (what CloudWatch Logs would ingest)."""
    n = max(orders, 1)
    invocations = {}
    for name, (count, seconds) in after.get("invocations", {}).items():
        count0, seconds0 = before.get("invocations", {}).get(name, (0, 0.0))
        if count - count0:
            invocations[name] = {
                "invocations": (count - count0) / n,
                "ms": 1000 * (seconds - seconds0) / n,
            }
    logged = {
        kind: (after.get("log_bytes", {}).get(kind, 0) - before.get("log_bytes", {}).get(kind, 0))
        / n
        for kind in ("log", "emf")
    }
    return {"functions": invocations, "log_bytes": logged}


def ideal(run: dict[str, Any]) -> dict[str, float]:
    """The throughput this machine could reach at this concurrency: the lower of
    `concurrency / one order's latency` (submit -> confirmed frame, alone: the overhead run's
    p50) and `cores / CPU one order costs across every process` (engine and emulators, measured
    in the burst)."""
    cores = os.cpu_count() or 1
    cpu_seconds = sum(run["cpu_ms_per_order"].values()) / 1000
    by_cpu = cores / cpu_seconds if cpu_seconds > 0 else math.inf
    latency = run.get("overhead", {}).get("total", {}).get("p50", math.nan) / 1000
    by_latency = run["concurrency"] / latency if latency > 0 else math.inf
    best = min(by_cpu, by_latency)
    measured = run["throughput"]["orders_per_second"]
    return {
        "cores": cores,
        "cpu_ms_per_order": cpu_seconds * 1000,
        "by_cpu": by_cpu,
        "latency_ms": latency * 1000,
        "by_latency": by_latency,
        "orders_per_second": best,
        "ratio": measured / best if best and math.isfinite(best) else math.nan,
    }


def share_single_order_latency(runs: list[dict[str, Any]]) -> None:
    """One order's latency alone is measured once (the first run's overhead samples); the
    other concurrencies' ideals use it too."""
    measured = next((r["overhead"] for r in runs if r.get("overhead")), None)
    if measured is None:
        return
    for r in runs:
        if not r.get("overhead"):
            r["ideal"] = ideal({**r, "overhead": measured})


def run_concurrency(
    concurrency: int,
    *,
    orders: int,
    overhead_samples: int,
    tick: float,
    poll: float,
    in_flight: int,
    connections: int,
    log: IO[str],
    split: bool = True,
    sqs: str = "localstack",
    timeout: float = 300.0,
) -> dict[str, Any]:
    """`timeout`: how long a run waits for its last order's terminal frame (one order of the
    sequential overhead run waits a tenth of it) before counting what is missing as lost."""
    stack = start_stack(concurrency, tick, poll, log, split=split, sqs=sqs)
    base = stack.urls["http"]
    key = stack.urls["api_key"]
    out: dict[str, Any] = {"concurrency": concurrency, "sqs": sqs}
    try:
        # Warm every execute container (one per concurrency slot) and the notify pollers.
        warm = asyncio.run(
            load.run(
                base,
                concurrency * 3,
                api_key=key,
                in_flight=concurrency,
                connections=4,
                timeout=timeout,
            )
        )
        out["warmup_check"] = warm.check()
        if overhead_samples:
            alone_before = stack.timings()
            seq = asyncio.run(
                load.run(
                    base,
                    overhead_samples,
                    api_key=key,
                    in_flight=1,
                    connections=1,
                    sequential=True,
                    timeout=timeout,
                )
            )
            events = order_events(stack.database, list(seq.orders))
            alone_after = stack.timings()
            out["overhead"] = breakdown(seq, events, alone_after)
            out["overhead_check"] = seq.check()
            # Each invocation alone, as a Lambda environment runs it (in a burst they share
            # this machine's cores, and their wall time is partly waiting).
            out["functions_alone"] = functions_per_order(alone_before, alone_after, len(seq.orders))
            # The floor: the round trips one order cannot avoid, each timed bare now.
            from bench import floor
            from local import postgres

            out["calls_alone"] = calls_per_order(
                alone_before["calls"], alone_after["calls"], len(seq.orders)
            )
            database_url = psycopg_url(postgres.server_url(), stack.database)
            out["bare_ms"] = floor.measure(
                database_url, stack.urls["sqs"], stack.urls["solana_rpc"]
            )
            out["floor_ms"] = floor.floor(
                out["bare_ms"], out["calls_alone"], out["functions_alone"]
            )
        cpu_before = stack.cpu_seconds()
        before = stack.timings()
        calls_before = before["calls"]
        burst = asyncio.run(
            load.run(
                base,
                orders,
                api_key=key,
                in_flight=in_flight,
                connections=connections,
                timeout=timeout,
            )
        )
        cpu_after = stack.cpu_seconds()
        out["throughput"] = load.summary(burst)
        span = out["throughput"]["seconds"] or 1.0
        out["cpu"] = {  # cores busy on average during the burst, per process
            name: (cpu_after[name] - cpu_before[name]) / span for name in cpu_before
        }
        out["cpu_ms_per_order"] = {
            name: 1000 * (cpu_after[name] - cpu_before[name]) / max(len(burst.orders), 1)
            for name in cpu_before
        }
        events = order_events(stack.database, list(burst.orders))
        timings = stack.timings()
        out["under_load"] = breakdown(burst, events, timings)
        out["calls_per_order"] = calls_per_order(calls_before, timings["calls"], len(burst.orders))
        out["ideal"] = ideal(out)
        out["functions_per_order"] = functions_per_order(before, timings, len(burst.orders))
        out["db"] = db_counts(stack.database)
    finally:
        stack.stop()
    return out
