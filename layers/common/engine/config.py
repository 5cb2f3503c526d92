"""Configuration read from the environment: the one place that names every setting.

Every AWS endpoint can be overridden (`*_ENDPOINT_URL`) so the same code talks to AWS, moto's
server, the local gateway or LocalStack.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class PoolConfig:
    """One pool the router may trade on: which venue's math and layout apply, and where it is."""

    venue: str  # "raydium_cpmm" | "meteora_damm_v2"
    address: str  # base58 pool state account


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    db_secret_arn: str | None
    db_host: str | None
    db_port: int
    db_name: str
    db_pool_max: int
    db_auto_migrate: bool
    db_pool_timeout: float
    orders_queue_url: str | None
    orders_dlq_arn: str | None
    sqs_endpoint_url: str | None
    secrets_endpoint_url: str | None
    ws_url: str | None
    ws_management_endpoint: str | None
    solana_rpc_url: str
    solana_cluster: str  # "devnet" | "mainnet-beta" | "custom" (explorer links)
    wallet_secret_arn: str | None
    pools: tuple[PoolConfig, ...] = field(default_factory=tuple)
    priority_fee_micro_lamports: int = 1_000
    max_attempts: int = 3
    retry_base_seconds: float = 5.0
    confirm_poll_seconds: float = 0.4
    resend_seconds: float = 2.0
    land_timeout_seconds: float = 90.0
    # Status events go here for notify to fan out; unset = fan out in-process (local, tests).
    status_queue_url: str | None = None


def _pools(raw: str | None) -> tuple[PoolConfig, ...]:
    if not raw:
        return ()
    return tuple(PoolConfig(venue=p["venue"], address=p["address"]) for p in json.loads(raw))


@lru_cache(maxsize=1)
def settings() -> Settings:
    env = os.environ
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        db_secret_arn=env.get("DB_SECRET_ARN") or None,
        db_host=env.get("DB_HOST") or None,
        db_port=int(env.get("DB_PORT", "5432")),
        db_name=env.get("DB_NAME", "orders"),
        db_pool_max=int(env.get("DB_POOL_MAX", "4")),
        db_auto_migrate=env.get("DB_AUTO_MIGRATE", "").lower() in ("1", "true", "yes"),
        db_pool_timeout=float(env.get("DB_POOL_TIMEOUT", "5")),
        orders_queue_url=env.get("ORDERS_QUEUE_URL") or None,
        orders_dlq_arn=env.get("ORDERS_DLQ_ARN") or None,
        sqs_endpoint_url=env.get("SQS_ENDPOINT_URL") or None,
        secrets_endpoint_url=env.get("SECRETS_ENDPOINT_URL") or None,
        ws_url=env.get("WS_URL") or None,
        ws_management_endpoint=env.get("WS_MANAGEMENT_ENDPOINT") or None,
        solana_rpc_url=env.get("SOLANA_RPC_URL", "https://api.devnet.solana.com"),
        solana_cluster=env.get("SOLANA_CLUSTER", "devnet"),
        wallet_secret_arn=env.get("WALLET_SECRET_ARN") or None,
        pools=_pools(env.get("VENUE_POOLS")),
        priority_fee_micro_lamports=int(env.get("PRIORITY_FEE_MICRO_LAMPORTS", "1000")),
        max_attempts=int(env.get("MAX_ATTEMPTS", "3")),
        retry_base_seconds=float(env.get("RETRY_BASE_SECONDS", "5")),
        confirm_poll_seconds=float(env.get("CONFIRM_POLL_SECONDS", "0.4")),
        resend_seconds=float(env.get("RESEND_SECONDS", "2")),
        land_timeout_seconds=float(env.get("LAND_TIMEOUT_SECONDS", "90")),
        status_queue_url=env.get("STATUS_QUEUE_URL") or None,
    )
