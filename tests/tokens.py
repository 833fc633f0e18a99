"""Seed Matcha Time data for behaviour tests: users, tokens at chosen offsets from now()."""

from __future__ import annotations

from typing import Any

import psycopg

TOKEN_TABLES_WITH_USED_AT = ("password_reset_tokens", "email_verification_tokens")
TOKEN_TABLES = (*TOKEN_TABLES_WITH_USED_AT, "refresh_tokens")


def add_user(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute(
        "INSERT INTO users (username, email, password_hash) VALUES (%s, %s, 'h') RETURNING id",
        (name, f"{name}@example.test"),
    ).fetchone()
    assert row is not None
    return str(row[0])


def add_token(
    conn: psycopg.Connection[Any],
    table: str,
    user_id: str,
    expires_in: str,
    used_ago: str | None = None,
    token_hash: str | None = None,
) -> str:
    """One token expiring at now() + expires_in (e.g. '-1 second'), used at now() - used_ago."""
    used = "NULL" if used_ago is None else "now() - %(used)s::interval"
    query = (
        f"INSERT INTO {table} (user_id, token_hash, expires_at"
        f"{', used_at' if table != 'refresh_tokens' else ''})"
        " VALUES (%(user)s, coalesce(%(hash)s, md5(random()::text)),"
        f" now() + %(exp)s::interval{', ' + used if table != 'refresh_tokens' else ''})"
        " RETURNING id"
    )
    row = conn.execute(
        query, {"user": user_id, "hash": token_hash, "exp": expires_in, "used": used_ago}
    ).fetchone()
    assert row is not None
    return str(row[0])


def remaining_ids(conn: psycopg.Connection[Any], table: str) -> set[str]:
    return {str(r[0]) for r in conn.execute(f"SELECT id FROM {table}").fetchall()}


def without_triggers(conn: psycopg.Connection[Any]) -> None:
    """Seed rows without the opportunistic triggers touching them (superuser session)."""
    conn.execute("SET session_replication_role = replica")


def with_triggers(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET session_replication_role = origin")
