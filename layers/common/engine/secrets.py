"""Secrets Manager reads (Powertools parameters, cached), at the endpoint the settings name:
AWS, LocalStack or moto. What is read is never logged or shown."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from engine.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from engine.config import Settings


@lru_cache(maxsize=4)
def _client(endpoint_url: str | None) -> SecretsManagerClient:
    return boto3.client("secretsmanager", endpoint_url=endpoint_url)


@lru_cache(maxsize=4)
def _provider(endpoint_url: str | None) -> SecretsProvider:
    return SecretsProvider(boto3_client=_client(endpoint_url))


def read_secret(arn: str, cfg: Settings, *, max_age: int = 300, fresh: bool = False) -> str:
    """The secret's string value (cached `max_age` seconds; `fresh` bypasses the cache, e.g.
    after the database refused a rotated password)."""
    value = _provider(cfg.secrets_endpoint_url).get(arn, max_age=max_age, force_fetch=fresh)
    if isinstance(value, bytes):
        return value.decode()
    if not isinstance(value, str) or not value:
        raise ConfigError(f"the secret {arn} is empty")
    return value


def secret_value_or_none(arn: str, cfg: Settings) -> str | None:
    """The secret's current value, uncached; None when it has none yet (a secret the template
    created empty, for a value made after deploy)."""
    client = _client(cfg.secrets_endpoint_url)
    try:
        value = client.get_secret_value(SecretId=arn).get("SecretString")
    except client.exceptions.ResourceNotFoundException:  # the secret has no AWSCURRENT value
        return None
    return value or None


def write_secret(arn: str, value: str, cfg: Settings) -> None:
    """Store a new current value in the secret (a new version; the old one becomes AWSPREVIOUS)."""
    _client(cfg.secrets_endpoint_url).put_secret_value(SecretId=arn, SecretString=value)


# The wallet secret's tag that names its public key (`make wallet` sets it): the watcher reads
# it with DescribeSecret, which shows tags and never the value (only execute may read that).
PUBLIC_KEY_TAG = "public-key"


def secret_tag(arn: str, key: str, cfg: Settings) -> str | None:
    """The value of the secret's tag `key`, None when it has no such tag."""
    tags = _client(cfg.secrets_endpoint_url).describe_secret(SecretId=arn).get("Tags", [])
    return next((t.get("Value") for t in tags if t.get("Key") == key), None)
