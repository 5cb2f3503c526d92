"""`make key`: `engine.keys` against the local stack's database, found as `make run` finds it
(DATABASE_URL's server, else 127.0.0.1:5432, else the embedded one; the database DATABASE_URL
names, else `orders_local`).

    python -m local.keys create --name alice [--max-in-flight 20] [--limit SOL=100/1000]
    python -m local.keys list | limits ID [--limit ...] | revoke ID

`revoke` closes the key's sockets through the running stack's management API, with the stack's
own credentials (the endpoint and secret it saved for this database; `local.stack`), and prints
how many it closed and how many failed. Against the cloud database, run `python -m engine.keys`
with DB_HOST and DB_SECRET_ARN set.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from engine import keys
    from local import postgres
    from local.stack import local_database, local_database_name, management_file

    database = local_database_name()
    os.environ["DATABASE_URL"] = local_database(postgres.server_url(), database)
    saved = management_file(database)
    if "WS_MANAGEMENT_ENDPOINT" not in os.environ and saved.is_file():
        os.environ["WS_MANAGEMENT_ENDPOINT"] = saved.read_text().strip()
    # The local gateway's management API checks the secret in its endpoint; botocore still
    # wants something to sign with and a region, as the stack's own functions have.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return keys.main(argv)


if __name__ == "__main__":
    sys.exit(main())
