"""`make key` / `python -m local.keys` (issue 25 item 6): they use the database DATABASE_URL
names, as `make run` does; before, both always used `orders_local`, so two stacks on one
Postgres server shared keys and orders."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from local import postgres
from local.stack import local_database_name

ROOT = Path(__file__).resolve().parents[2]


def local_keys(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WS_MANAGEMENT_ENDPOINT"}
    return subprocess.run(
        [sys.executable, "-m", "local.keys", *args],
        env={**env, "DATABASE_URL": database_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_local_keys_uses_the_database_database_url_names(pg_base_url: str) -> None:
    name = f"orders_keys_{uuid.uuid4().hex[:8]}"
    url = str(psycopg.conninfo.make_conninfo(pg_base_url, dbname=name))
    try:
        made = local_keys(url, "create", "--name", "alice", "--limit", "SOL=1/2")
        assert made.returncode == 0, made.stderr
        key_id = next(line.split()[1] for line in made.stdout.splitlines() if line.startswith("id"))
        assert "sells SOL: 1 per order, 2 per 24 h" in made.stdout
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT name FROM api_keys WHERE id = %s", (key_id,)).fetchone()
            assert row == ("alice",)
        listed = local_keys(url, "list")
        assert key_id in listed.stdout
        shown = local_keys(url, "limits", key_id, "--max-slippage", "3")
        assert "max slippage  3 %" in shown.stdout, shown.stderr
    finally:
        postgres.drop_database(pg_base_url, url)


def test_the_stack_and_the_key_tools_agree_on_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://me@127.0.0.1:5432/orders_other")
    assert local_database_name() == "orders_other"
    monkeypatch.delenv("DATABASE_URL")
    assert local_database_name() == "orders_local"
