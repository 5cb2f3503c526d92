"""Settings are read once and checked: a bad variable stops the container with its name."""

from __future__ import annotations

import pytest

from engine.config import PoolConfig, Settings
from engine.errors import ConfigError


def test_defaults_and_values_are_read() -> None:
    cfg = Settings.from_env(
        {
            "DB_POOL_MAX": "2",
            "SOLANA_CLUSTER": "custom",
            "VENUE_POOLS": '[{"venue": "raydium_cpmm", "address": "P1"}]',
            "CONFIRM_POLL_SECONDS": "0.05",
        }
    )
    assert cfg.db_pool_max == 2
    assert cfg.solana_cluster == "custom"
    assert cfg.pools == (PoolConfig("raydium_cpmm", "P1"),)
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
        ({"MAX_ATTEMPTS": "-1"}, "MAX_ATTEMPTS"),
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
