"""SolanaRpcUrlSecretArn: a provider's RPC URL (it carries an API key) comes from Secrets
Manager (LocalStack's here) at start-up, never from the environment; a secret that holds no
URL is refused without showing what it holds."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Any

import boto3
import pytest

from engine import secrets as engine_secrets
from engine.config import Settings
from engine.errors import ConfigError
from engine.tokens import USDC_DEVNET_MINT, USDC_MAINNET_MINT, registry


@pytest.fixture
def sm(localstack: str) -> Any:
    engine_secrets._client.cache_clear()
    engine_secrets._provider.cache_clear()
    yield boto3.client("secretsmanager", endpoint_url=localstack, region_name="us-east-1")
    engine_secrets._client.cache_clear()
    engine_secrets._provider.cache_clear()


def test_the_provider_url_is_read_from_its_secret(sm: Any, localstack: str) -> None:
    url = f"https://devnet.provider.example/?api-key={secrets.token_hex(8)}"
    arn = sm.create_secret(Name=f"rpc-{secrets.token_hex(4)}", SecretString=url)["ARN"]
    env = {
        "SOLANA_RPC_URL": "https://api.devnet.solana.com",
        "SOLANA_RPC_URL_SECRET_ARN": arn,
        "SECRETS_ENDPOINT_URL": localstack,
    }
    assert Settings.from_env(env).solana_rpc_url == url
    # Unset: the public endpoint of SOLANA_RPC_URL.
    plain = Settings.from_env({**env, "SOLANA_RPC_URL_SECRET_ARN": ""})
    assert plain.solana_rpc_url == "https://api.devnet.solana.com"


def test_a_secret_without_a_url_is_refused_without_showing_it(sm: Any, localstack: str) -> None:
    value = secrets.token_hex(16)
    arn = sm.create_secret(Name=f"rpc-{secrets.token_hex(4)}", SecretString=value)["ARN"]
    env = {"SOLANA_RPC_URL_SECRET_ARN": arn, "SECRETS_ENDPOINT_URL": localstack}
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert refused.value.field == "SOLANA_RPC_URL_SECRET_ARN"
    assert value not in str(refused.value)


def test_usdc_is_the_clusters_own_mint_or_refused() -> None:
    assert registry("devnet")["USDC"].mint == USDC_DEVNET_MINT
    assert registry("custom")["USDC"].mint == USDC_DEVNET_MINT  # the local chain's
    assert registry("mainnet-beta")["USDC"].mint == USDC_MAINNET_MINT
    assert "USDC" not in registry("testnet")  # no Circle mint there: name the mint instead
    assert all(r["SOL"].decimals == 9 for r in map(registry, ("devnet", "testnet")))


@pytest.mark.parametrize(
    ("cluster", "answer"),
    [
        ("mainnet-beta", USDC_MAINNET_MINT),
        ("devnet", USDC_DEVNET_MINT),
        ("testnet", "InvalidRequest: tokenIn is not a known token (SOL)"),
    ],
)
def test_an_order_naming_usdc_gets_the_mint_of_the_functions_cluster(
    cluster: str, answer: str
) -> None:
    """What submit and ws_connect see: SOLANA_CLUSTER as the template sets it, read at start."""
    code = (
        "from engine.orders import resolve_token\n"
        "try:\n    print(resolve_token('USDC', 'tokenIn').mint)\n"
        "except Exception as e:\n    print(f'{type(e).__name__}: {e}')\n"
    )
    env = {**os.environ, "SOLANA_CLUSTER": cluster}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().startswith(answer)
