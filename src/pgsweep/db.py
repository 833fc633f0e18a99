"""Which database a command talks to, and connecting to it with errors an operator can read.

The connection comes from ``--dsn``, else ``DATABASE_URL``, else libpq's own ``PG*`` variables
(an empty conninfo string makes libpq read PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, …).
Connection failures become :class:`~pgsweep.errors.CannotConnect` or
:class:`~pgsweep.errors.AuthenticationFailed` with libpq's message on one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Engine, create_engine, pool

from pgsweep.dsn import conninfo as libpq_conninfo
from pgsweep.dsn import redact
from pgsweep.errors import AuthenticationFailed, CannotConnect, PgsweepError, UsageError

DEFAULT_CONNECT_TIMEOUT_S = 10

# libpq's wording for a rejected login (password, SCRAM, pg_hba "reject", missing password).
_AUTH_MESSAGES = (
    "password authentication failed",
    "no password supplied",
    "authentication failed",
    "pg_hba.conf rejects connection",
    "fe_sendauth",
)


def resolve_dsn(explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--dsn``, else ``DATABASE_URL``, else ``""`` (libpq then reads the PG* variables)."""
    env = os.environ if environ is None else environ
    return explicit or env.get("DATABASE_URL") or ""


def describe(dsn: str) -> str:
    """The DSN as it may be printed (password masked); the PG* environment when empty."""
    return redact(dsn) if dsn else "(libpq PG* environment)"


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """Open a connection, turning libpq's connection failures into one-line pgsweep errors."""
    conninfo = parse(dsn)
    params = conninfo_to_dict(conninfo) if conninfo else {}
    extra: dict[str, Any] = {}
    if "connect_timeout" not in params and "PGCONNECT_TIMEOUT" not in os.environ:
        extra["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_S
    try:
        return psycopg.connect(conninfo, autocommit=autocommit, **extra)
    except psycopg.OperationalError as exc:
        raise connection_error(exc, dsn) from None


def parse(dsn: str) -> str:
    """``dsn`` as libpq keywords (libpq parses it); a usage error when it is not valid."""
    try:
        conninfo = libpq_conninfo(dsn)
        ports = str(conninfo_to_dict(conninfo).get("port") or "")
    except (ValueError, psycopg.ProgrammingError) as exc:
        raise UsageError(f"not a valid connection string {describe(dsn)}: {exc}") from None
    # libpq checks the port only when it connects, and psycopg resolves the host names first,
    # where a non-numeric port makes getaddrinfo fail as if the host were unknown: say it here.
    for port in (p.strip() for p in ports.split(",") if p.strip()):
        if not (port.isdigit() and 0 < int(port) < 65536):
            where = describe(dsn)
            raise UsageError(f"not a valid connection string {where}: invalid port {port!r}")
    return conninfo


def engine(dsn: str) -> Engine:
    """A SQLAlchemy engine (for Alembic) whose connections psycopg opens from libpq's conninfo.

    SQLAlchemy never sees the DSN: a keyword DSN, a multi-host URL or the PG* environment reach
    libpq exactly as given, and connection failures are the same one-line errors as
    :func:`connect` raises. One connection per checkout (NullPool): a migration is short-lived.
    """
    parse(dsn)  # a malformed DSN fails here, before anything runs

    def creator() -> psycopg.Connection[tuple[Any, ...]]:
        return connect(dsn, autocommit=False)

    return create_engine("postgresql+psycopg://", creator=creator, poolclass=pool.NullPool)


def connection_error(exc: BaseException, dsn: str) -> PgsweepError:
    """The pgsweep error for a failed connection attempt (``exc`` from psycopg or libpq)."""
    text = one_line(str(exc))
    where = describe(dsn)
    if any(marker in text for marker in _AUTH_MESSAGES):
        return AuthenticationFailed(f"authentication failed for {where}: {text}")
    return CannotConnect(f"cannot connect to {where}: {text}")


def one_line(message: str) -> str:
    """A multi-line server or libpq message as one line, passwords never included."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())
