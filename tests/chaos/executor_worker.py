"""The execute function as the chaos suite runs it: the real `functions/execute/app.py`, in the
stack's own worker process for it (awslambdaric, the function's layers and environment), with
its status publish and its chain send wrapped so that the worker SIGKILLs its own process the
first time an order reaches the kill point the test names.

Copied as `app.py` into a folder that stands in for the function's code folder (the first entry
of its import path, as /var/task), beside `chaos.json` ({"app": the real app.py}) and `kill_at`
(the point: a status, `routing` `building` `submitted` `confirmed`, when it is committed and not
yet published; or `after_send`, once the signed bytes reached the RPC). A marker file
`killed-<point>` makes each point kill once, so the next environment finishes the job.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
from pathlib import Path
from typing import Any

from engine.notify import StatusQueue
from engine.store import Event
from execution import chain

HERE = Path(__file__).resolve().parent


def die_once(point: str) -> None:
    try:
        kill_at = (HERE / "kill_at").read_text().strip()
    except FileNotFoundError:
        return
    mark = HERE / f"killed-{point}"
    if point == kill_at and not mark.exists():
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


StatusQueue.publish = publish  # type: ignore[method-assign]
chain.Chain.send = send  # type: ignore[method-assign]

_spec = importlib.util.spec_from_file_location(
    "execute_app", json.loads((HERE / "chaos.json").read_text())["app"]
)
assert _spec is not None
assert _spec.loader is not None
_real = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_real)


def handler(event: dict[str, Any], context: Any) -> Any:
    return _real.handler(event, context)
