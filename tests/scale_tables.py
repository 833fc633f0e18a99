"""A table under one rule with a known set of garbage and live rows, for the tests of pacing,
never-overlap, standbys, failover and crashes (issue 13)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

Connection = psycopg.Connection[Any]


def create(conn: Connection, name: str, *, garbage: int, live: int, payload: int = 0) -> None:
    """``name`` (id, expires_at, payload) under a rule on expires_at: ``garbage`` rows expired a
    day ago, one millisecond apart (so batches end between them), and ``live`` rows expiring in
    a day, with ``payload`` bytes of text each (more WAL per deleted row)."""
    table = sql.Identifier(name)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (id bigserial PRIMARY KEY, expires_at timestamptz NOT NULL,"
            " payload text NOT NULL DEFAULT '')"
        ).format(table)
    )
    conn.execute(sql.SQL("CREATE INDEX ON {} (expires_at)").format(table))
    conn.execute("SELECT pgsweep.add_rule(%s, 'expires_at')", (name,))
    add(conn, name, garbage=garbage, live=live, payload=payload)


def add(conn: Connection, name: str, *, garbage: int, live: int = 0, payload: int = 0) -> None:
    table = sql.Identifier(name)
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (expires_at, payload)"
            " SELECT now() - interval '1 day' + g * interval '1 ms', repeat('x', %s)"
            " FROM generate_series(1, %s) g"
        ).format(table),
        (payload, garbage),
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (expires_at, payload)"
            " SELECT now() + interval '1 day', repeat('x', %s) FROM generate_series(1, %s)"
        ).format(table),
        (payload, live),
    )


def counts(conn: Connection, name: str) -> tuple[int, int, int]:
    """(garbage rows, live rows, sum of the live rows' ids): what a sweep may and may not take."""
    row = conn.execute(
        sql.SQL(
            "SELECT count(*) FILTER (WHERE expires_at < now()),"
            " count(*) FILTER (WHERE expires_at >= now()),"
            " coalesce(sum(id) FILTER (WHERE expires_at >= now()), 0)"
            " FROM {}"
        ).format(sql.Identifier(name))
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


class Notices:
    """Every NOTICE and WARNING a connection receives, as 'SEVERITY: message'."""

    def __init__(self, conn: Connection) -> None:
        self.messages: list[str] = []
        conn.add_notice_handler(self._on_notice)

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        self.messages.append(f"{diag.severity_nonlocalized}: {diag.message_primary}")

    def matching(self, text: str) -> list[str]:
        return [m for m in self.messages if text in m]
