"""The project's Postman collection (postman/orders.postman_collection.json) run with newman
against a whole local stack of its own: every request's assertions must pass, so the collection
and the API cannot drift apart. newman comes from tests/postman/package-lock.json (`make test`
installs it: `make postman-deps`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack import Running, isolated_stack

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COLLECTION = ROOT / "postman" / "orders.postman_collection.json"
NEWMAN = HERE / "node_modules" / ".bin" / "newman"


@pytest.fixture(scope="module")
def stack(pg_base_url: str, request: pytest.FixtureRequest) -> Iterator[Running]:
    if shutil.which("node") is None or not NEWMAN.exists():
        pytest.fail("newman is not installed (make postman-deps, which needs node)", pytrace=False)
    aws = request.getfixturevalue("localstack")
    with isolated_stack(pg_base_url, f"orders_postman_{uuid.uuid4().hex[:10]}", aws=aws) as running:
        yield running


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{f['source'].get('name', '?')}: {f['error'].get('test') or ''} {f['error']['message']}"
        for f in report["run"]["failures"]
    ]


@pytest.mark.timeout(300)
def test_the_collection_passes_against_the_stack(stack: Running, tmp_path: Path) -> None:
    report_path = tmp_path / "newman.json"
    run = subprocess.run(
        [
            str(NEWMAN),
            "run",
            str(COLLECTION),
            "--env-var",
            f"baseUrl={stack.http}",
            "--env-var",
            f"apiKey={stack.api_key}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report_path),
            "--reporter-cli-no-banner",
            "--disable-unicode",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = json.loads(report_path.read_text())
    stats = report["run"]["stats"]
    assert _failures(report) == [], run.stdout[-4000:]
    assert run.returncode == 0, run.stdout[-4000:]
    # Every request ran and asserted something (a request whose tests vanished would pass).
    items = json.loads(COLLECTION.read_text())["item"]
    assert stats["requests"]["total"] >= len(items)
    assert stats["assertions"]["total"] >= 2 * len(items)
    # The wrong content type is a 415, as the API answers (it was 400 in the collection).
    names = [execution["item"]["name"] for execution in report["run"]["executions"]]
    assert "Wrong content type (415)" in names
