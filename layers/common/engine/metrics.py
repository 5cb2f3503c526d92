"""Every metric the engine emits (CloudWatch EMF, namespace `SolanaOrderEngine`, dimension
`service`): one constant per name, used by the code that emits it; template.yaml's dashboard and
alarms name them (tests/unit/test_metric_names.py holds both to this list) and the docs list them
from here (scripts/docs_gen.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    meaning: str


class Metric:
    """The metric names (`observability.count(Metric.ORDER_CONFIRMED)`)."""

    ORDER_ACCEPTED = "OrderAccepted"
    ORDER_CONFIRMED = "OrderConfirmed"
    ORDER_FAILED = "OrderFailed"
    ORDER_FAILED_BY_CODE = "OrderFailedByCode"
    INTERNAL_ERROR = "InternalError"
    ROUTING_TIME = "RoutingTime"
    BUILDING_TIME = "BuildingTime"
    LAND_TIME = "LandTime"
    ORDER_TIME = "OrderTime"
    QUOTES_SKIPPED = "QuotesSkipped"
    POOLS_DISCOVERED = "PoolsDiscovered"
    DISCOVERY_REFUSED = "DiscoveryRefused"
    NOTIFY_LAG = "NotifyLag"
    FRAMES_POSTED = "FramesPosted"
    API_KEY_ALLOWED = "ApiKeyAllowed"
    API_KEY_DENIED = "ApiKeyDenied"
    API_KEY_MISSING = "ApiKeyMissing"
    WALLET_BALANCE = "WalletBalance"
    WATCH_TICK = "WatchTick"
    ORDERS_WATCHED = "OrdersWatched"
    ORDERS_TRIGGERED = "OrdersTriggered"
    ORDERS_EXPIRED = "OrdersExpired"
    NEW_POOLS_SEEN = "NewPoolsSeen"
    ORDER_REWATCHED = "OrderRewatched"


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo(Metric.ORDER_ACCEPTED, "Count", "orders the submit and ws_connect functions stored"),
    MetricInfo(Metric.ORDER_CONFIRMED, "Count", "an order confirmed (the executor)"),
    MetricInfo(Metric.ORDER_FAILED, "Count", "an order failed (the executor)"),
    MetricInfo(
        Metric.ORDER_FAILED_BY_CODE, "Count", "the failure code of each failed order (dim `code`)"
    ),
    MetricInfo(
        Metric.INTERNAL_ERROR,
        "Count",
        "an unexpected exception while executing or watching (a bug; the order ends"
        " `internal_error`, the trace is logged)",
    ),
    MetricInfo(Metric.ROUTING_TIME, "Milliseconds", "time spent quoting"),
    MetricInfo(Metric.BUILDING_TIME, "Milliseconds", "time spent building and signing"),
    MetricInfo(Metric.LAND_TIME, "Milliseconds", "`submitted` -> `confirmed` (the chain's part)"),
    MetricInfo(Metric.ORDER_TIME, "Milliseconds", "order created -> `confirmed`"),
    MetricInfo(
        Metric.QUOTES_SKIPPED, "Count", "a pool that could not be quoted, and why (dim `reason`)"
    ),
    MetricInfo(
        Metric.POOLS_DISCOVERED, "Count", "pools a discovery of a pair found (getProgramAccounts)"
    ),
    MetricInfo(Metric.DISCOVERY_REFUSED, "Count", "the RPC endpoint refused getProgramAccounts"),
    MetricInfo(Metric.NOTIFY_LAG, "Milliseconds", "a status event committed -> its frame posted"),
    MetricInfo(Metric.FRAMES_POSTED, "Count", "frames the notify function posted"),
    MetricInfo(Metric.API_KEY_ALLOWED, "Count", "the authorizer let a key in"),
    MetricInfo(Metric.API_KEY_DENIED, "Count", "the authorizer refused a wrong or revoked key"),
    MetricInfo(Metric.API_KEY_MISSING, "Count", "the authorizer got no key at all"),
    MetricInfo(
        Metric.WALLET_BALANCE,
        "None (SOL)",
        "the signing wallet's balance (the execute function after a batch, at most once a"
        " minute per container, and the watcher every minute; WalletLowBalanceAlarm)",
    ),
    MetricInfo(
        Metric.WATCH_TICK,
        "Milliseconds",
        "one tick of the watcher (read, price, trigger); WatcherStalledAlarm fires when none is"
        " recorded",
    ),
    MetricInfo(Metric.ORDERS_WATCHED, "Count", "orders watching at a tick (one datapoint a tick)"),
    MetricInfo(Metric.ORDERS_TRIGGERED, "Count", "limit and sniper orders the watcher triggered"),
    MetricInfo(Metric.ORDERS_EXPIRED, "Count", "limit and sniper orders the watcher expired"),
    MetricInfo(
        Metric.NEW_POOLS_SEEN, "Count", "pools of a sniper order's pair seen the first time"
    ),
    MetricInfo(
        Metric.ORDER_REWATCHED, "Count", "a limit order refused for price, back to watching"
    ),
)
