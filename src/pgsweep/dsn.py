"""Connection-string helpers shared by the CLI, the tests and Alembic's env.py.

libpq accepts two spellings: a URL (``postgresql://user:pw@host/db``, several hosts allowed:
``postgresql://h1:5432,h2:5432/db``) and a keyword list (``host=… dbname=…``). libpq itself
parses either (psycopg's ``conninfo_to_dict``/``make_conninfo`` call ``PQconninfoParse``), so
nothing here re-parses a DSN by hand: :func:`conninfo` is the one place a DSN is read, and
SQLAlchemy gets its connections from psycopg (:func:`pgsweep.db.engine`), never a URL.
Everything that prints a DSN goes through :func:`redact`, so a password never reaches a
terminal or a log.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_MASK = "***"
# SQLAlchemy's spelling of a driver (``postgresql+psycopg://``), which alembic.ini may hold.
_SQLALCHEMY_DRIVER = re.compile(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://", re.IGNORECASE)

# password='it''s' | password=plain  — libpq keyword syntax, quoted or bare.
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def is_url(dsn: str) -> bool:
    """Whether ``dsn`` is in URL form rather than libpq keyword form."""
    return "://" in dsn


def conninfo(dsn: str, **overrides: str) -> str:
    """``dsn`` as a libpq keyword string, parsed and checked by libpq (``ProgrammingError`` when
    it is not a valid connection string); ``overrides`` replace keywords (``dbname=…``).

    The one rewrite left by hand: a SQLAlchemy driver suffix (``postgresql+psycopg://``, as
    alembic.ini or an app's settings may spell it) is not libpq syntax, so it is dropped first.
    """
    return make_conninfo(_SQLALCHEMY_DRIVER.sub(r"\1://", dsn), **overrides)


def with_dbname(dsn: str, dbname: str) -> str:
    """Return ``dsn`` pointing at database ``dbname`` (as libpq keywords)."""
    return conninfo(dsn, dbname=dbname)


def dbname_of(dsn: str) -> str | None:
    """The database named in ``dsn``, or None when libpq would pick its default."""
    value = conninfo_to_dict(conninfo(dsn)).get("dbname")
    return None if value is None else str(value)


def redact(dsn: str) -> str:
    """Return ``dsn`` with any password replaced by ``***``; safe to print or log.

    Hand-written on purpose: the operator should see the DSN as they typed it (URL or
    keywords), and a DSN libpq rejects must still print masked in the error that says so.
    """
    if not is_url(dsn):
        return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + _MASK, dsn)
    parts = urlsplit(dsn)
    netloc = parts.netloc
    # rpartition: an unencoded '@' in a password must not leave half of it visible.
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{_MASK}@{hosts}"
    query = [
        (k, _MASK if k.lower() == "password" else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(
        (parts.scheme, netloc, parts.path, urlencode(query, safe="*"), parts.fragment)
    )
