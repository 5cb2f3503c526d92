"""What CloudWatch does with a function's metrics, for the local stack: it reads the functions'
stdout, passes every line through, and turns each CloudWatch EMF line (what Powertools Metrics
prints) into metrics it aggregates, served by the gateway at `GET /_local/metrics`.

The functions are not changed for this: they print EMF exactly as in Lambda.
"""

from __future__ import annotations

import io
import json
import math
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO

MAX_SAMPLES = 10_000  # per metric and dimension set: enough for percentiles of a bench run


@dataclass
class Series:
    unit: str
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    samples: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(value)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples)

        def pct(q: float) -> float | None:
            if not ordered:
                return None
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return {
            "unit": self.unit,
            "count": self.count,
            "sum": self.total,
            "min": self.low if self.count else None,
            "max": self.high if self.count else None,
            "p50": pct(0.5),
            "p95": pct(0.95),
            "p99": pct(0.99),
        }


class EmfCollector(io.TextIOBase):
    """A stdout that passes everything through and collects the EMF metrics it sees."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lines = threading.local()  # each thread's partial line (print writes in pieces)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str, tuple[tuple[str, str], ...]], Series] = {}
        self._bytes = {"log": 0, "emf": 0}  # what CloudWatch Logs would ingest, by kind

    def install(self) -> None:
        """Be the process's stdout (again): called before each invocation, since a test runner
        may have swapped sys.stdout since the last one; what it swapped in becomes `out`."""
        current = sys.stdout
        if current is not self:
            self.out = current
            sys.stdout = self

    def uninstall(self) -> None:
        if sys.stdout is self:
            sys.stdout = self.out

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        """Lines pass through to `out`, but for EMF lines: those become metrics (served at
        /_local/metrics), as CloudWatch takes them out of the log stream."""
        pending: str = getattr(self._lines, "text", "") + text
        *complete, rest = pending.split("\n")
        self._lines.text = rest
        for line in complete:
            kind = "emf" if line.startswith('{"_aws"') else "log"
            with self._lock:
                self._bytes[kind] += len(line) + 1
            if kind == "emf":
                self._record(line)
            else:
                self.out.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        pending = getattr(self._lines, "text", "")
        if pending and not pending.startswith('{"_aws"'):
            self.out.write(pending)
            self._lines.text = ""
        self.out.flush()

    def _record(self, line: str) -> None:
        try:
            doc = json.loads(line)
            directives = doc["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            for directive in directives:
                namespace = str(directive.get("Namespace", ""))
                for dims in directive.get("Dimensions") or [[]]:
                    key_dims = tuple((str(d), str(doc.get(d, ""))) for d in dims)
                    for metric in directive.get("Metrics", []):
                        name = str(metric["Name"])
                        values = doc.get(name, [])
                        for value in values if isinstance(values, list) else [values]:
                            key = (namespace, name, key_dims)
                            series = self._series.setdefault(
                                key, Series(str(metric.get("Unit", "None")))
                            )
                            series.add(float(value))

    def bytes_seen(self) -> dict[str, int]:
        """Bytes of log lines and of EMF lines seen so far (CloudWatch Logs ingests both)."""
        with self._lock:
            return dict(self._bytes)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every metric seen: namespace, name, dimensions and its aggregate."""
        with self._lock:
            return [
                {
                    "namespace": namespace,
                    "name": name,
                    "dimensions": dict(dims),
                    **series.summary(),
                }
                for (namespace, name, dims), series in sorted(self._series.items())
            ]

    def total(self, name: str, **dimensions: str) -> float:
        """The sum of a metric over every dimension set that includes `dimensions`."""
        return float(
            sum(
                m["sum"]
                for m in self.snapshot()
                if m["name"] == name and dimensions.items() <= m["dimensions"].items()
            )
        )
