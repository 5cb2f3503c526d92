"""The local scheduler reads the template's EventBridge schedules and sends what EventBridge
sends (no I/O)."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from local.scheduler import scheduled_event
from local.template import Schedule, parse_rate, schedules


def test_the_watch_function_is_the_templates_one_schedule() -> None:
    assert schedules() == [Schedule("watch", "Tick", 60.0, 58)]


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 days)", 172800),
    ],
)
def test_rate_expressions(expression: str, seconds: float) -> None:
    assert parse_rate(expression) == seconds


@pytest.mark.parametrize(
    "expression", ["cron(0 12 * * ? *)", "rate(0 minutes)", "rate(1 fortnight)"]
)
def test_what_the_local_scheduler_cannot_run_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(expression)


def test_the_scheduled_event_is_eventbridges() -> None:
    event = EventBridgeEvent(scheduled_event("watch", "Tick"))
    assert (event.source, event.detail_type, event.detail) == ("aws.events", "Scheduled Event", {})
    assert event.resources == ["arn:aws:events:us-east-1:000000000000:rule/local-watch-Tick"]
    assert event.time.endswith("Z")
