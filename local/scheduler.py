"""EventBridge schedules, played locally: each `Schedule` event of template.yaml invokes its
function every `rate(...)`, with the event EventBridge sends (a "Scheduled Event" from
`aws.events`, which Powertools' `EventBridgeEvent` parses) and a context whose remaining time
counts down from the function's timeout, as Lambda's does.

One invocation at a time per schedule (the watch function reserves concurrency 1): the next one
starts at the next rate boundary after the previous ended, never on top of it (EventBridge's
event would wait, then be dropped at its maximum age: no retries). `stop()` makes the running
invocation's remaining time 0, so a handler that loops while it has time (the watcher) ends
within its tick.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local.apigw import ACCOUNT, LambdaContext
from local.handlers import fresh_handler
from local.iam import AccessChecker, acting_as
from local.template import Schedule, schedules

if TYPE_CHECKING:
    from local.metrics import EmfCollector

log = logging.getLogger("local.scheduler")
REGION = "us-east-1"


def scheduled_event(function: str, event_name: str, at: datetime | None = None) -> dict[str, Any]:
    """What EventBridge sends a function for one tick of its schedule rule."""
    moment = (at or datetime.now(UTC)).replace(microsecond=0)
    rule = f"local-{function}-{event_name}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": moment.isoformat().replace("+00:00", "Z"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


class _Context(LambdaContext):
    """Lambda's context, whose remaining time is 0 once the scheduler is stopping."""

    def __init__(self, function_name: str, timeout_seconds: float, stop: threading.Event) -> None:
        super().__init__(function_name, timeout_seconds)
        self._stop = stop

    def get_remaining_time_in_millis(self) -> int:
        return 0 if self._stop.is_set() else super().get_remaining_time_in_millis()


class Scheduler:
    """One schedule's invocations, in a thread of its own (`start()` / `stop()`)."""

    def __init__(
        self,
        schedule: Schedule,
        every_seconds: float | None = None,
        metrics: EmfCollector | None = None,
        access: AccessChecker | None = None,
        functions: Callable[[str], Any] | None = None,
    ) -> None:
        self.schedule = schedule
        self.functions = functions  # the function's handler by name (worker pools)
        self.access = access  # the function's IAM role, for its AWS calls
        self.every_seconds = every_seconds or schedule.every_seconds
        self.metrics = metrics  # reads the function's EMF lines, as CloudWatch would
        self.invocations = 0
        self.errors = 0
        self.replies: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Scheduler:
        self._thread = threading.Thread(
            target=self._run, name=f"schedule-{self.schedule.function}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _keep_collecting(self) -> None:
        """An invocation lasts most of a minute and prints its metrics as it goes: keep the
        collector on stdout meanwhile (a test runner swaps stdout between tests)."""
        runner = self._thread
        while self.metrics is not None and runner is not None and runner.is_alive():
            self.metrics.install()
            runner.join(0.2)

    def _run(self) -> None:
        with acting_as(self.schedule.function, self.access):
            self._invocations()

    def _invocations(self) -> None:
        if self.metrics is not None:
            self.metrics.install()
            threading.Thread(target=self._keep_collecting, daemon=True).start()
        name = self.schedule.function
        try:
            handler = (self.functions or fresh_handler)(name)  # one container, kept
        except Exception:
            log.exception("%s failed to initialise; its schedule does not run", name)
            self.errors += 1
            return
        started = time.monotonic()
        while not self._stop.is_set():
            context = _Context(name, self.schedule.timeout_seconds, self._stop)
            self.invocations += 1
            try:
                self.replies.append(handler(scheduled_event(name, self.schedule.event), context))
            except Exception:
                self.errors += 1
                log.exception("%s failed (the next tick of its schedule runs anyway)", name)
            # The next tick of the rate after now (never two invocations at once).
            elapsed = time.monotonic() - started
            wait = self.every_seconds - elapsed % self.every_seconds
            self._stop.wait(wait)


def start_schedules(
    every_seconds: float | None = None,
    metrics: EmfCollector | None = None,
    access: AccessChecker | None = None,
    functions: Callable[[str], Any] | None = None,
) -> list[Scheduler]:
    """A Scheduler per `Schedule` event of the template, started (`every_seconds` overrides
    the rates, e.g. for tests)."""
    return [Scheduler(s, every_seconds, metrics, access, functions).start() for s in schedules()]
