"""``pgsweep status``: per table under an expiry rule, how much is live and how much is garbage.

For each table: its rows, the rows no rule marks (active), the rows some rule marks but the
cleanup has not deleted yet (garbage: the number an operator watches), and per rule (``expires_at``
is "expired", ``used_at`` is "used") how many rows it marks and how long ago the oldest and the
newest of them crossed the line. Plus the table's and its indexes' size.

Garbage is judged exactly as the engine judges it (``pgsweep.cutoff_literal``). The counts read
each table once (one pass with FILTERs): a status report on a token table is cheap enough, and
``pgsweep cleanup --dry-run`` answers the same garbage question index-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgsweep import db
from pgsweep.deploy import require_routine

LABELS = {"expires_at": "expired", "used_at": "used"}
_NUMERIC = frozenset({"smallint", "integer", "bigint", "numeric", "double precision", "real"})


@dataclass(frozen=True)
class RuleStatus:
    column: str
    label: str
    rows: int
    oldest_age_s: float | None  # since the oldest marked row crossed its rule's cutoff
    newest_age_s: float | None


@dataclass(frozen=True)
class TableStatus:
    table: str
    rows: int
    active: int
    garbage: int
    rules: list[RuleStatus]
    table_bytes: int
    index_bytes: int


def status(dsn: str) -> list[TableStatus]:
    with db.connect(dsn) as conn:
        require_routine(conn, "pgsweep.cutoff_literal(regclass,name,interval)", "0006")
        rules = conn.execute(
            "SELECT r.table_name::text, r.column_name::text, pgsweep.cutoff_literal(r.table_name,"
            " r.column_name, r.keep_for), pgsweep.column_type(r.table_name, r.column_name)::text"
            " FROM pgsweep.expiry_rule r ORDER BY 1, 2"
        ).fetchall()
        by_table: dict[str, list[tuple[str, str, str]]] = {}
        for table, column, cutoff, type_name in rules:
            by_table.setdefault(str(table), []).append((str(column), str(cutoff), str(type_name)))
        return [table_status(conn, table, cols) for table, cols in by_table.items()]


def _instant(column: sql.Composable, type_name: str) -> sql.Composable:
    if type_name in _NUMERIC:
        return sql.SQL("to_timestamp({}::float8)").format(column)
    return sql.SQL("{}::timestamptz").format(column)


def table_status(
    conn: psycopg.Connection[Any], table: str, rules: list[tuple[str, str, str]]
) -> TableStatus:
    # `table` is regclass output (already quoted); each cutoff is cutoff_literal's output, a
    # literal quoted by the server with format('%L::type'): both are SQL text made safe upstream.
    marks = [
        sql.SQL("{} < {}").format(sql.Identifier(column), sql.SQL(cutoff))
        for column, cutoff, _ in rules
    ]
    cutoffs = [sql.SQL(cutoff) for _, cutoff, _ in rules]
    fields: list[sql.Composable] = [
        sql.SQL("count(*)"),
        sql.SQL("count(*) FILTER (WHERE {})").format(sql.SQL(" OR ").join(marks)),
    ]
    for (column, _, type_name), mark, cutoff in zip(rules, marks, cutoffs, strict=True):
        ident = sql.Identifier(column)
        fields += [
            sql.SQL("count(*) FILTER (WHERE {})").format(mark),
            sql.SQL("extract(epoch FROM {c} - min({v}) FILTER (WHERE {m}))").format(
                c=_instant(cutoff, type_name), v=_instant(ident, type_name), m=mark
            ),
            sql.SQL("extract(epoch FROM {c} - max({v}) FILTER (WHERE {m}))").format(
                c=_instant(cutoff, type_name), v=_instant(ident, type_name), m=mark
            ),
        ]
    query = sql.SQL(
        "SELECT {fields}, pg_table_size({rel}::regclass), pg_indexes_size({rel}::regclass)"
        " FROM {table}"
    ).format(
        fields=sql.SQL(", ").join(fields),
        rel=sql.Literal(table),
        table=sql.SQL(table),
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    total, garbage = int(row[0]), int(row[1])
    statuses = []
    for i, (column, _, _) in enumerate(rules):
        count, oldest, newest = row[2 + 3 * i : 5 + 3 * i]
        statuses.append(
            RuleStatus(
                column,
                LABELS.get(column, column),
                int(count),
                None if oldest is None else float(oldest),
                None if newest is None else float(newest),
            )
        )
    return TableStatus(table, total, total - garbage, garbage, statuses, int(row[-2]), int(row[-1]))
