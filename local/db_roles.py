"""Each function logs in to the local Postgres as the role the template gives it.

In AWS each function reads its own role's login (`DB_SECRET_ARN`: `SubmitDbSecret` for
`engine_submit`, ...) and the deploy step gives those roles LOGIN and their passwords
(engine/provision.py). Locally the migrations create the same roles NOLOGIN with the same grants
(migrations/005_function_roles.sql and later); the stack gives them LOGIN and hands each worker a
`DATABASE_URL` naming its role. The migrate function stays the database's owner, as in AWS.

Roles belong to the whole server, and other stacks (test sessions, `make run`, a bench) use the
same roles at the same time: this only ever adds LOGIN to a role that lacks it, one stack at a
time (an advisory lock on the server's `postgres` database), never drops a role, never sets or
changes a password. The local server trusts loopback logins; on one that asks these roles for a
password the stack says so and its functions log in as the stack's own user instead.
"""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg import errors, sql

log = logging.getLogger("local.db_roles")

# pg_advisory_lock's key for "a stack is giving the function roles LOGIN" (any fixed number).
LOCK_KEY = 0x5A4D_0024


def function_roles() -> dict[str, str]:
    """Function folder -> its role, for every function of the template with one (the migrate
    function logs in as the owner)."""
    from engine.provision import FUNCTION_ROLES
    from local.sam_env import functions

    return {
        folder: f"engine_{folder}"
        for folder in functions().values()
        if f"engine_{folder}" in FUNCTION_ROLES
    }


def role_url(database_url: str, role: str) -> str:
    """`database_url` logged in as `role` (no password: the local server trusts loopback)."""
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    params.pop("password", None)
    params["user"] = role
    return str(psycopg.conninfo.make_conninfo(**params))  # type: ignore[arg-type]


def _give_login(conn: psycopg.Connection[tuple[object, ...]], role: str) -> None:
    for _ in range(20):
        row = conn.execute(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)
        ).fetchone()
        if row is None:
            raise RuntimeError(f"role {role} does not exist: the migrations create it")
        if row[0]:
            return
        try:
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
            return
        except errors.InternalError:  # "tuple concurrently updated": someone else's ALTER ROLE
            time.sleep(0.05)
    raise RuntimeError(f"could not give {role} LOGIN")


def ensure_logins(database_url: str) -> dict[str, str]:
    """Give every function role LOGIN (where it lacks it) and return function folder -> the
    URL it logs in with: its role's, or `database_url` itself where the server refuses the
    role's login (it asks for a password this stack must not set)."""
    roles = function_roles()
    server = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            for role in sorted(set(roles.values())):
                _give_login(conn, role)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    urls: dict[str, str] = {}
    for folder, role in roles.items():
        url = role_url(database_url, role)
        try:
            with psycopg.connect(url, connect_timeout=5):
                pass
        except psycopg.OperationalError as exc:
            log.warning(
                "%s cannot log in as %s (%s): it uses the stack's own login instead",
                folder,
                role,
                str(exc).strip().splitlines()[0],
            )
            url = database_url
        urls[folder] = url
    return urls
