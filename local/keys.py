"""`make key`: `engine.keys` against the local stack's database, found as `make run` finds it
(DATABASE_URL's server, else 127.0.0.1:5432, else the embedded one; database `orders_local`).

    python -m local.keys create --name alice [--max-in-flight 20] | list | revoke ID

Against the cloud database, run `python -m engine.keys` with DB_HOST and DB_SECRET_ARN set.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from engine import keys
    from local import postgres
    from local.stack import LOCAL_DB, local_database

    os.environ["DATABASE_URL"] = local_database(postgres.server_url(), LOCAL_DB)
    return keys.main(argv)


if __name__ == "__main__":
    sys.exit(main())
