"""Configuration: the one place that names every setting, read from the environment and validated
once per container (`Settings.from_env()` in each handler's init), then passed to what needs it.

Every AWS endpoint can be overridden (`*_ENDPOINT_URL`) so the same code talks to AWS, moto's
server, the local gateway or LocalStack.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from urllib.parse import urlsplit

from engine import base58
from engine.errors import ConfigError

T = TypeVar("T")
VENUE_NAMES = ("raydium_cpmm", "meteora_damm_v2")
CLUSTERS = ("devnet", "testnet", "mainnet-beta", "custom")
# One getMultipleAccounts reads at most 100 accounts: a CPMM pool needs 4 (itself, its config and
# two vaults), and the mints and the Clock take 3 more, so 24 pools still fit in one read.
MAX_POOLS_PER_PAIR_LIMIT = 24


@dataclass(frozen=True)
class PoolConfig:
    """One pool the router may trade on: which venue's math and layout apply, and where it is."""

    venue: str  # "raydium_cpmm" | "meteora_damm_v2"
    address: str  # base58 pool state account
    # The other accounts a quote of this pool reads (vaults, config), when already known (the
    # pool cache remembers them), so a container's first quote needs no call to learn them.
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variable:
    """One environment variable the settings read: its meaning and default, as the docs show them
    (docs/snippets/configuration.md is generated from VARIABLES; `_Reader` reads no other)."""

    name: str
    meaning: str
    default: str


VARIABLES: tuple[Variable, ...] = (
    Variable("DATABASE_URL", "Postgres URL (local)", "found or embedded by `make run`"),
    Variable(
        "DB_HOST",
        "RDS Proxy endpoint (verify-full TLS, password re-read on rotation)",
        "set by the template",
    ),
    Variable("DB_PORT", "its port", "5432"),
    Variable("DB_NAME", "the database", "orders"),
    Variable(
        "DB_SECRET_ARN",
        "this function's own login secret (the master secret for the migrate function only)",
        "set by the template",
    ),
    Variable(
        "DB_ROLE_SECRETS",
        "JSON `{role: secret ARN}`: the migrate function sets each function role's password",
        "set by the template",
    ),
    Variable(
        "FIRST_API_KEY_SECRET_ARN",
        "where the migrate function stores the first API key",
        "set by the template",
    ),
    Variable("DB_POOL_MAX", "connections per container", "4"),
    Variable(
        "DB_POOL_TIMEOUT",
        "seconds to wait for a connection before answering 503 / retrying later",
        "5",
    ),
    Variable("ORDERS_QUEUE_URL", "the orders queue", "set by template / stack"),
    Variable(
        "ORDERS_DLQ_ARN",
        "the orders DLQ: records from it are settled, not executed",
        "set by template / stack",
    ),
    Variable(
        "SQS_ENDPOINT_URL",
        "an SQS endpoint override (locally LocalStack's; one that is set wins)",
        "LocalStack's (local), unset (AWS)",
    ),
    Variable(
        "SECRETS_ENDPOINT_URL",
        "a Secrets Manager endpoint override (locally LocalStack's; one that is set wins)",
        "LocalStack's (local), unset (AWS)",
    ),
    Variable("WS_URL", "public WebSocket URL returned as `wsUrl`", "set by template / stack"),
    Variable(
        "CONSOLE_API_ORIGIN",
        "the HTTP API the console calls when it is not the page's own origin",
        "unset",
    ),
    Variable(
        "WS_MANAGEMENT_ENDPOINT",
        "API Gateway management API endpoint (local: the gateway)",
        "derived from the WS event",
    ),
    Variable("SOLANA_RPC_URL", "JSON-RPC endpoint", "https://api.devnet.solana.com"),
    Variable(
        "SOLANA_RPC_URL_SECRET_ARN",
        "a secret holding the RPC provider's URL (it carries an API key), read at start-up"
        " instead of `SOLANA_RPC_URL` (`SolanaRpcUrlSecretArn`)",
        "unset",
    ),
    Variable(
        "SOLANA_CLUSTER",
        "cluster for explorer links and the `USDC` symbol (devnet: Circle's devnet mint,"
        " mainnet-beta: its mainnet mint, testnet: refused): " + " | ".join(CLUSTERS),
        "devnet",
    ),
    Variable(
        "EXPLORER_RPC_URL",
        "the RPC URL explorer links name for a custom cluster (else the RPC URL only when it is"
        " a loopback address)",
        "unset",
    ),
    Variable(
        "WALLET_SECRET_ARN",
        "the signing key's secret in Secrets Manager (the local stack stores its key in"
        " LocalStack's and sets this)",
        "set by the template / the stack",
    ),
    Variable(
        "WALLET_ADDRESS_SECRET_ARN",
        "the watcher's: the wallet secret whose `public-key` tag names the wallet, for"
        " `WalletBalance` (never its value)",
        "the wallet secret (template, local stack)",
    ),
    Variable(
        "VENUE_POOLS",
        'optional allow-list: JSON list of `{"venue": ' + " \\| ".join(VENUE_NAMES) + ","
        ' "address"}`, the only pools routed (needs no `getProgramAccounts`); unset or `[]`:'
        " every pool discovery finds",
        "[]",
    ),
    Variable(
        "POOL_REFRESH_SECONDS",
        "a pair's cached pool list (and allow-listed pools' reserves) is read from the chain"
        " again once older than this",
        "300",
    ),
    Variable(
        "MIN_POOL_LIQUIDITY",
        "liquidity floor in output-token units; a pool holding less is skipped"
        " `below_min_liquidity` (0: only empty pools)",
        "0",
    ),
    Variable("POOL_DENY_LIST", "pool addresses never routed (comma- or space-separated)", "unset"),
    Variable(
        "MAX_POOLS_PER_PAIR",
        f"pools quoted per order, deepest in the output token first (1-{MAX_POOLS_PER_PAIR_LIMIT})",
        "10",
    ),
    Variable(
        "MAX_SPLIT_LEGS",
        "most pools one order's route may split across, in one transaction (1-4; 1: never"
        " split; 2 fits without an address lookup table; 3-4 use the wallet's lookup table, which"
        " the engine creates and extends, once it holds the route's pools)",
        "2",
    ),
    Variable(
        "MIN_SPLIT_GAIN_BPS",
        "a split is used only when it beats the best single pool (and the best split of fewer"
        " legs) by more than this, net of each extra swap's cost (basis points)",
        "1",
    ),
    Variable(
        "PRIORITY_FEE_MIN_MICRO_LAMPORTS",
        "the least compute-unit price (micro-lamports per CU) a swap pays",
        "1000",
    ),
    Variable(
        "PRIORITY_FEE_PERCENTILE",
        "which percentile of the recent non-zero priority fees over the pools' accounts a swap"
        " pays",
        "75",
    ),
    Variable(
        "PRIORITY_FEE_MAX_LAMPORTS",
        "the most one order's transaction pays for priority in total (limit x price)",
        "1000000",
    ),
    Variable(
        "PRIORITY_FEE_CACHE_SECONDS", "how long a priced fee is reused for the same pools", "5"
    ),
    Variable("COMPUTE_UNIT_MARGIN", "the CU limit over the simulation's units used", "0.1"),
    Variable("MAX_ATTEMPTS", "attempts per order", "3"),
    Variable("RETRY_BASE_SECONDS", "the first retry delay", "5"),
    Variable("CONFIRM_POLL_SECONDS", "status polling interval while landing", "0.4"),
    Variable("RESEND_SECONDS", "rebroadcast interval while landing", "2"),
    Variable("LAND_TIMEOUT_SECONDS", "per-invocation landing budget", "90"),
    Variable(
        "STATUS_QUEUE_URL",
        "status-events queue for notify; unset = fan out in-process",
        "set by template / stack",
    ),
    Variable(
        "MAX_TRIGGERS",
        "a limit order refused for price after triggering goes back to watching; it triggers at"
        " most this many times (1-100), then fails `too_many_triggers`",
        "5",
    ),
    Variable(
        "WATCH_TICK_SECONDS",
        "the watcher's tick inside its invocation (0.05-30; the local stack ticks every 0.25 s)",
        "1",
    ),
    Variable(
        "WATCH_RUN_SECONDS",
        "how long one watcher invocation ticks (unset: until 4 s before its timeout)",
        "unset",
    ),
    Variable(
        "WATCH_STOP_WHEN_IDLE",
        "end a watcher invocation after a tick that finds nothing watching (cuts its cost at"
        " rest; a new order may wait up to a minute for its first look)",
        "false",
    ),
)
DECLARED = frozenset(variable.name for variable in VARIABLES)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    db_secret_arn: str | None = None
    db_host: str | None = None
    db_port: int = 5432
    db_name: str = "orders"
    db_pool_max: int = 4
    db_pool_timeout: float = 5.0
    # The migrate function's (the owner's): each function role's login secret, as JSON
    # {role: secret ARN}, and the secret that holds the first API key (engine/provision.py).
    db_role_secrets: str | None = None
    first_api_key_secret_arn: str | None = None
    orders_queue_url: str | None = None
    orders_dlq_arn: str | None = None
    sqs_endpoint_url: str | None = None
    secrets_endpoint_url: str | None = None
    ws_url: str | None = None
    # CONSOLE_API_ORIGIN: the HTTP API the console calls when it is not the page's own origin
    # (a console served apart from its API). The console never takes an API from its URL.
    console_api_origin: str | None = None
    ws_management_endpoint: str | None = None
    solana_rpc_url: str = "https://api.devnet.solana.com"
    solana_cluster: str = "devnet"  # "devnet" | "testnet" | "mainnet-beta" | "custom"
    # The RPC URL explorer links name for a custom cluster (it reaches every client, so never
    # a provider URL with a key in it); by default the RPC URL only when it is a loopback one.
    explorer_rpc_url: str | None = None
    wallet_secret_arn: str | None = None
    # VENUE_POOLS: when set, the only pools the router may trade (an allow-list, which also
    # serves RPC providers that refuse getProgramAccounts); empty: every pool discovery finds.
    pools: tuple[PoolConfig, ...] = field(default_factory=tuple)
    pool_refresh_seconds: float = 300.0  # a pair's discovered pool list is this fresh at most
    min_pool_liquidity: Decimal = Decimal(0)  # in output-token units; below: below_min_liquidity
    pool_deny_list: frozenset[str] = frozenset()  # pools never routed, whatever finds them
    max_pools_per_pair: int = 10  # pools quoted per order, the deepest first
    # Split routes (execution/split.py): at most this many legs (1: never split; 2 fits a
    # transaction without an address lookup table; 3-4 only with the wallet's table,
    # execution/lookup.py), chosen only when the split beats the best single pool and the best
    # split of fewer legs by more than MIN_SPLIT_GAIN_BPS net of costs.
    max_split_legs: int = 2
    min_split_gain_bps: float = 1.0
    # The priority fee (execution/fees.py): a percentile of the cluster's recent fees over the
    # pools' accounts, at least the floor, at most the cap in total per order, cached briefly.
    priority_fee_min_micro_lamports: int = 1_000
    priority_fee_percentile: float = 75.0
    priority_fee_max_lamports: int = 1_000_000  # 0.001 SOL of priority per order at most
    priority_fee_cache_seconds: float = 5.0
    compute_unit_margin: float = 0.10  # the CU limit: the simulation's units used + this share
    max_attempts: int = 3
    retry_base_seconds: float = 5.0
    confirm_poll_seconds: float = 0.4
    resend_seconds: float = 2.0
    land_timeout_seconds: float = 90.0
    # Where status-event triggers go for the notify function.
    status_queue_url: str | None = None
    # Limit and sniper orders: a limit order refused for price after triggering goes back to
    # watching; it triggers at most this many times, then fails `too_many_triggers`.
    max_triggers: int = 5
    # The watcher's tick (seconds between two looks at every watched pool) inside one
    # invocation of the watch function.
    watch_tick_seconds: float = 1.0
    # How long one invocation of the watch function ticks; None: until a few seconds before
    # its timeout (the schedule's next invocation follows).
    watch_run_seconds: float | None = None
    # End an invocation after a tick that found nothing watching (the next minute's invocation
    # looks again): most of the watcher's cost at rest goes, a new order may wait up to a
    # minute for its first look.
    watch_stop_when_idle: bool = False
    # The wallet secret whose `public-key` tag names the wallet (the watcher's WalletBalance);
    # its value (the key) stays the execute function's.
    wallet_address_secret_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings `env` (default: os.environ) gives; ConfigError names a bad variable."""
        e = os.environ if env is None else env
        read = _Reader(e)
        settings = cls(
            database_url=read.text("DATABASE_URL"),
            db_secret_arn=read.text("DB_SECRET_ARN"),
            db_host=read.text("DB_HOST"),
            db_port=read.number("DB_PORT", int, 5432, low=1),
            db_name=read.text("DB_NAME") or "orders",
            db_pool_max=read.number("DB_POOL_MAX", int, 4, low=1),
            db_pool_timeout=read.number("DB_POOL_TIMEOUT", float, 5.0, low=0.1),
            db_role_secrets=read.text("DB_ROLE_SECRETS"),
            first_api_key_secret_arn=read.text("FIRST_API_KEY_SECRET_ARN"),
            orders_queue_url=read.text("ORDERS_QUEUE_URL"),
            orders_dlq_arn=read.text("ORDERS_DLQ_ARN"),
            sqs_endpoint_url=read.text("SQS_ENDPOINT_URL"),
            secrets_endpoint_url=read.text("SECRETS_ENDPOINT_URL"),
            ws_url=read.text("WS_URL"),
            console_api_origin=read.text("CONSOLE_API_ORIGIN"),
            ws_management_endpoint=read.text("WS_MANAGEMENT_ENDPOINT"),
            solana_rpc_url=read.text("SOLANA_RPC_URL") or "https://api.devnet.solana.com",
            solana_cluster=read.choice("SOLANA_CLUSTER", CLUSTERS, "devnet"),
            explorer_rpc_url=read.text("EXPLORER_RPC_URL"),
            wallet_secret_arn=read.text("WALLET_SECRET_ARN"),
            pools=parse_pools(read.get("VENUE_POOLS") or "[]"),
            pool_refresh_seconds=read.number("POOL_REFRESH_SECONDS", float, 300.0, low=0),
            min_pool_liquidity=read.amount("MIN_POOL_LIQUIDITY"),
            pool_deny_list=parse_addresses(read.get("POOL_DENY_LIST") or "", "POOL_DENY_LIST"),
            max_pools_per_pair=read.number(
                "MAX_POOLS_PER_PAIR", int, 10, low=1, high=MAX_POOLS_PER_PAIR_LIMIT
            ),
            max_split_legs=read.number("MAX_SPLIT_LEGS", int, 2, low=1, high=4),
            min_split_gain_bps=read.number("MIN_SPLIT_GAIN_BPS", float, 1.0, low=0),
            priority_fee_min_micro_lamports=read.number(
                "PRIORITY_FEE_MIN_MICRO_LAMPORTS", int, 1_000, low=0
            ),
            priority_fee_percentile=read.number(
                "PRIORITY_FEE_PERCENTILE", float, 75.0, low=0, high=100
            ),
            priority_fee_max_lamports=read.number(
                "PRIORITY_FEE_MAX_LAMPORTS", int, 1_000_000, low=0
            ),
            priority_fee_cache_seconds=read.number("PRIORITY_FEE_CACHE_SECONDS", float, 5.0, low=0),
            compute_unit_margin=read.number("COMPUTE_UNIT_MARGIN", float, 0.10, low=0, high=1),
            max_attempts=read.number("MAX_ATTEMPTS", int, 3, low=1),
            retry_base_seconds=read.number("RETRY_BASE_SECONDS", float, 5.0, low=0),
            confirm_poll_seconds=read.number("CONFIRM_POLL_SECONDS", float, 0.4, low=0.001),
            resend_seconds=read.number("RESEND_SECONDS", float, 2.0, low=0.001),
            land_timeout_seconds=read.number("LAND_TIMEOUT_SECONDS", float, 90.0, low=0.1),
            status_queue_url=read.text("STATUS_QUEUE_URL"),
            max_triggers=read.number("MAX_TRIGGERS", int, 5, low=1, high=100),
            watch_tick_seconds=read.number("WATCH_TICK_SECONDS", float, 1.0, low=0.05, high=30),
            watch_run_seconds=read.optional_number("WATCH_RUN_SECONDS", low=0.0),
            watch_stop_when_idle=read.flag("WATCH_STOP_WHEN_IDLE"),
            wallet_address_secret_arn=read.text("WALLET_ADDRESS_SECRET_ARN"),
        )
        return settings.with_rpc_url_secret(read.text("SOLANA_RPC_URL_SECRET_ARN"))

    def with_rpc_url_secret(self, arn: str | None) -> Settings:
        """SOLANA_RPC_URL_SECRET_ARN: the RPC provider's URL (it carries an API key) from Secrets
        Manager, read once at start-up, instead of SOLANA_RPC_URL (never logged or shown)."""
        if not arn:
            return self
        from engine.secrets import read_secret  # boto3: only functions that name a secret

        url = read_secret(arn, self).strip()
        if not url.startswith(("https://", "http://")):
            raise ConfigError(
                "the RPC URL secret does not hold an http(s) URL",
                field="SOLANA_RPC_URL_SECRET_ARN",
            )
        return replace(self, solana_rpc_url=url)

    @property
    def explorer_custom_url(self) -> str | None:
        """The RPC URL an explorer link may carry (`customUrl`): EXPLORER_RPC_URL, else the
        RPC URL when it is a loopback address (the local chain), else none."""
        if self.explorer_rpc_url:
            return self.explorer_rpc_url
        return self.solana_rpc_url if is_loopback_url(self.solana_rpc_url) else None

    def require(self, name: str) -> str:
        """A setting this function cannot work without (e.g. `orders_queue_url`)."""
        value = getattr(self, name)
        if not value:
            raise ConfigError(f"{name.upper()} is not set", field=name.upper())
        return str(value)


def parse_pools(raw: str) -> tuple[PoolConfig, ...]:
    """VENUE_POOLS: a JSON list of {"venue", "address"}."""
    try:
        items = json.loads(raw)
    except ValueError as exc:  # json.JSONDecodeError
        raise ConfigError(f"VENUE_POOLS is not JSON: {exc}", field="VENUE_POOLS") from None
    if not isinstance(items, list):
        raise ConfigError("VENUE_POOLS must be a JSON list", field="VENUE_POOLS")
    pools = []
    for item in items:
        if not isinstance(item, dict) or item.get("venue") not in VENUE_NAMES:
            raise ConfigError(
                f"each of VENUE_POOLS is {{'venue': one of {VENUE_NAMES}, 'address': ...}}",
                field="VENUE_POOLS",
            )
        if not base58.is_pubkey(str(item.get("address"))):
            raise ConfigError(
                f"VENUE_POOLS: {str(item.get('address'))[:60]!r} is not a base58 address",
                field="VENUE_POOLS",
            )
        pools.append(PoolConfig(venue=str(item["venue"]), address=str(item["address"])))
    return tuple(pools)


def parse_addresses(raw: str, name: str) -> frozenset[str]:
    """A list of base58 addresses separated by commas or whitespace (e.g. POOL_DENY_LIST)."""
    items = [item for item in re.split(r"[\s,]+", raw) if item]
    bad = [item for item in items if not base58.is_pubkey(item)]
    if bad:
        raise ConfigError(f"{name}: {bad[0][:60]!r} is not a base58 address", field=name)
    return frozenset(items)


class _Reader:
    """Reads and checks variables; an empty value counts as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def get(self, name: str) -> str | None:
        """The raw value of a declared variable (VARIABLES): an undeclared one is a bug."""
        if name not in DECLARED:
            raise ConfigError(f"{name} is read but not declared in engine.config.VARIABLES")
        return self.env.get(name)

    def text(self, name: str) -> str | None:
        return self.get(name) or None

    def number(
        self,
        name: str,
        kind: Callable[[str], T],
        default: T,
        *,
        low: float,
        high: float | None = None,
    ) -> T:
        raw = self.get(name)
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {raw[:40]!r}", field=name) from None
        if float(value) < low:  # type: ignore[arg-type]
            raise ConfigError(f"{name} must be at least {low}", field=name)
        if high is not None and float(value) > high:  # type: ignore[arg-type]
            raise ConfigError(f"{name} must be at most {high}", field=name)
        return value

    def flag(self, name: str) -> bool:
        """true/false (also 1/0, yes/no); unset: false."""
        raw = (self.get(name) or "false").strip().lower()
        if raw not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{name} must be true or false, not {raw[:20]!r}", field=name)
        return raw in ("true", "1", "yes")

    def optional_number(self, name: str, *, low: float) -> float | None:
        """A number of at least `low`, or None when unset."""
        if not self.get(name):
            return None
        return self.number(name, float, 0.0, low=low)

    def amount(self, name: str) -> Decimal:
        """A decimal amount of at least 0 (unset: 0)."""
        raw = (self.get(name) or "").strip()
        if not raw:
            return Decimal(0)
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ConfigError(
                f"{name} must be a decimal number, not {raw[:40]!r}", field=name
            ) from None
        if not value.is_finite() or value < 0:
            raise ConfigError(f"{name} must be a decimal number of at least 0", field=name)
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = self.get(name) or default
        if raw not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}", field=name)
        return raw


def is_loopback_url(url: str) -> bool:
    """True for http(s)://localhost... and loopback IPs (127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
