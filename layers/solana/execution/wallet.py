"""The signing wallet. Its secret comes from Secrets Manager (cloud, LocalStack) or
WALLET_PRIVATE_KEY (a local throwaway key) and never leaves this module: the Wallet's repr and
str show only the public key."""

from __future__ import annotations

import json
import os

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from engine.config import Settings
from engine.errors import ConfigError
from engine.secrets import PUBLIC_KEY_TAG, read_secret, secret_tag

WALLET_SECRET_MAX_AGE = 3600


class Wallet:
    __slots__ = ("_keypair",)

    def __init__(self, keypair: Keypair) -> None:
        self._keypair = keypair

    @property
    def pubkey(self) -> Pubkey:
        return self._keypair.pubkey()

    @property
    def signer(self) -> Keypair:
        return self._keypair

    def __repr__(self) -> str:  # solders' Keypair str() is the base58 secret: never show it
        return f"Wallet({self.pubkey})"

    __str__ = __repr__


def parse_secret(secret: str) -> Keypair:
    """Accept the two encodings wallets export: base58 string, or a JSON array of 64 bytes."""
    text = secret.strip()
    try:
        if text.startswith("["):
            return Keypair.from_bytes(bytes(json.loads(text)))
        return Keypair.from_base58_string(text)
    except (ValueError, TypeError):
        # Say nothing of the value: a partly valid secret in a log is still a leak.
        raise ConfigError("the wallet secret is not a base58 key or a 64-byte JSON array") from None


def load_wallet(cfg: Settings) -> Wallet:
    """The wallet the settings name: WALLET_SECRET_ARN (Secrets Manager, at
    SECRETS_ENDPOINT_URL when set), else WALLET_PRIVATE_KEY."""
    if cfg.wallet_secret_arn:
        return Wallet(
            parse_secret(read_secret(cfg.wallet_secret_arn, cfg, max_age=WALLET_SECRET_MAX_AGE))
        )
    local = os.environ.get("WALLET_PRIVATE_KEY")
    if not local:
        raise ConfigError(
            "set WALLET_SECRET_ARN (cloud) or WALLET_PRIVATE_KEY (local)",
            field="WALLET_SECRET_ARN",
        )
    return Wallet(parse_secret(local))


def wallet_address(cfg: Settings) -> Pubkey | None:
    """The wallet's public key without its secret: the `public-key` tag of the secret that
    WALLET_ADDRESS_SECRET_ARN names (None when unset or not tagged yet)."""
    if not cfg.wallet_address_secret_arn:
        return None
    tag = secret_tag(cfg.wallet_address_secret_arn, PUBLIC_KEY_TAG, cfg)
    try:
        return Pubkey.from_string(tag) if tag else None
    except ValueError:
        raise ConfigError(f"the wallet secret's {PUBLIC_KEY_TAG} tag is not a public key") from None
