"""`python -m bench` (`make bench`): measure, then print one table.

python -m bench                      # 1,000 orders at concurrency 10, 20, 40; the watcher
python -m bench --quick              # 200 orders at 10 and 20, fewer samples
python -m bench --orders 500 --concurrency 10,40 --json out.json
python -m bench --sqs moto           # SQS and Secrets Manager on moto's server, for comparison
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED_TARGET_PER_MINUTE = 100  # the original engine: 100 orders/minute with 10 concurrent
# The targets (issue "Benchmarks that run, an engine that adds little to the chain"): what the
# engine adds to one order, and how close a burst comes to what this machine allows.
OVERHEAD_FLOOR_RATIO = 2.0  # at most 2x the round trips an order cannot avoid (bench/floor.py)
IDEAL_RATIO = 0.8
IMPORT_RATIO = 1.2  # a function's import at most 1.2x the third-party libraries' it needs
MB = 1_000_000


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f} ms"


def _size(n: int) -> str:
    return f"{n / MB:.2f} MB" if n >= MB / 10 else f"{n / 1000:.1f} kB"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _lost(figures: dict[str, Any]) -> str:
    """The last statuses of lost orders, e.g. " (last seen: pending 31)"."""
    last = figures.get("lost_last_status") or {}
    if not last:
        return ""
    return " (last seen: " + ", ".join(f"{k} {v}" for k, v in sorted(last.items())) + ")"


def layout(sqs: str, *, split: bool) -> str:
    """Where SQS, Secrets Manager and the chain ran, for the settings line."""
    emulator = {"localstack": "LocalStack", "moto": "moto's server"}[sqs]
    if split:
        return f"SQS and Secrets Manager on {emulator}, it and the chain in own processes"
    if sqs == "localstack":
        return "SQS and Secrets Manager on LocalStack (own process), chain in the stack process"
    return "SQS and Secrets Manager on moto's server and the chain in the stack process"


def smoke_failures(results: dict[str, Any]) -> list[str]:
    """What makes a smoke run fail: any order lost, duplicated or not confirmed; a watched order
    the watcher did not price, or one it triggered that it should not have."""
    problems: list[str] = []
    priced = (results.get("watching") or {}).get("priced") or {}
    for book in ("waiting", "at_the_money", "with_snipers"):
        figures = priced.get(book)
        expected = priced.get("orders", 0) + (figures or {}).get("snipers", 0)
        if figures and (figures["priced"] != expected or figures["triggered"]):
            problems.append(
                f"watcher, {book}: priced {figures['priced']}/{expected},"
                f" triggered {figures['triggered']} (none may)"
            )
    for run in results.get("e2e", []):
        for name in ("warmup_check", "overhead_check", "throughput"):
            figures = run.get(name)
            if not figures:
                continue
            if figures.get("lost"):
                problems.append(f"{name}: {figures['lost']} lost{_lost(figures)}")
            if figures.get("duplicated"):
                problems.append(f"{name}: {figures['duplicated']} duplicated frames")
        t = run["throughput"]
        if t["confirmed"] != t["submitted"] or t["submit_errors"]:
            problems.append(
                f"throughput: {t['confirmed']}/{t['submitted']} confirmed,"
                f" {t['submit_errors']} submit errors"
            )
    return problems


def smoke_report(results: dict[str, Any]) -> int:
    """Print the smoke run's line per concurrency and what failed; the exit status."""
    problems = smoke_failures(results)
    priced = (results.get("watching") or {}).get("priced")
    if priced:
        for book in ("waiting", "at_the_money"):
            f = priced[book]
            print(
                f"smoke, watcher ({book}): {f['priced']}/{priced['orders']} orders priced per"
                f" tick, engine p50 {f['engine_ms']['p50']:.1f} ms, {f['quotes_per_tick']} exact"
                f" quotes, triggered {f['triggered']}"
            )
        sniping = priced.get("with_snipers")
        if sniping:
            print(
                f"smoke, watcher (waiting + {sniping['snipers']} sniper orders on as many"
                f" pairs): {sniping['priced']} priced per tick, tick p50"
                f" {sniping['tick_ms']['p50']:.1f} ms (RPC {sniping['rpc_ms']['p50']:.1f} ms),"
                f" triggered {sniping['triggered']}"
            )
    for run in results.get("e2e", []):
        t = run["throughput"]
        print(
            f"smoke on {run.get('sqs', 'localstack')}, concurrency {run['concurrency']}:"
            f" {t['confirmed']}/{t['submitted']}"
            f" confirmed, {t['orders_per_second']:.1f} orders/s, lost {t['lost']}"
            f"{_lost(t)}, dup frames {t['duplicated']}"
        )
    for problem in problems:
        print(f"SMOKE FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _throughput_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The burst at one concurrency: throughput against the machine's ideal, and the calls one
    order costs."""
    t = r["throughput"]
    cpu_text = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu"].items())
    ideal = r["ideal"]
    whole = t["lost"] == 0 and t["duplicated"] == 0 and t["confirmed"] == t["submitted"]
    ok = whole and ideal["ratio"] >= IDEAL_RATIO
    calls = r["calls_per_order"]
    # What bounds the ideal, by measurement: one order's latency at this concurrency, or the
    # CPU an order costs across every process (the busiest named).
    busiest = max(r["cpu_ms_per_order"].items(), key=lambda kv: kv[1] if kv[1] == kv[1] else 0)
    if ideal["by_cpu"] <= ideal["by_latency"]:
        bound = (
            f"CPU: {ideal['cores']} cores / {ideal['cpu_ms_per_order']:.1f} ms per order; "
            f"most in {busiest[0]} ({busiest[1]:.1f} ms)"
        )
    else:
        bound = (
            f"latency: {r['concurrency']} in flight / {ideal['latency_ms']:.0f} ms per order "
            f"(CPU would allow {ideal['by_cpu']:.1f}/s)"
        )
    return [
        (
            f"throughput, SQS concurrency {r['concurrency']}",
            f"{t['orders_per_second']:.1f} orders/s = {ideal['ratio']:.0%} of the ideal "
            f"{ideal['orders_per_second']:.1f}/s ({t['confirmed']}/{t['submitted']} confirmed in "
            f"{t['seconds']:.1f} s; failed {t['failed']}, lost {t['lost']}{_lost(t)}, dup "
            f"frames {t['duplicated']}; cores busy: {cpu_text})",
            f">= {IDEAL_RATIO:.0%} of the ideal, all confirmed, 0 lost, 0 dup",
            _met(ok),
        ),
        (
            "  ideal = min(concurrency / one order's latency, cores / CPU per order)",
            f"min({r['concurrency']} / {ideal['latency_ms']:.0f} ms = "
            f"{ideal['by_latency']:.1f}/s, {ideal['cores']} / {ideal['cpu_ms_per_order']:.1f} ms"
            f" = {ideal['by_cpu']:.1f}/s)",
            "",
            "",
        ),
        ("  what bounds the ideal (measured)", bound, "", ""),
        (
            "  calls per order (SQS, Postgres, RPC)",
            f"SQS {calls.get('sqs (all)', 0):.1f}, Postgres {calls.get('postgres (all)', 0):.1f},"
            f" RPC {calls.get('rpc (all)', 0):.1f}: "
            + ", ".join(
                f"{k} {v:.2f}" for k, v in calls.items() if "(all)" not in k and k != "postgres"
            ),
            "",
            "",
        ),
    ]


STAGES = (  # the overhead's stages (bench/e2e.py's breakdown), for naming the largest
    "http_202", "to_queue", "queue_wait", "routing", "building", "db_write", "db_read",
    "publish", "send", "notify_confirmed",
)  # fmt: skip


def _overhead_rows(run: dict[str, Any], o: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """The engine's overhead per order against its floor: the round trips it cannot avoid
    (bench/floor.py), each timed bare in this run; and the stage that holds the difference."""
    floor = run.get("floor_ms")
    if not floor:
        return [
            (
                f"engine overhead/order (one at a time, n={int(o['n'])})",
                f"p50 {_ms(o['p50'])}, p95 {_ms(o['p95'])}, p99 {_ms(o['p99'])}",
                "",
                "",
            )
        ]
    bare = run["bare_ms"]
    ratio = o["p50"] / floor["total"] if floor["total"] else math.nan
    stages = run["overhead"]
    largest = max(
        STAGES, key=lambda k: stages[k]["p50"] if stages[k]["p50"] == stages[k]["p50"] else 0
    )
    return [
        (
            f"engine overhead/order (one at a time, n={int(o['n'])})",
            f"p50 {_ms(o['p50'])} = {ratio:.1f}x its floor {_ms(floor['total'])}"
            f" (p95 {_ms(o['p95'])}, p99 {_ms(o['p99'])})",
            f"p50 <= {OVERHEAD_FLOOR_RATIO:g}x the floor",
            _met(ratio <= OVERHEAD_FLOOR_RATIO),
        ),
        (
            "  floor = its round trips, each timed bare",
            f"Postgres {_ms(floor['postgres'])} ({bare['postgres']:.2f} ms each), SQS"
            f" {_ms(floor['sqs'])} (send {bare['sqs_send']:.2f}, receive"
            f" {bare['sqs_receive']:.2f}, delete {bare['sqs_delete']:.2f} ms), RPC"
            f" {_ms(floor['rpc'])} ({bare['rpc']:.2f} ms each), invoke hops"
            f" {_ms(floor['invoke'])} ({bare['invoke']:.2f} ms each, an empty handler)",
            "",
            "",
        ),
        (
            "  the stage holding the difference",
            f"{largest}: p50 {_ms(stages[largest]['p50'])} of the"
            f" {_ms(o['p50'] - floor['total'])} above the floor",
            "",
            "",
        ),
    ]


def _bundle_rows(sizes: dict[str, dict[str, int]]) -> list[tuple[str, str, str, str]]:
    """Each deploy bundle against Lambda's quotas: 50 MB zipped per upload, 250 MB unzipped for
    a function and its layers together (execute carries both layers: the largest)."""
    rows = [
        (
            f"bundle {name} (zipped)",
            f"{_size(size['zipped'])} ({_size(size['unzipped'])} unzipped)",
            "<= 50 MB (Lambda's upload limit)",
            _met(size["zipped"] <= 50 * MB),
        )
        for name, size in sizes.items()
    ]
    parts = ("execute", "common layer", "solana layer")
    if all(p in sizes for p in parts):
        total = sum(sizes[p]["unzipped"] for p in parts)
        rows.append(
            (
                "execute with both layers (unzipped)",
                _size(total),
                "<= 250 MB (Lambda's quota)",
                _met(total <= 250 * MB),
            )
        )
    return rows


def _watching_rows(w: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The watcher: orders priced per tick (engine time; Postgres beside), trigger latency."""
    from bench.watching import TARGET_ENGINE_MS, TARGET_ORDERS

    priced = w["priced"]
    n = priced["orders"]
    target = f"{TARGET_ORDERS:,} within {TARGET_ENGINE_MS:.0f} ms engine time"
    rows = []
    snipers = priced.get("snipers", 0)
    for book, label in (
        ("waiting", f"watched orders priced per tick ({n:,} limit orders, 1-10 % off)"),
        ("at_the_money", "  same, every order quoted exactly (limits within the fees)"),
        ("with_snipers", f"  the waiting book with {snipers:,} sniper orders on {snipers:,} pairs"),
    ):
        if book not in priced:
            continue
        f = priced[book]
        engine = f["engine_ms"]
        rows.append(
            (
                label,
                f"engine p50 {_ms(engine['p50'])}, max {_ms(engine['p99'])} ({f['priced']:,} "
                f"priced, {f['quotes_per_tick']:,} exact quotes, {f['accounts_read']} accounts "
                f"read); Postgres load beside it: p50 {_ms(f['postgres_ms']['p50'])}; whole tick"
                f" p50 {_ms(f['tick_ms']['p50'])} (RPC {_ms(f['rpc_ms']['p50'])})",
                target,
                _met(
                    n >= TARGET_ORDERS
                    and f["priced"] == n + f.get("snipers", 0)
                    and engine["p99"] <= TARGET_ENGINE_MS
                ),
            )
        )
    trigger = w.get("trigger")
    if trigger:
        ms = trigger["ms"]
        rows.append(
            (
                f"trigger latency (limit met on chain -> submitted, n={int(ms['n'])})",
                f"p50 {_ms(ms['p50'])}, p95 {_ms(ms['p95'])} (watcher tick "
                f"{trigger['tick_seconds']:g} s; missed {trigger['missed']})",
                "",
                "",
            )
        )
    return rows


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    runs = results["e2e"]
    best = max(runs, key=lambda r: r["throughput"]["orders_per_second"])
    for r in runs:
        rows += _throughput_rows(r)
    c10 = next((r for r in runs if r["concurrency"] == 10), runs[0])
    ours_per_min = c10["throughput"]["orders_per_second"] * 60
    rows.append(
        (
            f"vs the seed engine (c={c10['concurrency']})",
            f"{ours_per_min:.0f} orders/min vs {SEED_TARGET_PER_MINUTE}/min = "
            f"{ours_per_min / SEED_TARGET_PER_MINUTE:.1f}x",
            "(reference)",
            "",
        )
    )
    rows.append(
        (
            "best concurrency",
            f"{best['concurrency']} ({best['throughput']['orders_per_second']:.1f} orders/s)",
            "",
            "",
        )
    )
    ov = c10.get("overhead")
    if ov:
        o = ov["overhead"]
        rows += _overhead_rows(c10, o)
        for key, label in (
            ("total", "  submit -> confirmed frame (all)"),
            ("chain", "  excluded: chain (submitted->confirmed)"),
            ("http_202", "  HTTP submit -> 202"),
            ("to_queue", "  submit -> enqueued"),
            ("queue_wait", "  queue wait (enqueued -> executor)"),
            ("routing", "  routing (quote all venues)"),
            ("building", "  building (simulate, sign)"),
            ("db_write", "  DB writes (4 transitions)"),
            ("db_read", "  DB reads (executor get_order)"),
            ("publish", "  publish (status msgs to SQS)"),
            ("send", "  sendTransaction (preflight)"),
            ("notify_confirmed", "  notify (confirmed commit -> frame)"),
        ):
            s = ov[key]
            rows.append((label, f"p50 {_ms(s['p50'])}, p99 {_ms(s['p99'])}", "", ""))
    q = results["quoting"]
    warm = q["in_process"]["warm"]
    rows.append(
        (
            f"quote all venues ({q['in_process']['venues']} venues, warm)",
            f"{warm['requests_per_quote']:.0f} RPC round trip ({', '.join(warm['methods'])}); "
            f"p50 {_ms(warm['ms']['p50'])} in-process, "
            f"{_ms(q['loopback']['warm']['ms']['p50'])} over loopback",
            "1 round trip",
            _met(
                warm["requests_per_quote"] == 1 and list(warm["methods"]) == ["getMultipleAccounts"]
            ),
        )
    )
    cold = q["in_process"]["cold"]
    rows.append(("  first quote in a container", f"{cold['requests']} round trips", "", ""))
    from bench import landing

    rows += landing.rows(results["landing"])
    if results.get("splitting"):
        from bench import splitting

        rows += splitting.rows(results["splitting"])
    if results.get("watching"):
        rows += _watching_rows(results["watching"])
    imports = results["imports"]
    for name in ("submit", "ws_connect", "execute", "notify", "authorizer"):
        i = imports[name]
        ratio = i["ms"] / i["third_party_ms"] if i.get("third_party_ms") else math.nan
        rows.append(
            (
                f"import {name}/app.py (fresh interpreter)",
                f"{i['ms']:.0f} ms = {ratio:.2f}x its third-party libraries'"
                f" {i.get('third_party_ms', math.nan):.0f} ms ({i.get('third_party_modules', '?')}"
                f" modules of {i.get('third_party', '')}); init I/O apart:"
                f" {i.get('init_io_ms', math.nan):.0f} ms (the CA bundle its HTTPS client reads)",
                f"<= {IMPORT_RATIO:g}x",
                _met(ratio <= IMPORT_RATIO),
            )
        )
    bundles = results["bundles"]
    rows += _bundle_rows(bundles["sizes"])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("figure", "measured", "target", "met?")
    lines = [
        f"bench {results['date']} on {results['machine']}",
        f"settings: {results['settings']}",
        f"bundles from: {bundles['source']}",
        "",
        " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _measure_in_process(results: dict[str, Any], skip: set[str], quick: bool) -> None:
    """The figures that need no stack: quoting, landing, imports and bundle sizes."""
    from bench import coldstart, landing, quoting

    if "quoting" not in skip:
        print("quoting ...", file=sys.stderr, flush=True)
        results["quoting"] = quoting.measure()
    if "splitting" not in skip:
        from bench import splitting

        print("split routes ...", file=sys.stderr, flush=True)
        results["splitting"] = splitting.measure(5 if quick else 20)
    if "landing" not in skip:
        print("landing ...", file=sys.stderr, flush=True)
        results["landing"] = landing.measure(20 if quick else 40)
    if "coldstart" not in skip:
        print("cold start ...", file=sys.stderr, flush=True)
        results["imports"] = coldstart.import_times(3 if quick else 9)
        results["bundles"] = coldstart.bundle_sizes()


def _watcher(args: argparse.Namespace) -> dict[str, Any]:
    """The watcher's figures. Smoke: a small book and no trigger latency (CI stays fast); the
    watcher must still price every order and trigger none."""
    from bench import watching

    watched = args.watched or (500 if args.smoke else 2_000 if args.quick else 10_000)
    print(f"watcher, {watched} orders ...", file=sys.stderr, flush=True)
    with open(args.log, "a") as log:
        return watching.measure(
            watched,
            samples=0 if args.smoke else (5 if args.quick else 20),
            ticks=2 if args.smoke else 5,
            log=log,
            snipers=50 if args.smoke else (200 if args.quick else 1_000),
        )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, help="orders per throughput run (default 1000)")
    parser.add_argument("--concurrency", help="execute concurrencies, e.g. 10,20,40")
    parser.add_argument("--samples", type=int, help="orders for the overhead figure (200)")
    parser.add_argument("--tick", type=float, default=0.005, help="chain seconds per block")
    parser.add_argument("--poll", type=float, default=0.01, help="CONFIRM_POLL_SECONDS")
    parser.add_argument("--in-flight", type=int, default=64, help="client submits outstanding")
    parser.add_argument("--connections", type=int, default=16, help="client WebSockets")
    parser.add_argument(
        "--sqs",
        choices=("localstack", "moto"),
        default="localstack",
        help="what serves SQS and Secrets Manager: LocalStack (as `make run`; default) or moto's"
        " server (the emulator before LocalStack, for comparison)",
    )
    parser.add_argument(
        "--no-split",
        action="store_true",
        help="run the chain (and moto, with --sqs moto) inside the stack process;"
        " LocalStack is always a process of its own",
    )
    parser.add_argument("--quick", action="store_true", help="200 orders at 10,20; fewer samples")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI: 40 orders at concurrency 10, end to end only; exit 1 if any is lost or doubled",
    )
    parser.add_argument(
        "--skip", default="", help="comma list of: e2e,quoting,splitting,coldstart,landing,watching"
    )
    parser.add_argument(
        "--watched", type=int, help="limit orders the watcher prices per tick (10000)"
    )
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument(
        "--log",
        default=os.path.join(tempfile.gettempdir(), f"bench-stack-{os.getpid()}.log"),
        help="where the stack processes' stderr goes",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.orders = args.orders or 40
        args.concurrency = args.concurrency or "10"
        args.samples = 10 if args.samples is None else args.samples
        args.skip = args.skip or "quoting,splitting,coldstart,landing"
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    orders = args.orders or (200 if args.quick else 1000)
    concurrency = [
        int(c) for c in (args.concurrency or ("10,20" if args.quick else "10,20,40")).split(",")
    ]
    samples = args.samples if args.samples is not None else (50 if args.quick else 200)
    skip = set(filter(None, args.skip.split(",")))

    from bench import e2e

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "settings": (
            f"{orders} orders/run, block every {args.tick * 1000:g} ms, "
            f"CONFIRM_POLL_SECONDS {args.poll:g}, client {args.in_flight} in flight over "
            f"{args.connections} WebSockets, " + layout(args.sqs, split=not args.no_split)
        ),
    }
    _measure_in_process(results, skip, args.quick)
    if "watching" not in skip:
        results["watching"] = _watcher(args)
    if "e2e" not in skip:
        results["e2e"] = []
        with open(args.log, "w") as log:
            for c in concurrency:
                print(f"end to end, concurrency {c} ...", file=sys.stderr, flush=True)
                results["e2e"].append(
                    e2e.run_concurrency(
                        c,
                        orders=orders,
                        overhead_samples=samples if c == concurrency[0] else 0,
                        tick=args.tick,
                        poll=args.poll,
                        in_flight=args.in_flight,
                        connections=args.connections,
                        log=log,
                        split=not args.no_split,
                        sqs=args.sqs,
                        timeout=60.0 if args.smoke else 300.0,
                    )
                )
        e2e.share_single_order_latency(results["e2e"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    if args.smoke:
        return smoke_report(results)
    if skip:
        print(json.dumps(results, indent=1, default=str))
        return 0
    print(table(results))
    if results.get("e2e"):
        from bench import cost

        print()
        print(
            "What an order costs in AWS (bench/cost.py: this run's calls per order,"
            " each handler's duration alone):"
        )
        print(cost.report(cost.measured_from(results), cost.DEFAULT_LAND_SECONDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
