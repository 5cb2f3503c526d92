"""`make wallet` against LocalStack's Secrets Manager: the wallet secret as the template creates
it (empty), a key stored and its public key shown (the key never), the same answer on a second
run, an imported keypair file, a hand-stored key refused with what to do; and the watcher's
read of the public key (the tag), which never needs the secret's value."""

from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import Path
from typing import Any

import boto3
import pytest
from solders.keypair import Keypair

from engine import secrets as engine_secrets
from engine.config import Settings
from execution.wallet import parse_secret, wallet_address
from ops.wallet import main


@pytest.fixture
def sm(localstack: str) -> Any:
    return boto3.client("secretsmanager", endpoint_url=localstack, region_name="us-east-1")


@pytest.fixture
def empty_secret(sm: Any) -> str:
    arn: str = sm.create_secret(Name=f"wallet-{secrets.token_hex(4)}")["ARN"]  # as deployed
    return arn


def run(capsys: pytest.CaptureFixture[str], localstack: str, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--endpoint-url", localstack])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_an_empty_wallet_secret_gets_a_key_and_its_public_key_is_shown(
    sm: Any,
    empty_secret: str,
    localstack: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = run(capsys, localstack, "--secret-id", empty_secret, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["stored"] is True
    stored = sm.get_secret_value(SecretId=empty_secret)["SecretString"]
    assert str(parse_secret(stored).pubkey()) == shown["public_key"]
    assert stored not in out  # the key itself is never printed

    # Again: the same public key, nothing stored.
    code, out, _ = run(capsys, localstack, "--secret-id", empty_secret)
    assert (code, out.splitlines()[0]) == (0, f"wallet public key: {shown['public_key']}")
    assert sm.get_secret_value(SecretId=empty_secret)["SecretString"] == stored
    versions = sm.list_secret_version_ids(SecretId=empty_secret)["Versions"]
    assert len(versions) == 1

    # The watcher finds the address from the tag alone (DescribeSecret), as its role allows.
    monkeypatch.setenv("SECRETS_ENDPOINT_URL", localstack)
    engine_secrets._client.cache_clear()
    cfg = Settings.from_env({"SECRETS_ENDPOINT_URL": localstack})
    cfg = dataclasses.replace(cfg, wallet_address_secret_arn=empty_secret)
    assert str(wallet_address(cfg)) == shown["public_key"]
    engine_secrets._client.cache_clear()


def test_a_keypair_file_is_imported(
    sm: Any,
    empty_secret: str,
    localstack: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keypair = Keypair()
    keyfile = tmp_path / "id.json"
    keyfile.write_text(json.dumps(list(bytes(keypair))))  # what solana-keygen writes
    code, out, _ = run(
        capsys, localstack, "--secret-id", empty_secret, "--import-key", str(keyfile)
    )
    assert code == 0
    assert out.splitlines()[0] == f"wallet public key: {keypair.pubkey()}"
    stored = sm.get_secret_value(SecretId=empty_secret)["SecretString"]
    assert parse_secret(stored).pubkey() == keypair.pubkey()


def test_a_key_stored_by_hand_is_refused_with_what_to_do(
    sm: Any, empty_secret: str, localstack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sm.put_secret_value(SecretId=empty_secret, SecretString=str(Keypair()))
    code, out, err = run(capsys, localstack, "--secret-id", empty_secret)
    assert code == 1
    assert out == ""
    assert "make wallet KEYFILE=" in err
