"""What the `weituan` command checks before it starts work: the address it is to listen on, the database
and Redis, each refusal one line naming the setting to fix (see cli.py)."""

import errno
import socket
from typing import Any

from django.core.exceptions import ImproperlyConfigured


class PreflightFailed(ImproperlyConfigured):
    """Something the command needs is not there; the message is the one line the command prints."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def listen_address_check(host: str, port: int) -> None:
    """Bind the address once, as the server will, so a busy port or a host that does not resolve is
    refused before anything is migrated or started (the server itself would say so only after
    announcing that it serves)."""
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PreflightFailed(f"cannot listen on {host}:{port}: {exc.strerror} (check --host)") from None
    family, kind, proto, _, address = found[0]
    with socket.socket(family, kind, proto) as probe:
        # The server sets this too: a port left in TIME_WAIT by a stopped server is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            hints = {
                errno.EADDRINUSE: "another server uses it; choose another --port",
                errno.EACCES: "ports below 1024 need root; choose another --port",
            }
            hint = hints.get(exc.errno or 0, "check --host")
            raise PreflightFailed(f"cannot listen on {host}:{port}: {exc.strerror} ({hint})") from None


def database_check() -> None:
    """Connect to the database once, outside any pool: a wrong DATABASE_URL (no server, no such
    database, a refused password) is one line naming the reason at once, where a pool would retry for
    its whole timeout, logging each try, and end with only "couldn't get a connection"."""
    from django.db import DatabaseError, connection

    driver: Any = getattr(connection, "Database", None)  # the DB-API module (psycopg, sqlite3)
    try:
        if connection.vendor == "postgresql":
            params = {**connection.get_connection_params(), "connect_timeout": 10}
            driver.connect(**params).close()
        else:
            connection.ensure_connection()
    except (DatabaseError, driver.Error) as exc:
        raise PreflightFailed(database_failure(exc)) from None


def database_failure(exc: BaseException) -> str:
    from django.conf import settings

    where = "DATABASE_URL" if settings.DATABASE_URL else f"the SQLite file in {settings.DATA_DIR}"
    return f"cannot use the database ({where}): {first_line(exc)}"


def redis_check() -> None:
    """Ping Redis when REDIS_URL is set: without it every page would fail, one request at a time."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    from redis.exceptions import RedisError

    from weituan.core.redis import get_redis

    try:
        get_redis().ping()
    except RedisError as exc:
        raise PreflightFailed(f"cannot reach Redis (REDIS_URL): {first_line(exc)}") from None
