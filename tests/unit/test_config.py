"""Settings are read once and checked: a bad variable stops the container with its name."""

from __future__ import annotations

import pytest

from engine.config import PoolConfig, Settings
from engine.errors import ConfigError
from engine.orders import explorer_link


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
