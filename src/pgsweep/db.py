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

from pgsweep.dsn import libpq_url, redact
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
    try:
        conninfo = libpq_url(dsn)
        params = conninfo_to_dict(conninfo) if conninfo else {}
    except (ValueError, psycopg.ProgrammingError) as exc:
        raise UsageError(
            f"not a valid connection string {describe(dsn)}: {one_line(str(exc))}"
        ) from None
    for port in str(params.get("port") or os.environ.get("PGPORT") or "").split(","):
        # psycopg resolves the host with the port as a service name, so a bad port would be
        # reported as "failed to resolve host"; say what is wrong instead.
        if port.strip() and not (port.strip().isdigit() and 0 < int(port) < 65536):
            raise UsageError(f"invalid port {port.strip()!r} in {describe(dsn)}")
    extra: dict[str, Any] = {}
    if "connect_timeout" not in params and "PGCONNECT_TIMEOUT" not in os.environ:
        extra["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_S
    try:
        return psycopg.connect(conninfo, autocommit=autocommit, **extra)
    except psycopg.OperationalError as exc:
        raise connection_error(exc, dsn) from None


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
