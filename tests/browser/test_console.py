"""The console in headless Chromium against a whole local stack (tests/browser/console.mjs).

Needs Debian's chromium (`/usr/bin/chromium`), and playwright-core and axe-core from
tests/browser/package-lock.json; `make test` (or `make browser-deps`) installs them where it can.
Where they are missing the test fails and says which. It saves the page to build/console.png
(git-ignored: every run differs); `make screenshot` saves it to docs/console.png instead, the
README's picture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import db, keys
from tests.stack import Running, isolated_stack

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SCREENSHOT = Path(os.environ.get("CONSOLE_SCREENSHOT", ROOT / "build" / "console.png")).resolve()


def missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.is_file():
        return f"no browser at {CHROMIUM} (make browser-deps installs Debian's chromium as root)"
    if shutil.which("node") is None:
        return "no node on PATH (the test drives chromium with playwright-core)"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (make browser-deps: npm ci --prefix tests/browser)"
    if not (ROOT / "layers/common/engine/static/swagger-ui/swagger-ui-bundle.js").is_file():
        return "Swagger UI's files are not vendored (make vendor)"
    return None


@pytest.fixture(scope="module")
def stack(pg_base_url: str, request: pytest.FixtureRequest) -> Iterator[Running]:
    reason = missing()
    if reason:  # before starting a stack (and the session's LocalStack) for nothing
        pytest.fail(f"the browser test cannot run: {reason}", pytrace=False)
    aws = request.getfixturevalue("localstack")
    with isolated_stack(pg_base_url, f"orders_browser_{uuid.uuid4().hex[:10]}", aws=aws) as running:
        yield running


@pytest.mark.timeout(300)
def test_console_in_a_browser(stack: Running) -> None:
    pool = db.pool(stack.database_url)
    revoked, revoked_secret = keys.create_key("revoked in the browser test", pool=pool)
    keys.revoke(revoked.id, pool=pool)
    later, later_secret = keys.create_key("revoked while the page uses it", pool=pool)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "BASE_URL": stack.http,
        "API_KEY": stack.api_key,
        "REVOKED_KEY": revoked_secret,
        "REVOKE_LATER_KEY": later_secret,
        "SCREENSHOT": str(SCREENSHOT),
        "CHROMIUM": str(CHROMIUM),
    }
    started = time.monotonic()
    node = subprocess.Popen(
        ["node", str(HERE / "console.mjs")],
        env=env,
        cwd=HERE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert node.stdin is not None
    assert node.stdout is not None
    assert node.stderr is not None
    lines: list[dict[str, Any]] = []
    try:
        for raw in node.stdout:
            if not raw.startswith("{"):
                continue
            lines.append(json.loads(raw))
            if lines[-1].get("check") == "revoke now":
                keys.revoke(later.id, pool=pool)
                node.stdin.write("revoked\n")
                node.stdin.flush()
        node.wait(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    errors = node.stderr.read()
    print(f"\nbrowser test: {time.monotonic() - started:.1f} s")
    for line in lines:
        print(json.dumps(line)[:240])
    report = json.dumps(lines[-3:])[-4000:] + errors[-4000:]
    assert node.returncode == 0, report
    assert lines, report
    assert lines[-1].get("ok") is True, report
    checks = {line["check"] for line in lines if "check" in line}
    assert {
        "missing key",
        "wrong key",
        "revoked key",
        "order confirmed",
        "reconnect resumed",
        "history",
        "chart",
        "field error",
        "limit cancelled",
        "accessibility",
        "revoked while in use",
        "api from the url ignored",
        "docs",
        "offline",
    } <= checks
    assert SCREENSHOT.is_file()
    assert SCREENSHOT.stat().st_size > 10_000
