"""`make wallet`: the signing wallet's public key, and a key for it when it has none.

The wallet secret's resource policy lets only the execute function read its value, the admin
included, so its public key is kept beside it as the secret's `public-key` tag (DescribeSecret
shows tags, never the value). This command:
- prints that public key when the secret holds a key this command (or the local stack) stored;
- stores a new key (made here, never printed) when the secret is empty, and tags it;
- with --import-key FILE (a 64-byte JSON array, as `solana-keygen` writes, or a base58 key)
  stores that key instead, replacing the current one, and tags it.
Then fund that address (docs/deploying.md: "A first order on devnet").

    python -m ops.wallet --secret-id ARN [--import-key FILE] [--endpoint-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from solders.keypair import Keypair

from engine.errors import ConfigError
from engine.secrets import PUBLIC_KEY_TAG
from execution.wallet import parse_secret


@dataclass(frozen=True)
class WalletInfo:
    public_key: str
    stored: bool  # True: this run stored a key in the secret


class WalletUnknown(RuntimeError):
    """The secret holds a key whose public key nobody recorded (put there by hand)."""


def _has_value(description: dict[str, Any]) -> bool:
    stages = description.get("VersionIdsToStages") or {}
    return any("AWSCURRENT" in s for s in stages.values())


def _tag(description: dict[str, Any]) -> str | None:
    tags = description.get("Tags") or []
    return next((t["Value"] for t in tags if t.get("Key") == PUBLIC_KEY_TAG), None)


def store_key(sm: Any, secret_id: str, keypair: Keypair, secret_text: str) -> str:
    """Put the key in the secret, then tag its public key (in that order: a tag never names a
    key the secret does not hold)."""
    sm.put_secret_value(SecretId=secret_id, SecretString=secret_text)
    public_key = str(keypair.pubkey())
    sm.tag_resource(SecretId=secret_id, Tags=[{"Key": PUBLIC_KEY_TAG, "Value": public_key}])
    return public_key


def ensure_wallet(sm: Any, secret_id: str, import_key: str | None = None) -> WalletInfo:
    """See the module doc. `import_key` is the key's text (never logged or printed)."""
    description = sm.describe_secret(SecretId=secret_id)
    if import_key is not None:
        keypair = parse_secret(import_key)
        return WalletInfo(store_key(sm, secret_id, keypair, import_key.strip()), stored=True)
    tagged = _tag(description)
    if _has_value(description):
        if tagged is None:
            raise WalletUnknown(
                "the wallet secret holds a key stored by hand, whose public key is not recorded:"
                " store it again with make wallet KEYFILE=<its keypair file>"
            )
        return WalletInfo(tagged, stored=False)
    keypair = Keypair()
    return WalletInfo(store_key(sm, secret_id, keypair, str(keypair)), stored=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.wallet", description="the wallet")
    parser.add_argument("--secret-id", required=True, help="the stack's WalletSecretArn output")
    parser.add_argument("--import-key", type=Path, default=None, metavar="FILE")
    parser.add_argument("--endpoint-url", default=None, help="another Secrets Manager (tests)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=args.endpoint_url)
    key_text = args.import_key.read_text(encoding="utf-8") if args.import_key else None
    try:
        info = ensure_wallet(sm, args.secret_id, key_text)
    except (WalletUnknown, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(info)))
    else:
        print(f"wallet public key: {info.public_key}")
        if info.stored:
            print("(a key was stored in the wallet secret; only the execute function reads it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
