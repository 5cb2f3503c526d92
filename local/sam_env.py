"""`make sam-env`: an `env.json` for `sam local` (`invoke -n env.json`, `start-api`,
`start-lambda`) that points every function at a running `make run`: its Postgres, its
LocalStack (SQS and Secrets Manager), its chain and its management API.

A running stack saves the environment it gives its functions (`saved_file`, readable by this
user only, removed when it stops); this writes, for every function of template.yaml, a value
for each variable its `Environment` declares (Globals' and its own): SAM only sets variables the
template declares, so `DATABASE_URL`, `SQS_ENDPOINT_URL` and `SECRETS_ENDPOINT_URL` are declared
in Globals, empty in AWS. A deployed-only value (`!GetAtt DbProxy.Endpoint`, a role's secret) is
written empty: locally the function reaches Postgres through `DATABASE_URL`, as its own role.
`--host` replaces the loopback address in every URL (a container that does not share the
host's network reaches it as `host.docker.internal`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from local.handlers import ROOT
from local.template import function_environment, load_template

LOOPBACK = ("127.0.0.1", "localhost")


def saved_file(database: str) -> Path:
    """Where a running stack keeps its functions' environments (one object per function)."""
    return ROOT / ".local-data" / f"{database}.functions.json"


def save(database: str, environments: Mapping[str, Mapping[str, str]]) -> Path:
    """Write the functions' environments for `make sam-env` (0600: the management API's URL
    holds the stack's secret)."""
    path = saved_file(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({k: dict(v) for k, v in environments.items()}, out, indent=1, sort_keys=True)
    return path


def functions() -> dict[str, str]:
    """Every function of the template: logical id -> its folder name."""
    doc = load_template()
    return {
        logical: str(res["Properties"]["CodeUri"]).rstrip("/").rsplit("/", 1)[-1]
        for logical, res in doc["Resources"].items()
        if res.get("Type") == "AWS::Serverless::Function"
    }


def _on_host(value: str, host: str | None) -> str:
    if not host:
        return value
    for loopback in LOOPBACK:
        value = value.replace(f"//{loopback}:", f"//{host}:").replace(f"@{loopback}:", f"@{host}:")
        value = value.replace(f"host={loopback} ", f"host={host} ")
    return value


def env_json(
    saved: Mapping[str, Mapping[str, str]], host: str | None = None
) -> dict[str, dict[str, str]]:
    """{logical id: {variable: value}} for every function and every variable its template
    environment declares: the running stack's value (what its worker for that function gets),
    else the template's plain value, else "" (deployed-only)."""
    out: dict[str, dict[str, str]] = {}
    for logical, folder in functions().items():
        given = saved.get(folder, {})
        values: dict[str, str] = {}
        for key, declared in function_environment(logical).items():
            if key in given:
                values[key] = _on_host(given[key], host)
            elif isinstance(declared, dict):
                values[key] = ""  # !GetAtt / !Sub of a deployed resource: unused locally
            else:
                values[key] = declared
        out[logical] = values
    return out


def main(argv: list[str] | None = None) -> int:
    from local.stack import local_database_name

    parser = argparse.ArgumentParser(prog="python -m local.sam_env", description=__doc__)
    parser.add_argument("--out", default="env.json", help="where to write (default env.json)")
    parser.add_argument("--host", default="", help="the host's name seen from a container")
    parser.add_argument("--database", default="", help="the stack's database (DATABASE_URL's)")
    args = parser.parse_args(argv)
    source = saved_file(args.database or local_database_name())
    if not source.is_file():
        print(
            f"no running stack ({source} is missing): start `make run` first, then run this "
            "again in another terminal",
            file=sys.stderr,
        )
        return 2
    env = env_json(json.loads(source.read_text()), args.host or None)
    out = Path(args.out)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(env, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(f"{out}: {len(env)} functions, pointed at the stack of {source.name.split('.')[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
