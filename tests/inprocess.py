"""A status Publisher that fans out in this process instead of through the status-events queue,
for tests that exercise delivery without a notify poller (engine.notify.Publisher)."""

from __future__ import annotations

import threading
import time
import uuid

from engine.notify import Fanout
from engine.store import Event


class InProcessPublisher:
    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout

    def publish(self, event: Event) -> None:
        self.fanout.fan_out(event.order_id)

    def publish_backlog(self, order_id: uuid.UUID) -> None:
        """As notify would after `$connect`: deliver once the socket is ready, retrying a while
        (a post before the upgrade completes answers 410, which a young connection treats as
        not ready yet)."""

        def later() -> None:
            for _ in range(20):
                time.sleep(0.25)
                if not any(d.outcome == "not_ready" for d in self.fanout.fan_out(order_id)):
                    return

        threading.Thread(target=later, name=f"backlog-{order_id}", daemon=True).start()
