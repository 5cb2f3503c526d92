"""`make deploy`'s first step: does the stack fit the account's Lambda concurrency? The rules on
the numbers of a new account (quota 10 or 50) and of a raised one, and the command end to end:
samconfig.toml's parameters, boto3's GetAccountSettings over HTTP, the exit code and message.

moto 5.2 does not implement Lambda's GetAccountSettings (it answers 404 "Not yet implemented"),
so the command is pointed at a local HTTP endpoint that answers with the documented shape of
`GET /2016-08-19/account-settings/`; boto3 is the real client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ops.quota import Need, judge, main

DEFAULTS = Need.of({})


def test_the_defaults_fit_a_new_account_with_a_quota_of_10() -> None:
    assert Need(reserved=0, consumers=2 + 2 + 2 + 1) == DEFAULTS
    assert judge(DEFAULTS, quota=10, unreserved=10).fits


@pytest.mark.parametrize("quota", [10, 50, 100])
def test_no_reservation_fits_a_small_account(quota: int) -> None:
    verdict = judge(Need.of({"ReserveConcurrency": "true"}), quota=quota, unreserved=quota)
    assert not verdict.fits
    assert any("ReserveConcurrency=false" in line for line in verdict.lines)
    assert any("L-B99A9384" in line for line in verdict.lines)


def test_ten_executors_do_not_fit_a_quota_of_10_and_do_fit_1000() -> None:
    ten = Need.of({"ExecuteMaxConcurrency": "10", "NotifyMaxConcurrency": "5"})
    assert ten.consumers == 10 + 2 + 5 + 1
    assert not judge(ten, quota=10, unreserved=10).fits
    reserved = Need.of({"ExecuteMaxConcurrency": "10", "ReserveConcurrency": "true"})
    assert reserved.reserved == 10 + 2 + 1
    assert judge(reserved, quota=1000, unreserved=1000).fits
    # Other functions of the account already hold reservations: 110 unreserved is too few.
    assert not judge(reserved, quota=1000, unreserved=110).fits


class LambdaApi:
    """Answers GetAccountSettings as the Lambda API documents it, with the given numbers."""

    def __init__(self, quota: int, unreserved: int) -> None:
        body = json.dumps(
            {
                "AccountLimit": {
                    "TotalCodeSize": 80530636800,
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    "ConcurrentExecutions": quota,
                    "UnreservedConcurrentExecutions": unreserved,
                },
                "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
            }
        ).encode()
        paths: list[str] = []
        self.paths = paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def new_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaApi]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    api = LambdaApi(quota=10, unreserved=10)
    yield api
    api.server.shutdown()


def test_make_deploys_check_reads_samconfig_and_stops_with_the_numbers(
    new_account: LambdaApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "orders"\n'
        'parameter_overrides = "Stage=\\"prod\\" ReserveConcurrency=\\"true\\" '
        'ExecuteMaxConcurrency=\\"10\\""\n'
    )
    args = ["--samconfig", str(samconfig), "--endpoint-url", new_account.url]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "account: concurrency quota 10, unreserved now 10, minimum unreserved 10" in err
    assert "reserves 13" in err
    assert new_account.paths == ["/2016-08-19/account-settings"]
    # The same account, with what the README says to set on a 10-unit account.
    assert main([*args, "ReserveConcurrency=false", "ExecuteMaxConcurrency=2"]) == 0
    assert "OK: the stack fits" in capsys.readouterr().out
