"""`python -m local.keys revoke` against a running local stack (issue 25 item 6): it closes the
key's sockets through the gateway's management API with the stack's own credentials (the
endpoint and secret the stack saved for its database), and says how many closed and how many
failed. Before, it printed "closed N" while every close failed: its environment had no
management endpoint and no AWS credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine import db, keys
from tests.stack import isolated_stack

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
# What the tool must not borrow from this test process: it finds its own.
BORROWED = ("WS_MANAGEMENT_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.mark.timeout(300)
def test_local_keys_revoke_closes_the_keys_sockets_with_the_stacks_credentials(
    pg_base_url: str, localstack: str
) -> None:
    name = f"orders_revoke_{uuid.uuid4().hex[:8]}"
    with isolated_stack(pg_base_url, name, aws=localstack) as running:
        key, secret = keys.create_key("revoked by local.keys", pool=db.pool(running.database_url))
        sockets = [
            connect(running.ws, open_timeout=10, additional_headers={"x-api-key": secret})
            for _ in range(2)
        ]
        try:
            env = {k: v for k, v in os.environ.items() if k not in BORROWED and k[:4] != "AWS_"}
            done = subprocess.run(
                [sys.executable, "-m", "local.keys", "revoke", str(key.id)],
                env={**env, "DATABASE_URL": running.database_url},
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert "2 closed, 0 failed" in done.stdout, done.stdout + done.stderr
            for ws in sockets:
                last = json.loads(ws.recv(timeout=10))
                assert last["error"]["code"] == "api_key_revoked"
                with pytest.raises(ConnectionClosed):
                    ws.recv(timeout=5)
        finally:
            for ws in sockets:
                ws.close()
