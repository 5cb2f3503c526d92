"""An embedded Postgres (pgserver) that a test owns: to restart, to configure (pg_hba), or to
start with no roles of other stacks in it.

Its data directory is not under pytest's temporary tree: pgserver runs Postgres as another user,
which must reach the directory, and any pytest session of this user that starts meanwhile (a
second checkout's, say) sets that tree's root back to 0700, so a later `pg_ctl start` fails with
"Permission denied"."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def embedded_postgres(name: str) -> Iterator[Any]:
    """A started pgserver `PostgresServer` in a directory of its own, stopped and removed after."""
    import pgserver

    path = Path(tempfile.mkdtemp(prefix=f"orders-{name}-"))
    # get_server is re-exported by pgserver without being declared public.
    server: Any = pgserver.get_server(str(path), cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(path, ignore_errors=True)
