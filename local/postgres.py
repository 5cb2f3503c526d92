"""Find a Postgres for the local stack and the tests: DATABASE_URL, else 127.0.0.1:5432, else an
embedded server from `pgserver` (no system install, no Docker)."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

_embedded: Any = None


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def server_url(data_dir: Path | None = None) -> str:
    """A URL to a database on a server we may create databases on."""
    global _embedded
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    if _answers("127.0.0.1", 5432):
        for user in ("postgres", os.environ.get("USER", "root")):
            candidate = f"postgresql://{user}@127.0.0.1:5432/postgres"
            try:
                with psycopg.connect(candidate, connect_timeout=2):
                    return candidate
            except psycopg.OperationalError:
                continue
    import pgserver  # only needed where no server answers

    path = data_dir or Path(os.environ.get("PGSERVER_DIR", ".local-data/pgserver"))
    path.mkdir(parents=True, exist_ok=True)
    # get_server is re-exported by pgserver without being declared public: mypy cannot see it.
    _embedded = pgserver.get_server(str(path.resolve()), cleanup_mode="stop")  # type: ignore[attr-defined]
    return str(_embedded.get_uri())


def create_database(base_url: str, prefix: str = "orders") -> str:
    """Create a fresh database beside `base_url` and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return str(psycopg.conninfo.make_conninfo(base_url, dbname=name))


def drop_database(base_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )
