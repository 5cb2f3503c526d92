"""Settings are read once and checked: a bad variable stops the container with its name."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.config import PoolConfig, Settings
from engine.errors import ConfigError
from engine.orders import explorer_link

POOL = "2AzU8PsLsjzk27A3hu88EgV1GdS221BwM9bvKdssCYbo"


def test_defaults_and_values_are_read() -> None:
    cfg = Settings.from_env(
        {
            "DB_POOL_MAX": "2",
            "SOLANA_CLUSTER": "custom",
            "VENUE_POOLS": f'[{{"venue": "raydium_cpmm", "address": "{POOL}"}}]',
            "CONFIRM_POLL_SECONDS": "0.05",
        }
    )
    assert cfg.db_pool_max == 2
    assert cfg.solana_cluster == "custom"
    assert cfg.pools == (PoolConfig("raydium_cpmm", POOL),)
    assert cfg.confirm_poll_seconds == 0.05
    assert Settings.from_env({}).max_attempts == 3


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"DB_POOL_MAX": "many"}, "DB_POOL_MAX"),
        ({"DB_POOL_MAX": "0"}, "DB_POOL_MAX"),
        ({"SOLANA_CLUSTER": "localnet"}, "SOLANA_CLUSTER"),
        ({"VENUE_POOLS": "{"}, "VENUE_POOLS"),
        ({"VENUE_POOLS": '{"venue": "raydium_cpmm"}'}, "VENUE_POOLS"),
        ({"VENUE_POOLS": '[{"venue": "uniswap", "address": "x"}]'}, "VENUE_POOLS"),
        ({"VENUE_POOLS": '[{"venue": "raydium_cpmm", "address": "P1"}]'}, "VENUE_POOLS"),
        ({"MAX_ATTEMPTS": "-1"}, "MAX_ATTEMPTS"),
        ({"POOL_REFRESH_SECONDS": "-5"}, "POOL_REFRESH_SECONDS"),
        ({"MIN_POOL_LIQUIDITY": "lots"}, "MIN_POOL_LIQUIDITY"),
        ({"MIN_POOL_LIQUIDITY": "-1"}, "MIN_POOL_LIQUIDITY"),
        ({"MIN_POOL_LIQUIDITY": "NaN"}, "MIN_POOL_LIQUIDITY"),
        ({"POOL_DENY_LIST": "not-an-address"}, "POOL_DENY_LIST"),
        ({"MAX_POOLS_PER_PAIR": "0"}, "MAX_POOLS_PER_PAIR"),
        ({"MAX_POOLS_PER_PAIR": "25"}, "MAX_POOLS_PER_PAIR"),
    ],
)
def test_a_bad_variable_is_named(env: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.field == field
    assert field in info.value.message


def test_a_required_setting_that_is_missing_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({}).require("status_queue_url")
    assert info.value.field == "STATUS_QUEUE_URL"


@pytest.mark.parametrize(
    ("env", "link"),
    [
        # A provider URL with a key in it never reaches clients (it was embedded before).
        (
            {
                "SOLANA_CLUSTER": "custom",
                "SOLANA_RPC_URL": "https://rpc.example.com/?api-key=s3cr3t",
            },
            "https://explorer.solana.com/tx/SIG?cluster=custom",
        ),
        (
            {
                "SOLANA_CLUSTER": "custom",
                "SOLANA_RPC_URL": "https://rpc.example.com/?api-key=s3cr3t",
                "EXPLORER_RPC_URL": "https://public.example.com",
            },
            "https://explorer.solana.com/tx/SIG?cluster=custom&customUrl=https%3A%2F%2Fpublic.example.com",
        ),
        # The local chain: a loopback URL is what the explorer needs to find it.
        (
            {"SOLANA_CLUSTER": "custom", "SOLANA_RPC_URL": "http://127.0.0.1:8899"},
            "https://explorer.solana.com/tx/SIG?cluster=custom&customUrl=http%3A%2F%2F127.0.0.1%3A8899",
        ),
        (
            {"SOLANA_CLUSTER": "custom", "SOLANA_RPC_URL": "http://localhost:8899"},
            "https://explorer.solana.com/tx/SIG?cluster=custom&customUrl=http%3A%2F%2Flocalhost%3A8899",
        ),
        (
            {"SOLANA_CLUSTER": "custom", "SOLANA_RPC_URL": "http://[::1]:8899"},
            "https://explorer.solana.com/tx/SIG?cluster=custom&customUrl=http%3A%2F%2F%5B%3A%3A1%5D%3A8899",
        ),
        # A host that only looks local is not loopback.
        (
            {"SOLANA_CLUSTER": "custom", "SOLANA_RPC_URL": "http://127.0.0.1.evil.example:8899"},
            "https://explorer.solana.com/tx/SIG?cluster=custom",
        ),
        (
            {
                "SOLANA_CLUSTER": "devnet",
                "SOLANA_RPC_URL": "https://devnet.helius-rpc.com/?api-key=k",
            },
            "https://explorer.solana.com/tx/SIG?cluster=devnet",
        ),
        (
            {"SOLANA_CLUSTER": "mainnet-beta", "SOLANA_RPC_URL": "https://x.example/?api-key=k"},
            "https://explorer.solana.com/tx/SIG",
        ),
    ],
)
def test_explorer_links_carry_an_rpc_url_only_when_it_is_safe_to_show(
    env: dict[str, str], link: str
) -> None:
    cfg = Settings.from_env(env)
    assert explorer_link("SIG", cfg.solana_cluster, cfg.explorer_custom_url) == link


def test_the_discovery_settings_have_defaults_and_are_read() -> None:
    defaults = Settings.from_env({})
    assert defaults.pools == ()  # no VENUE_POOLS: every pool discovery finds
    assert defaults.pool_refresh_seconds == 300
    assert defaults.min_pool_liquidity == 0
    assert defaults.pool_deny_list == frozenset()
    assert defaults.max_pools_per_pair == 10
    pool_1 = POOL
    pool_2 = "So11111111111111111111111111111111111111112"
    cfg = Settings.from_env(
        {
            "POOL_REFRESH_SECONDS": "60",
            "MIN_POOL_LIQUIDITY": "2500.5",
            "POOL_DENY_LIST": f"{pool_1}, {pool_2}\n",
            "MAX_POOLS_PER_PAIR": "24",
        }
    )
    assert cfg.pool_refresh_seconds == 60
    assert cfg.min_pool_liquidity == Decimal("2500.5")
    assert cfg.pool_deny_list == {pool_1, pool_2}
    assert cfg.max_pools_per_pair == 24


def test_the_watcher_settings_are_read_and_checked() -> None:
    from engine.config import Settings
    from engine.errors import ConfigError

    cfg = Settings.from_env(
        {
            "MAX_TRIGGERS": "3",
            "WATCH_TICK_SECONDS": "0.5",
            "WATCH_RUN_SECONDS": "20",
            "WATCH_STOP_WHEN_IDLE": "true",
        }
    )
    assert (cfg.max_triggers, cfg.watch_tick_seconds) == (3, 0.5)
    assert (cfg.watch_run_seconds, cfg.watch_stop_when_idle) == (20.0, True)
    defaults = Settings.from_env({})
    assert (defaults.max_triggers, defaults.watch_tick_seconds) == (5, 1.0)
    assert (defaults.watch_run_seconds, defaults.watch_stop_when_idle) == (None, False)
    for name, bad in (
        ("MAX_TRIGGERS", "0"),
        ("MAX_TRIGGERS", "many"),
        ("WATCH_TICK_SECONDS", "0.001"),
        ("WATCH_STOP_WHEN_IDLE", "maybe"),
    ):
        with pytest.raises(ConfigError) as refused:
            Settings.from_env({name: bad})
        assert refused.value.field == name
