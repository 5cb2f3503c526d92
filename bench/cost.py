"""What an order costs in AWS, and what the stack costs at rest: one cost model for the project.

    python -m bench.cost                      # from the defaults below
    python -m bench.cost --from out.json      # from a bench run (`python -m bench --json out.json`)

Per order, from what a bench run measured on the local stack (the same handlers, the same calls):
each function's invocations and billed milliseconds, the SQS and WebSocket-API calls, the bytes
the functions log; plus the one thing the local chain cannot stand for, the time a transaction
takes to confirm on a real cluster, which the execute function spends waiting (`--land-seconds`,
default 1.2 s: about three slots to `confirmed`). Memory sizes come from template.yaml. At rest
(per month, no orders): the database, its proxy, the NAT gateway, the queues' idle polling, the
secrets, custom metrics, alarms, the dashboard, and the watcher (it ticks whether or not any
order is watching: most of every minute of compute, at its template memory).

Prices: us-east-1, on-demand, without the free tiers (PRICES cites each page).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.template import load_template, resolve, resource

HOURS_PER_MONTH = 730
# Checked with `pip download --platform ... --only-binary=:all:` against PyPI (2026-11-30).
ARM64_NOTE = (
    "not on python3.11: that runtime is Amazon Linux 2 (glibc 2.26), and solders 0.29 and"
    " psycopg-binary 3.3 publish aarch64 wheels only for glibc 2.28 (python3.12+ runs on"
    " Amazon Linux 2023)"
)
DEFAULT_LAND_SECONDS = 1.2
# us-east-1 on-demand list prices, from the AWS pricing pages named beside each (as published
# in 2025-2026; this machine cannot reach them, so re-check with the AWS Pricing Calculator).
PRICES: dict[str, tuple[float, str]] = {
    "lambda_gb_second_x86": (0.0000166667, "aws.amazon.com/lambda/pricing (first 6B GB-s)"),
    "lambda_gb_second_arm": (0.0000133334, "aws.amazon.com/lambda/pricing (first 7.5B GB-s)"),
    "lambda_request": (0.20 / 1e6, "aws.amazon.com/lambda/pricing"),
    "sqs_request": (0.40 / 1e6, "aws.amazon.com/sqs/pricing (standard queue, 64 KB chunk)"),
    "http_api_request": (1.00 / 1e6, "aws.amazon.com/api-gateway/pricing (HTTP API, first 300M)"),
    "ws_message": (1.00 / 1e6, "aws.amazon.com/api-gateway/pricing (WebSocket, 32 KB units)"),
    "ws_connection_minute": (0.25 / 1e6, "aws.amazon.com/api-gateway/pricing"),
    "logs_ingest_gb": (0.50, "aws.amazon.com/cloudwatch/pricing (Logs, standard ingestion)"),
    "xray_trace": (5.00 / 1e6, "aws.amazon.com/xray/pricing (traces recorded)"),
    "custom_metric_month": (0.30, "aws.amazon.com/cloudwatch/pricing (first 10k metrics)"),
    "alarm_month": (0.10, "aws.amazon.com/cloudwatch/pricing (standard resolution, per metric)"),
    "dashboard_month": (3.00, "aws.amazon.com/cloudwatch/pricing (beyond 3 free dashboards)"),
    "secret_month": (0.40, "aws.amazon.com/secrets-manager/pricing"),
    "secrets_call": (0.05 / 10_000, "aws.amazon.com/secrets-manager/pricing"),
    "rds_t4g_micro_hour": (0.016, "aws.amazon.com/rds/postgresql/pricing (db.t4g.micro, 1-AZ)"),
    "rds_gp3_gb_month": (0.115, "aws.amazon.com/rds/postgresql/pricing (gp3 storage)"),
    "rds_proxy_vcpu_hour": (0.015, "aws.amazon.com/rds/proxy/pricing (min. 2 vCPUs)"),
    "nat_gateway_hour": (0.045, "aws.amazon.com/vpc/pricing (NAT gateway)"),
    "nat_gateway_gb": (0.045, "aws.amazon.com/vpc/pricing (NAT gateway data processed)"),
}
# What a run of `python -m bench` measured per order on the local stack (2026-11-30, 2 cores,
# LocalStack's SQS; see bench/README.md), used when no `--from` file is given.
DEFAULT_MEASURED: dict[str, Any] = {
    "functions": {
        "submit": {"invocations": 1.0, "ms": 9.0},
        "ws_connect": {"invocations": 1.0, "ms": 6.0},
        "execute": {"invocations": 1.0, "ms": 60.0},
        "notify": {"invocations": 2.5, "ms": 15.0},
        "authorizer": {"invocations": 0.05, "ms": 0.3},
    },
    "log_bytes": {"log": 1500.0, "emf": 900.0},
    "calls": {"sqs (all)": 8.0, "wsapi:PostToConnection": 5.0},
}
# Per order, what the local bench does not do the way a user does: the HTTP submit is one API
# request, the client's WebSocket subscribe is one message in, and a client keeps its socket for
# about a minute per order (connection minutes are billed per started minute).
HTTP_REQUESTS_PER_ORDER = 1.0
WS_MESSAGES_IN_PER_ORDER = 1.0
WS_CONNECTION_MINUTES_PER_ORDER = 1.0
# Data the execute function sends through the NAT gateway per order (RPC requests and replies).
NAT_BYTES_PER_ORDER = 30_000
# A traced invocation is one trace (each SQS-triggered invocation starts its own); at these
# rates X-Ray's default sampling (1/s reservoir + 5 %) records nearly every one.
TRACED_SHARE = 1.0
# At rest: the queues' event source mappings long-poll even when idle (5 pollers, a 20 s poll),
# and the custom metrics, alarms and secrets the stack declares.
IDLE_POLLS_PER_MAPPING_MONTH = 5 * 3 * 60 * HOURS_PER_MONTH
EVENT_SOURCE_MAPPINGS = 3  # orders, orders DLQ, status events
CUSTOM_METRICS = 30  # ~12 names x service, failure codes, skip reasons
DB_STORAGE_GB = 20


@dataclass(frozen=True)
class Line:
    item: str
    per_order: float  # USD
    cut: str  # what would make it smaller


def memory_gb(function: str, template: dict[str, Any]) -> float:
    """The function's MemorySize from the template (its own, else the Globals')."""
    from local.template import function_id

    props = resource(function_id(function, template), template).get("Properties", {})
    size = props.get("MemorySize", template["Globals"]["Function"].get("MemorySize", 128))
    return float(resolve(size, template)) / 1024


def per_order(measured: dict[str, Any], land_seconds: float, arm: bool = False) -> list[Line]:
    """The variable cost of one order, line by line."""
    template = load_template()
    price = {k: v for k, (v, _) in PRICES.items()}
    gb_second = price["lambda_gb_second_arm" if arm else "lambda_gb_second_x86"]
    functions = measured["functions"]
    lines: list[Line] = []
    invocations = 0.0
    for name, f in sorted(functions.items()):
        seconds = f["ms"] / 1000 + (land_seconds if name == "execute" else 0.0)
        lines.append(
            Line(
                f"Lambda {name}: {f['invocations']:.2f} invocations, "
                f"{seconds * 1000:.0f} ms at {memory_gb(name, template) * 1024:.0f} MB",
                seconds * memory_gb(name, template) * gb_second,
                "less memory (it waits on the chain); arm64 after a python3.12 move (ARM64_NOTE)"
                if name == "execute"
                else "arm64 after a python3.12 move (ARM64_NOTE)",
            )
        )
        invocations += f["invocations"]
    lines.append(
        Line(f"Lambda requests ({invocations:.2f})", invocations * price["lambda_request"], "")
    )
    calls = measured.get("calls", {})
    sqs = calls.get("sqs (all)", 0.0)
    lines.append(
        Line(
            f"SQS requests ({sqs:.1f})",
            sqs * price["sqs_request"],
            "fewer status triggers (coalesced already), batch size > 1 for notify",
        )
    )
    lines.append(Line("HTTP API request", HTTP_REQUESTS_PER_ORDER * price["http_api_request"], ""))
    posted = calls.get("wsapi:PostToConnection", 5.0)
    messages = posted + WS_MESSAGES_IN_PER_ORDER
    lines.append(
        Line(
            f"WebSocket messages ({messages:.1f}) and connection minutes",
            messages * price["ws_message"]
            + WS_CONNECTION_MINUTES_PER_ORDER * price["ws_connection_minute"],
            "clients that follow many orders on one socket",
        )
    )
    logged = sum(measured.get("log_bytes", {}).values())
    lines.append(
        Line(
            f"CloudWatch Logs ({logged / 1000:.1f} kB logs and EMF)",
            logged / 1e9 * price["logs_ingest_gb"],
            "LogLevel WARNING; a shorter retention does not cut ingestion",
        )
    )
    lines.append(
        Line(
            f"X-Ray ({invocations * TRACED_SHARE:.2f} traces)",
            invocations * TRACED_SHARE * price["xray_trace"],
            "a sampling rule (e.g. 1 %) instead of the default",
        )
    )
    lines.append(
        Line(
            "NAT gateway data (RPC traffic)",
            NAT_BYTES_PER_ORDER / 1e9 * price["nat_gateway_gb"],
            "",
        )
    )
    return lines


def at_rest() -> list[tuple[str, float, str]]:
    """Per month with no orders: (item, USD, what would cut it)."""
    price = {k: v for k, (v, _) in PRICES.items()}
    template = load_template()
    kinds = [r.get("Type") for r in template["Resources"].values()]
    alarms = kinds.count("AWS::CloudWatch::Alarm")
    # The template's secrets (wallet, first API key, a login per function role) and the
    # database master secret RDS keeps (ManageMasterUserPassword).
    secrets = kinds.count("AWS::SecretsManager::Secret") + 1
    return [
        watcher_at_rest(template),
        (
            "NAT gateway (one, in one AZ)",
            price["nat_gateway_hour"] * HOURS_PER_MONTH,
            "a NAT instance (e.g. t4g.nano) or IPv6 egress; VPC endpoints cannot replace it "
            "(the WebSocket API and the Solana RPC are public)",
        ),
        (
            "RDS Proxy (2 vCPUs minimum)",
            price["rds_proxy_vcpu_hour"] * 2 * HOURS_PER_MONTH,
            "drop the proxy at low volume (few containers) and cap DB_POOL_MAX",
        ),
        (
            "RDS db.t4g.micro + 20 GB gp3",
            price["rds_t4g_micro_hour"] * HOURS_PER_MONTH
            + DB_STORAGE_GB * price["rds_gp3_gb_month"],
            "reserved instance (1 year)",
        ),
        ("custom metrics (~30)", CUSTOM_METRICS * price["custom_metric_month"], "fewer dimensions"),
        ("CloudWatch dashboard", price["dashboard_month"], "free within an account's first 3"),
        (f"CloudWatch alarms ({alarms})", alarms * price["alarm_month"], ""),
        (
            f"secrets ({secrets}: wallet, first API key, database logins)",
            secrets * price["secret_month"],
            "",
        ),
        (
            "idle SQS polling (3 event source mappings)",
            EVENT_SOURCE_MAPPINGS * IDLE_POLLS_PER_MAPPING_MONTH * price["sqs_request"],
            "",
        ),
    ]


def watcher_at_rest(template: dict[str, Any]) -> tuple[str, float, str]:
    """The watch function: invoked every minute, it ticks until a few seconds before its
    timeout, whether or not anything is watching."""
    from execution.watcher import STOP_BEFORE_TIMEOUT_SECONDS
    from local.template import function_timeout

    price = {k: v for k, (v, _) in PRICES.items()}
    seconds = function_timeout("watch", template) - STOP_BEFORE_TIMEOUT_SECONDS
    invocations = 60 * HOURS_PER_MONTH
    gb = memory_gb("watch", template)
    usd = invocations * (seconds * gb * price["lambda_gb_second_x86"] + price["lambda_request"])
    return (
        f"the watcher ({seconds:.0f} s of every minute at {gb * 1024:.0f} MB)",
        usd,
        "WatchStopWhenIdle=true (at rest: one tick a minute; a new order may wait a minute"
        " for its first look); arm64 (-20 %) after a python3.12 move (ARM64_NOTE)",
    )


def report(measured: dict[str, Any], land_seconds: float) -> str:
    lines = per_order(measured, land_seconds)
    total = sum(line.per_order for line in lines)
    arm_total = sum(line.per_order for line in per_order(measured, land_seconds, arm=True))
    width = max(len(line.item) for line in lines)
    out = [
        f"Per order (execute waits {land_seconds:.1f} s for the chain):",
        f"  {'item'.ljust(width)}  per 1,000  per 1,000,000",
    ]
    for line in sorted(lines, key=lambda x: -x.per_order):
        usd = line.per_order
        out.append(f"  {line.item.ljust(width)}  ${usd * 1e3:8.4f}  ${usd * 1e6:10.2f}")
    out.append(f"  {'total'.ljust(width)}  ${total * 1e3:8.4f}  ${total * 1e6:10.2f}")
    biggest = max(lines, key=lambda x: x.per_order)
    out.append(
        f"  largest: {biggest.item} ({biggest.per_order / total:.0%}); cut: {biggest.cut}."
        f" With arm64 functions: ${arm_total * 1e6:.2f} per 1,000,000 (ARM64_NOTE)."
        f"\n  ARM64_NOTE: {ARM64_NOTE}"
    )
    rest = at_rest()
    rest_total = sum(usd for _, usd, _ in rest)
    out.append("At rest, per month (no orders):")
    for item, usd, _ in sorted(rest, key=lambda r: -r[1]):
        out.append(f"  {item.ljust(48)} ${usd:8.2f}")
    out.append(f"  {'total'.ljust(48)} ${rest_total:8.2f}")
    top = max(rest, key=lambda r: r[1])
    out.append(f"  largest: {top[0]}; cut: {top[2]}.")
    return "\n".join(out)


def measured_from(run: dict[str, Any]) -> dict[str, Any]:
    """The per-order figures of a bench run (its first end-to-end run): invocations, calls and
    log bytes per order from its burst (batching as at volume); each invocation's duration from
    its one-at-a-time run, where a handler runs alone as in its own Lambda container (in the
    burst every handler shares the stack's one interpreter, and its wall time is mostly waiting
    for it: a cost model fed with that would bill the GIL). The execute function's wait for the
    local chain to confirm is left out: the model adds a real cluster's (`land_seconds`)."""
    first = run["e2e"][0]
    burst = first["functions_per_order"]
    alone = first.get("functions_alone", {}).get("functions", {})
    local_chain_ms = first.get("overhead", {}).get("chain", {}).get("p50", 0.0)
    functions = {}
    for name, f in burst["functions"].items():
        single = alone.get(name)
        ms = f["ms"]
        if single and single["invocations"]:
            each = single["ms"] / single["invocations"]
            if name == "execute":
                each = max(each - local_chain_ms, 0.0)
            ms = f["invocations"] * each
        functions[name] = {"invocations": f["invocations"], "ms": ms}
    return {**burst, "functions": functions, "calls": first["calls_per_order"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("--from", dest="source", help="a bench run's --json file")
    parser.add_argument("--land-seconds", type=float, default=DEFAULT_LAND_SECONDS)
    args = parser.parse_args(argv)
    measured = (
        measured_from(json.loads(Path(args.source).read_text()))
        if args.source
        else DEFAULT_MEASURED
    )
    print(report(measured, args.land_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
