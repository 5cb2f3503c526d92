"""Traces and metrics with Powertools, for every function and the library they call.

- `metrics`: Powertools Metrics (CloudWatch EMF: one JSON line on stdout per flush, which Lambda
  ships to CloudWatch Logs and CloudWatch turns into metrics). Every Metrics instance shares one
  metric set, so the library adds metrics here and each handler's `@metrics.log_metrics`
  flushes them. The local stack reads the same lines (local/metrics.py).
- `tracer()`: Powertools Tracer (X-Ray) when tracing can be on, i.e. in Lambda and not disabled
  (`POWERTOOLS_TRACE_DISABLED`); elsewhere a stand-in with the surface we use that does
  nothing. Powertools' Tracer imports the X-Ray SDK even when disabled (about 180 ms measured
  here), which local runs and tests would pay for nothing.
- `span(name)` / `async_span(name)`: an X-Ray subsegment around one call to Postgres, SQS or the
  Solana RPC (botocore calls are also traced by the Tracer's own patching).

The metric names and what each means: engine/metrics.py (namespace `SolanaOrderEngine`,
dimension `service`).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from typing import Any, Protocol, TypeVar, cast

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "SolanaOrderEngine"
metrics = Metrics(namespace=NAMESPACE)
# A read route or a health check has no metric to publish: that is normal, not worth a warning
# on every such invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")
F = TypeVar("F", bound=Callable[..., Any])


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, seconds: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=round(seconds * 1000, 3))


def count_by(name: str, dimension: str, value: str) -> None:
    """A count with a dimension of its own (one EMF line now): e.g. failures by code."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as one:
        one.add_dimension(name=dimension, value=value)


# -- tracing ----------------------------------------------------------------------------------


def tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true")
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not disabled


class Tracing(Protocol):
    """The part of Powertools' Tracer the functions use."""

    def capture_lambda_handler(self, lambda_handler: F) -> F: ...


class _Off:
    """The Tracer's surface we use, doing nothing (tracing off)."""

    def capture_lambda_handler(self, handler: F) -> F:
        return handler

    def put_annotation(self, key: str, value: str | int | bool) -> None:
        return None


@lru_cache(maxsize=1)
def tracer() -> Tracing:
    """The process's Tracer (Powertools), or the stand-in when tracing is off."""
    if not tracing_enabled():
        return _Off()
    from aws_lambda_powertools import Tracer

    return cast(Tracing, Tracer())


def _provider() -> Any:
    """The Tracer's X-Ray provider (subsegments); only called while tracing is on."""
    return tracer().provider  # type: ignore[attr-defined]


@contextmanager
def span(name: str) -> Iterator[None]:
    if not tracing_enabled():
        yield
        return
    with _provider().in_subsegment(name):
        yield


@asynccontextmanager
async def async_span(name: str) -> AsyncIterator[None]:
    if not tracing_enabled():
        yield
        return
    async with _provider().in_subsegment_async(name):
        yield


def traced(name: str) -> Callable[[F], F]:
    """Decorate a (sync) method: a subsegment `name` around each call while tracing is on."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            if not tracing_enabled():
                return fn(*args, **kwargs)
            with _provider().in_subsegment(name):
                return fn(*args, **kwargs)

        return call  # type: ignore[return-value]

    return decorate
