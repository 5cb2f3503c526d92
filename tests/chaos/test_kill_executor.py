"""The executor SIGKILLed at every step of an order, then restarted (as Lambda would start a new
container): every order ends terminal, each swap is on the chain once, and every subscriber got
every frame, in order, once.

The stack runs here (gateway, SQS, notify, chain, Postgres); the execute poller runs in a worker
process of its own (tests/chaos/executor_worker.py) that kills itself with SIGKILL, not an
exception, the first time an order reaches the step under test.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.chain.ledger import BLOCKHASH_VALID_BLOCKS
from local.chain.seed import WALLET
from local.poller import wait_until
from tests.stack import (
    Running,
    after_terminal,
    follow,
    http_json,
    isolated_stack,
    open_ws,
    submit_http,
)

pytestmark = pytest.mark.chaos

POINTS = ["routing", "building", "submitted", "after_send", "confirmed"]
ORDERS_PER_POINT = 2
WORKER = Path(__file__).with_name("executor_worker.py")
REDELIVERY_SECONDS = 3  # the orders queue's visibility timeout here (720 s in the template)


@pytest.fixture(scope="module")
def stack(pg_base_url: str, localstack: str) -> Iterator[Running]:
    with isolated_stack(
        pg_base_url,
        f"orders_chaos_{os.getpid()}",
        aws=localstack,
        run_executor=False,
        # In-process, with the execute poller in a process of its own (executor_worker.py):
        # killing the real execute worker instead left an order with no terminal frame in 3
        # of 4 loaded runs, a cause not yet found (see the note).
        workers=False,
    ) as running:
        sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
        sqs.set_queue_attributes(
            QueueUrl=os.environ["ORDERS_QUEUE_URL"],
            Attributes={"VisibilityTimeout": str(REDELIVERY_SECONDS)},
        )
        yield running


class Worker:
    """The execute container process, restarted whenever it dies."""

    def __init__(self, kill_at: str, marks: Path) -> None:
        self.env = {**os.environ, "CHAOS_KILL_AT": kill_at, "CHAOS_MARK_DIR": str(marks)}
        self.kills = 0
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(WORKER)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def keep_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            assert code == -signal.SIGKILL, f"the worker died on its own (exit {code})"
            self.kills += 1
            self.process = self._spawn()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("point", POINTS)
def test_killed_at_each_step_every_order_lands_once_and_streams_whole(
    stack: Running, point: str, tmp_path: Path
) -> None:
    worker = Worker(point, tmp_path)
    try:
        accepted = [submit_http(stack) for _ in range(ORDERS_PER_POINT)]
        sockets = [open_ws(a["wsUrl"]) for a in accepted]
        streams: dict[str, list[dict[str, Any]]] = {}

        def listen(order_id: str, index: int) -> None:
            frames = follow(sockets[index], timeout=120)
            streams[order_id] = frames + after_terminal(sockets[index], wait=1.0)

        listeners = [
            threading.Thread(target=listen, args=(a["orderId"], i)) for i, a in enumerate(accepted)
        ]
        for t in listeners:
            t.start()
        deadline = time.monotonic() + 150
        while any(t.is_alive() for t in listeners) and time.monotonic() < deadline:
            worker.keep_alive()
            time.sleep(0.1)
        for t in listeners:
            t.join(timeout=5)
        for ws in sockets:
            ws.close()
        # A kill at the last step can come after the terminal frames were read: count it once
        # the marked process is gone, not only while the listeners still waited.
        mark = tmp_path / f"killed-{point}"
        assert wait_until(
            lambda: worker.kills > 0 or (mark.exists() and worker.process.poll() is not None), 30
        ), f"the worker never reached {point}"
        worker.keep_alive()
    finally:
        worker.stop()

    assert worker.kills == 1, f"expected one SIGKILL at {point}, saw {worker.kills}"
    _, txlog = http_json("GET", f"{stack.rpc}/admin/txlog")
    swaps = [
        t
        for t in txlog
        if t["err"] is None and t["dexInstructions"] and t["feePayer"] == str(WALLET)
    ]
    landed = [t["signature"] for t in swaps]
    for a in accepted:
        frames = streams.get(a["orderId"])
        assert frames is not None, f"{a['orderId']}: no terminal frame"
        assert_resumed_stream(frames, a["orderId"])
        signature = frames[-1]["txHash"]
        assert signature in landed
        # The order's swap is on the chain once: however many times the worker died and
        # re-ran it, no second transaction (another signature) carrying its id landed.
        assert sum(a["orderId"] in t["memos"] for t in swaps) == 1, a["orderId"]
        _, order = http_json("GET", f"{stack.http}/api/orders/{a['orderId']}")
        submitted = [e for e in order["events"] if e["status"] == "submitted"]
        assert_resigned_only_after_expiry(submitted)


def assert_resumed_stream(frames: list[dict[str, Any]], order_id: str) -> None:
    """pending, routing, building, then one `submitted` per signed transaction, then confirmed:
    seq 1..N, each once, all of one order. A worker dead for longer than a blockhash lives (150
    blocks; on a loaded machine a restart can outlast them) comes back to an expired transaction
    and signs anew: a second `submitted`, never a second swap."""
    statuses = [f.get("status") for f in frames]
    assert statuses[:3] == ["pending", "routing", "building"], frames
    assert statuses[-1] == "confirmed", frames
    assert set(statuses[3:-1]) == {"submitted"}, frames
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert {f["orderId"] for f in frames} == {order_id}
    assert frames[-1]["txHash"] == frames[-2]["txHash"]  # the last one signed is what landed


def assert_resigned_only_after_expiry(submitted: list[dict[str, Any]]) -> None:
    """Each new signature was made once the one before could no longer land: its blockhash was
    fetched at a height past the earlier one's lastValidBlockHeight (a fresh blockhash is valid
    for 150 blocks from the height it was fetched at)."""
    for before, after in itertools.pairwise(submitted):
        assert after["txHash"] != before["txHash"]
        fetched_at = after["lastValidBlockHeight"] - BLOCKHASH_VALID_BLOCKS
        assert fetched_at > before["lastValidBlockHeight"], (before, after)
