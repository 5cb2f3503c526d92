"""One source for metric names: engine/metrics.py. The dashboard and alarms in template.yaml name
only those, and the code emits every one of them through the constants."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.metrics import METRICS, Metric
from engine.observability import NAMESPACE
from local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
NAMES = {value: attr for attr, value in vars(Metric).items() if attr.isupper()}


def _alarm_metrics(node: Any) -> set[str]:
    """MetricName of every alarm (or alarm metric) in the engine's namespace."""
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("Namespace") == NAMESPACE and isinstance(node.get("MetricName"), str):
            found.add(node["MetricName"])
        for value in node.values():
            found |= _alarm_metrics(value)
    elif isinstance(node, list):
        for value in node:
            found |= _alarm_metrics(value)
    return found


def _dashboard_metrics(body: str) -> set[str]:
    """Metric names in the dashboard's JSON: ["SolanaOrderEngine", "Name", ...] rows and
    SEARCH('{SolanaOrderEngine,dim} MetricName="Name"') expressions."""
    rows = re.findall(rf'\["{NAMESPACE}", "(\w+)"', body)
    searches = re.findall(rf'\{{{NAMESPACE},\w+\}} MetricName=\\"(\w+)\\"', body)
    return set(rows) | set(searches)


def test_the_template_names_only_the_engines_metrics() -> None:
    template = load_template(ROOT / "template.yaml")
    alarms = _alarm_metrics(template["Resources"])
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]
    text = body if isinstance(body, str) else str(next(iter(body.values())))
    dashboard = _dashboard_metrics(text)
    assert {"OrderFailed", "LandTime", "WatchTick", "WalletBalance"} <= alarms
    assert {"OrderAccepted", "OrderFailedByCode", "QuotesSkipped"} <= dashboard
    assert alarms - set(NAMES) == set()
    assert dashboard - set(NAMES) == set()


def test_every_metric_is_emitted_through_its_constant() -> None:
    sources = [
        path.read_text()
        for folder in ("layers", "functions")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "metrics.py"
    ]
    code = "\n".join(sources)
    unused = [attr for attr in NAMES.values() if f"Metric.{attr}" not in code]
    assert unused == []
    # No metric is named by a bare string where it is emitted.
    bare = re.findall(r'(?:count|milliseconds|count_by)\("([A-Z]\w+)"|name="([A-Z]\w+)"', code)
    assert [name for pair in bare for name in pair if name in NAMES] == []


def test_the_documented_list_is_the_constants() -> None:
    assert [m.name for m in METRICS] == list(dict.fromkeys(m.name for m in METRICS))
    assert {m.name for m in METRICS} == set(NAMES)
