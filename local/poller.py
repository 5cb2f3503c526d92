"""An SQS poller that invokes a Lambda handler as the event source mapping does.

Long-polls `ReceiveMessage` (batch size from the template), builds the exact SQS Lambda event,
invokes the handler in a worker thread with at most N invocations in flight (the template's
MaximumConcurrency), then deletes every message not listed in `batchItemFailures`. Failed
messages reappear after their visibility timeout (the handler may shorten it itself with
ChangeMessageVisibility); after maxReceiveCount the queue (moto) moves them to the DLQ.

Each concurrency slot is its own "container": a separate instance of the function's module, so
module-level state (a BatchProcessor, an event loop) is never shared by two concurrent
invocations, as on Lambda. The shared `engine` library is one copy per process, though.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from local.apigw import LambdaContext
from local.handlers import fresh_module
from local.iam import AccessChecker, acting_as

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from local.metrics import EmfCollector

Handler = Callable[[dict[str, Any], Any], Any]
log = logging.getLogger("local.poller")
DEFAULT_CONCURRENCY = 5  # the number of pollers an SQS event source mapping starts with
MAX_RECEIVE = 10  # ReceiveMessage and DeleteMessageBatch take at most 10


def load_container(name: str, index: int) -> Handler:
    """A fresh instance of `functions/<name>/app.py` (one per concurrency slot); an init error
    leaves nothing cached, so the next invocation retries the init, as Lambda does."""
    handler: Handler = fresh_module(name).handler
    return handler


def sqs_event(messages: list[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda receives from an SQS event source mapping."""
    records = []
    for m in messages:
        attributes = {
            k: v
            for k, v in (m.get("Attributes") or {}).items()
            if k
            in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
                "MessageGroupId",
                "MessageDeduplicationId",
                "SequenceNumber",
                "AWSTraceHeader",
            )
        }
        message_attributes = {
            name: {
                "stringValue": a.get("StringValue"),
                "binaryValue": a.get("BinaryValue"),
                "stringListValues": list(a.get("StringListValues") or []),
                "binaryListValues": list(a.get("BinaryListValues") or []),
                "dataType": a["DataType"],
            }
            for name, a in (m.get("MessageAttributes") or {}).items()
        }
        body = m.get("Body", "")
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


class Poller:
    """Poll one queue into one function. `start()` runs it in a thread; `stop()` ends it after
    the invocations in flight have finished."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        function: str | Callable[[int], Handler],
        *,
        function_name: str | None = None,
        batch_size: int = 10,
        max_concurrency: int | None = None,
        function_timeout: float = 30.0,
        wait_seconds: int = 1,
        region: str = "us-east-1",
        metrics: EmfCollector | None = None,
        access: AccessChecker | None = None,
    ) -> None:
        self.sqs = sqs
        # The event source mapping acts with the function's role (receive, delete, the queue's
        # attributes), and so does the function: `access` judges both against it.
        self.access = access
        self.queue_url = queue_url
        if isinstance(function, str):
            name = function
            self._factory: Callable[[int], Handler] = lambda i: load_container(name, i)
            self.function_name = function_name or function
        else:
            self._factory = function
            self.function_name = function_name or "function"
        self.batch_size = batch_size
        self.concurrency = max_concurrency or DEFAULT_CONCURRENCY
        self.function_timeout = function_timeout
        self.wait_seconds = wait_seconds  # short, so stop() is prompt; polls are still long
        self.region = region
        self.metrics = metrics  # reads the function's EMF lines, as CloudWatch would
        self._stop = threading.Event()
        self._slots: queue.Queue[int] = queue.Queue()
        for i in range(self.concurrency):
            self._slots.put(i)
        self._containers: dict[int, Handler] = {}
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}
        self._workers: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.invocations = 0
        self.errors = 0
        self.receives = 0
        self.visibility_timeout = 30.0  # the queue's, read by start()
        self._deleter = _Deleter(sqs, queue_url, self.function_name, access)

    @classmethod
    def from_template(
        cls,
        sqs: SQSClient,
        queue_url: str,
        queue_logical_id: str,
        function: str | Callable[[int], Handler],
        **kw: Any,
    ) -> Poller:
        """Batch size, concurrency and timeout as template.yaml declares them."""
        from local.template import LOCAL_PARAMETERS, queue_settings

        qs = queue_settings(queue_logical_id, parameters=LOCAL_PARAMETERS)
        kw.setdefault("batch_size", qs.batch_size)
        kw.setdefault("max_concurrency", qs.max_concurrency)
        kw.setdefault("function_timeout", qs.function_timeout)
        return cls(sqs, queue_url, function, **kw)

    def start(self) -> Poller:
        with acting_as(self.function_name, self.access):
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"]
            )["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.visibility_timeout = float(attributes.get("VisibilityTimeout", 30))
        self._thread = threading.Thread(
            target=self._run, name=f"poller-{self.function_name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            workers = list(self._workers)
        for w in workers:
            w.join(timeout)
        self._deleter.close(timeout)
        for loop in self._loops.values():
            if not loop.is_running():
                loop.close()

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        # Its invocations' threads inherit the function (local/iam.py's hooks).
        with acting_as(self.function_name, self.access):
            self._poll()

    def _poll(self) -> None:
        while not self._stop.is_set():
            slots = self._free_slots()
            if not slots:
                continue  # every slot busy: do not receive what nobody can run
            # As the mapping's pollers do: one ReceiveMessage for every free slot (up to 10
            # messages), then one invocation per batch of `batch_size`.
            want = min(MAX_RECEIVE, len(slots) * self.batch_size)
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=want,
                    WaitTimeSeconds=self.wait_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                log.exception("receive from %s failed", self.queue_url)
                self._return(slots)
                self._stop.wait(1.0)
                continue
            self.receives += 1
            batches = [
                messages[i : i + self.batch_size] for i in range(0, len(messages), self.batch_size)
            ]
            received = time.monotonic()
            for slot, batch in zip(slots, batches, strict=False):
                self._start(slot, batch, received)
            self._return(slots[len(batches) :])

    def _free_slots(self) -> list[int]:
        """Every free slot (waiting a moment for one when none is free)."""
        try:
            slots = [self._slots.get(timeout=0.2)]
        except queue.Empty:
            return []
        while True:
            try:
                slots.append(self._slots.get_nowait())
            except queue.Empty:
                return slots

    def _return(self, slots: list[int]) -> None:
        for slot in slots:
            self._slots.put(slot)

    def _start(self, slot: int, messages: list[MessageTypeDef], received: float) -> None:
        worker = threading.Thread(
            target=self._invoke,
            args=(slot, messages, received),
            name=f"{self.function_name}-{slot}",
            daemon=True,
        )
        with self._lock:
            self._workers.add(worker)
        worker.start()

    def _invoke(self, slot: int, messages: list[MessageTypeDef], received: float) -> None:
        try:
            if slot not in self._containers:
                try:
                    self._containers[slot] = self._factory(slot)
                except Exception:
                    # An init error: like a function error, the batch reappears after visibility.
                    self.errors += 1
                    log.exception("%s failed to initialise", self.function_name)
                    return
                self._loops[slot] = asyncio.new_event_loop()
            # Each container keeps one event loop across its invocations, as a Lambda runtime
            # does (Mangum-style handlers call asyncio.get_event_loop()).
            asyncio.set_event_loop(self._loops[slot])
            event = sqs_event(messages, self.queue_arn, self.region)
            context = LambdaContext(self.function_name, self.function_timeout)
            if self.metrics is not None:
                self.metrics.install()
            self.invocations += 1
            try:
                reply = self._call(self._containers[slot], event, context, received)
            except Exception:
                # A function error: the whole batch stays and reappears after visibility.
                self.errors += 1
                log.exception("%s failed; the batch will be retried", self.function_name)
                return
            self._delete(messages, _failed_ids(reply, messages))
        finally:
            asyncio.set_event_loop(None)
            with self._lock:
                self._workers.discard(threading.current_thread())
            self._slots.put(slot)

    def _call(self, handler: Handler, event: dict[str, Any], context: Any, received: float) -> Any:
        """Invoke; when the function is throttled (its concurrency or the account's), invoke the
        same batch again, backing off, as long as the batch's visibility timeout leaves room for
        one whole run of the function (the mapping does so: the reason a queue's visibility
        timeout is 6x its function's timeout). Past that the batch reappears on the queue."""
        from local.workers import Throttled

        give_up = received + self.visibility_timeout - self.function_timeout
        delay = 0.05
        while True:
            try:
                return handler(event, context)
            except Throttled:
                log.info("%s throttled; the batch is invoked again", self.function_name)
                if self._stop.is_set() or time.monotonic() + delay > give_up:
                    raise
                self._stop.wait(delay)
                delay = min(delay * 2, 1.0)

    def _delete(self, messages: list[MessageTypeDef], failed: set[str]) -> None:
        """Hand the batch's successes to the deleter (failures stay, to reappear)."""
        done = [m["ReceiptHandle"] for m in messages if m["MessageId"] not in failed]
        if done:
            self._deleter.add(done)


class _Deleter:
    """Deletes processed messages in DeleteMessageBatch calls of up to 10: what finishes while
    a delete is in flight goes with the next one. `close()` deletes what is left."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        function: str = "function",
        access: AccessChecker | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.function = function
        self.access = access
        self.calls = 0
        self._cond = threading.Condition()
        self._handles: list[str] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sqs-deleter", daemon=True)
        self._thread.start()

    def add(self, handles: list[str]) -> None:
        with self._cond:
            self._handles += handles
            self._cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        with acting_as(self.function, self.access):
            self._delete_until_closed()

    def _delete_until_closed(self) -> None:
        while True:
            with self._cond:
                while not self._handles and not self._closed:
                    self._cond.wait()
                if not self._handles:
                    return
                chunk, self._handles = self._handles[:MAX_RECEIVE], self._handles[MAX_RECEIVE:]
            try:
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(chunk)],
                )
                self.calls += 1
            except Exception:  # the messages reappear after their visibility timeout
                log.exception("delete from %s failed", self.queue_url)


def _failed_ids(reply: Any, messages: list[MessageTypeDef]) -> set[str]:
    """Message ids to keep, read from a ReportBatchItemFailures reply. As on Lambda, a reply that
    names an id not in the batch, or has no itemIdentifier, fails the whole batch."""
    ids = {m["MessageId"] for m in messages}
    if not isinstance(reply, dict) or not reply.get("batchItemFailures"):
        return set()
    failed: set[str] = set()
    for item in reply["batchItemFailures"]:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in ids:
            return ids
        failed.add(ident)
    return failed


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `predicate` until true or `timeout`; for tests and the stack's start-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
