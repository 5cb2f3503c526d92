"""An execute "container" in a process of its own, for the chaos suite: the execute function's
SQS poller, which SIGKILLs its own process the first time an order reaches CHAOS_KILL_AT.

Kill points: a status (`routing`, `building`, `submitted`, `confirmed`: the status is committed,
its publish has not happened) or `after_send` (the signed bytes reached the RPC). A marker file
in CHAOS_MARK_DIR makes each point kill once, so the restarted worker finishes the job.

    python tests/chaos/executor_worker.py    # env: the stack's, plus CHAOS_KILL_AT, CHAOS_MARK_DIR
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.notify import StatusQueue
from engine.store import Event
from execution import chain

KILL_AT = os.environ.get("CHAOS_KILL_AT", "")
MARKS = Path(os.environ.get("CHAOS_MARK_DIR", "."))


def die_once(point: str) -> None:
    mark = MARKS / f"killed-{point}"
    if point == KILL_AT and not mark.exists():
        mark.touch()
        os.kill(os.getpid(), signal.SIGKILL)


_publish = StatusQueue.publish


def publish(self: StatusQueue, event: Event) -> None:
    die_once(str(event.status))
    _publish(self, event)


_send = chain.Chain.send


async def send(self: chain.Chain, raw_tx: bytes) -> None:
    await _send(self, raw_tx)
    die_once("after_send")


def main() -> None:
    import boto3

    from local.poller import Poller

    StatusQueue.publish = publish  # type: ignore[method-assign]
    chain.Chain.send = send  # type: ignore[method-assign]
    sqs = boto3.client("sqs", endpoint_url=os.environ["SQS_ENDPOINT_URL"])
    poller = Poller.from_template(
        sqs, os.environ["ORDERS_QUEUE_URL"], "OrdersQueue", "execute", wait_seconds=1
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("worker ready", flush=True)
    stop.wait()
    poller.stop()


if __name__ == "__main__":
    main()
