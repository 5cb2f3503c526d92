"""Will the stack fit the account's Lambda concurrency? `make deploy` runs this before `sam
deploy` and stops, with the numbers, when it would not.

A new account often has a concurrency quota of 10 (sometimes 50), not 1,000. Two rules follow:
- A reservation (ReserveConcurrency=true: execute ExecuteMaxConcurrency + 2, watch 1) may not
  leave less than the account's minimum unreserved: 100, or the whole quota on an account whose
  quota is 100 or less (there, no reservation fits; the deploy fails ~20 minutes in with
  "decreases account's UnreservedConcurrentExecution below its minimum value").
- The queue consumers' mappings may together run ExecuteMaxConcurrency + 2 (dead letters) +
  NotifyMaxConcurrency, and the watcher 1: with the API functions' headroom, that must fit the
  quota, or Lambda throttles them, and a throttled SQS invocation uses up a receive.

    python -m ops.quota [--samconfig samconfig.toml] [Name=Value ...]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.template import load_template, parameter_value

MINIMUM_UNRESERVED = 100  # what Lambda keeps unreserved on an account whose quota allows it
API_HEADROOM = 3  # submit, the authorizer and ws_connect each need one to answer at all
DEAD_LETTER_CONCURRENCY = 2  # OrdersDeadLettersMapping's MaximumConcurrency
WATCHER = 1
QUOTA_CODE = "L-B99A9384"  # Service Quotas: Lambda "Concurrent executions"


@dataclass(frozen=True)
class Need:
    """What the stack asks of the account with these parameters."""

    reserved: int  # taken out of the account's unreserved pool at deploy
    consumers: int  # what the event source mappings and the schedule may run at once

    @classmethod
    def of(cls, parameters: Mapping[str, str]) -> Need:
        doc = load_template()
        execute = int(parameter_value("ExecuteMaxConcurrency", doc, parameters))
        notify = int(parameter_value("NotifyMaxConcurrency", doc, parameters))
        reserve = str(parameter_value("ReserveConcurrency", doc, parameters)) == "true"
        consumers = execute + DEAD_LETTER_CONCURRENCY + notify + WATCHER
        reserved = execute + DEAD_LETTER_CONCURRENCY + WATCHER if reserve else 0
        return cls(reserved=reserved, consumers=consumers)


@dataclass(frozen=True)
class Verdict:
    fits: bool
    lines: list[str]


def judge(need: Need, quota: int, unreserved: int) -> Verdict:
    """The check, on the numbers `aws lambda get-account-settings` gives (AccountLimit's
    ConcurrentExecutions and UnreservedConcurrentExecutions)."""
    minimum = min(MINIMUM_UNRESERVED, quota)
    lines = [
        f"account: concurrency quota {quota}, unreserved now {unreserved}, "
        f"minimum unreserved {minimum}",
        f"stack: reserves {need.reserved}; its queue consumers and watcher may run "
        f"{need.consumers} at once, plus {API_HEADROOM} for the API functions",
    ]
    fits = True
    if need.reserved and unreserved - need.reserved < minimum:
        fits = False
        lines.append(
            f"NO: reserving {need.reserved} would leave {unreserved - need.reserved} unreserved,"
            f" below the minimum {minimum}: deploy with ReserveConcurrency=false"
            + (" (no reservation fits an account with this quota)" if quota <= minimum else "")
        )
    if need.consumers + API_HEADROOM > quota:
        fits = False
        lines.append(
            f"NO: {need.consumers} + {API_HEADROOM} > {quota}: lower ExecuteMaxConcurrency and"
            " NotifyMaxConcurrency (2 and 2 fit a quota of 10), or raise the quota"
        )
    if not fits:
        lines.append(
            "raise the quota: aws service-quotas request-service-quota-increase"
            f" --service-code lambda --quota-code {QUOTA_CODE} --desired-value 1000"
        )
    else:
        lines.append("OK: the stack fits this account's concurrency")
    return Verdict(fits, lines)


def samconfig_parameters(path: Path) -> dict[str, str]:
    """The parameter_overrides `sam deploy --guided` saved (default environment)."""
    if not path.exists():
        return {}
    config: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    deploy = config.get("default", {}).get("deploy", {}).get("parameters", {})
    raw = deploy.get("parameter_overrides", "")
    items = shlex.split(raw) if isinstance(raw, str) else [str(i) for i in raw]
    return dict(item.split("=", 1) for item in items if "=" in item)


def account_settings(client: Any) -> tuple[int, int]:
    limits = client.get_account_settings()["AccountLimit"]
    return int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samconfig", type=Path, default=Path("samconfig.toml"))
    parser.add_argument("--endpoint-url", default=None, help="another Lambda API (tests)")
    parser.add_argument("overrides", nargs="*", help="Name=Value, over samconfig.toml's")
    args = parser.parse_args(argv)
    parameters = samconfig_parameters(args.samconfig)
    parameters.update(item.split("=", 1) for item in args.overrides if "=" in item)

    import boto3  # the operator's credentials and region, as the aws CLI's

    quota, unreserved = account_settings(boto3.client("lambda", endpoint_url=args.endpoint_url))
    verdict = judge(Need.of(parameters), quota, unreserved)
    print("\n".join(verdict.lines), file=sys.stdout if verdict.fits else sys.stderr)
    return 0 if verdict.fits else 1


if __name__ == "__main__":
    sys.exit(main())
