"""Settings are read once and checked: a bad variable stops the container with its name."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.config import PoolConfig, Settings
from engine.errors import ConfigError

POOL = "5GrnGgPTUv4FoYyQgf1i3yV5DKMshNUJnjHJL8rsVxMG"


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
