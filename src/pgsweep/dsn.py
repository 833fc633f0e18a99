"""Connection-string helpers shared by the CLI, the tests and Alembic's env.py.

libpq accepts two spellings: a URL (``postgresql://user:pw@host/db``) and a keyword list
(``host=… dbname=…``). SQLAlchemy only takes URLs with a driver name, so everything that hands a
DSN to Alembic goes through :func:`sqlalchemy_url`, and everything that prints one goes through
:func:`redact` so a password never reaches a terminal or a log.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_URL_SCHEMES = ("postgresql", "postgres")
_SQLALCHEMY_SCHEME = "postgresql+psycopg"
_MASK = "***"

# password='it''s' | password=plain  — libpq keyword syntax, quoted or bare.
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def is_url(dsn: str) -> bool:
    """Whether ``dsn`` is in URL form rather than libpq keyword form."""
    return "://" in dsn


def _scheme(dsn: str) -> str:
    return dsn.split("://", 1)[0].lower()


def sqlalchemy_url(dsn: str) -> str:
    """Return ``dsn`` as a SQLAlchemy URL that uses the psycopg 3 driver.

    Accepts ``postgresql://``, ``postgres://`` (Heroku-style), an explicit
    ``postgresql+<driver>://`` (re-pointed at psycopg, the only driver we install) and libpq
    keyword strings.
    """
    if not is_url(dsn):
        return _keywords_to_url(dsn)
    scheme = _scheme(dsn)
    base = scheme.split("+", 1)[0]
    if base not in _URL_SCHEMES:
        raise ValueError(f"not a PostgreSQL connection URL (scheme {scheme!r})")
    return _SQLALCHEMY_SCHEME + dsn[len(scheme) :]


def libpq_url(dsn: str) -> str:
    """Return ``dsn`` with a scheme libpq understands (drops a SQLAlchemy ``+driver``)."""
    if not is_url(dsn):
        return dsn
    scheme = _scheme(dsn)
    if scheme.split("+", 1)[0] not in _URL_SCHEMES:
        raise ValueError(f"not a PostgreSQL connection URL (scheme {scheme!r})")
    return "postgresql" + dsn[len(scheme) :]


def with_dbname(dsn: str, dbname: str) -> str:
    """Return ``dsn`` pointing at database ``dbname``, keeping its spelling (URL or keywords)."""
    if not is_url(dsn):
        return make_conninfo(dsn, dbname=dbname)
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"]
    return urlunsplit(
        (parts.scheme, parts.netloc, "/" + quote(dbname, safe=""), urlencode(query), "")
    )


def dbname_of(dsn: str) -> str | None:
    """The database named in ``dsn``, or None when libpq would pick its default."""
    value = conninfo_to_dict(libpq_url(dsn)).get("dbname")
    return None if value is None else str(value)


def redact(dsn: str) -> str:
    """Return ``dsn`` with any password replaced by ``***``; safe to print or log."""
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


def _keywords_to_url(dsn: str) -> str:
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    user = params.pop("user", "")
    password = params.pop("password", "")
    host = params.pop("host", "")
    port = params.pop("port", "")
    dbname = params.pop("dbname", "")
    userinfo = quote(user, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    netloc = (userinfo + "@" if userinfo else "") + _url_host(host) + (":" + port if port else "")
    if host.startswith("/"):
        # A Unix-socket directory cannot sit in the URL's host part; libpq and SQLAlchemy's
        # psycopg dialect both take it as a query parameter instead.
        netloc = (userinfo + "@" if userinfo else "") + (":" + port if port else "")
        params["host"] = host
    path = "/" + quote(dbname, safe="") if dbname else ""
    # Spelled out rather than urlunsplit, which drops the "//" when the netloc is empty (an
    # empty conninfo, or a socket directory without user or port): SQLAlchemy needs it, and
    # an empty URL then lets libpq read the PG* variables.
    query = "?" + urlencode(params) if params else ""
    return f"{_SQLALCHEMY_SCHEME}://{netloc}{path}{query}"


def _url_host(host: str) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]"  # bare IPv6 literal
    return host
