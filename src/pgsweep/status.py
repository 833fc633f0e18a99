"""``pgsweep status``: per table under an expiry rule, how much is live and how much is garbage.

For each table: its rows, the rows no rule marks (active), the rows some rule marks but the
cleanup has not deleted yet (garbage: the number an operator watches), and per rule how many
rows it marks and how long ago the oldest and the newest of them crossed the line. Plus the
table's and its indexes' size (of all its partitions, for a partitioned table), the partitions
past a cutoff that a cleanup would remove whole, and every rule that cannot run (its table or
column is gone).

Garbage is judged exactly as the engine judges it (``pgsweep.cutoff_literal``), and ages from the
instant each value stands for (``pgsweep.instant_expression``: epoch seconds, or a timestamp in
the rule's zone). The counts read each table once (one pass with FILTERs); ``pgsweep cleanup
--dry-run`` answers the garbage question index-only. A row marked by two rules counts once in
the table's garbage and once under each rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

from pgsweep import db, partitions
from pgsweep.deploy import require_engine
from pgsweep.runner import SkippedRule


@dataclass(frozen=True)
class RuleStatus:
    column: str
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
    table_bytes: int  # of a partitioned table: of all its partitions
    index_bytes: int
    # Partitions entirely past a rule's cutoff, still there (a cleanup removes them whole).
    partitions_due: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    tables: list[TableStatus]
    skipped: list[SkippedRule]


@dataclass(frozen=True)
class _Rule:
    column: str
    cutoff: str  # cutoff_literal: a literal the server quoted
    instant: str  # instant_expression: quoted by the server; the instant a value stands for


def status(dsn: str) -> Status:
    with db.connect(dsn) as conn:
        require_engine(conn)
        rules = conn.execute(
            "SELECT r.table_name::text, r.column_name::text, p.problem,"
            " CASE WHEN p.problem IS NULL THEN pgsweep.cutoff_literal(r) END,"
            " CASE WHEN p.problem IS NULL THEN pgsweep.instant_expression(r) END"
            " FROM pgsweep.expiry_rule r, LATERAL (SELECT pgsweep.rule_problem(r) AS problem) p"
            " ORDER BY r.table_name::text, r.column_name"
        ).fetchall()
        by_table: dict[str, list[_Rule]] = {}
        skipped: list[SkippedRule] = []
        for table, column, problem, cutoff, instant in rules:
            if problem is not None:
                skipped.append(SkippedRule(str(table), str(column), str(problem)))
                continue
            by_table.setdefault(str(table), []).append(_Rule(str(column), cutoff, instant))
        tables = []
        for table, table_rules in by_table.items():
            found = table_status(conn, table, table_rules)
            due = [
                p.partition
                for rule in table_rules
                for p in partitions.expired(conn, table, rule.column, count=False)
            ]
            tables.append(replace(found, partitions_due=due) if due else found)
        return Status(tables, skipped)


def table_status(conn: psycopg.Connection[Any], table: str, rules: list[_Rule]) -> TableStatus:
    # `table` is regclass output (already quoted); each cutoff and instant expression was built
    # by the server with format(%I, %L): SQL text made safe upstream.
    marks = [
        sql.SQL("{} < {}").format(sql.Identifier(rule.column), sql.SQL(rule.cutoff))
        for rule in rules
    ]
    fields: list[sql.Composable] = [
        sql.SQL("count(*)"),
        sql.SQL("count(*) FILTER (WHERE {})").format(sql.SQL(" OR ").join(marks)),
    ]
    # The cutoff's instant, in the terms the values are read in: the instant expression applied
    # to the cutoff literal instead of the column.
    for rule, mark in zip(rules, marks, strict=True):
        value = sql.SQL(rule.instant)
        cutoff = sql.SQL("(SELECT {} FROM (SELECT {} AS {}) c)").format(
            value, sql.SQL(rule.cutoff), sql.Identifier(rule.column)
        )
        fields += [
            sql.SQL("count(*) FILTER (WHERE {})").format(mark),
            sql.SQL("extract(epoch FROM {c} - min({v}) FILTER (WHERE {m}))").format(
                c=cutoff, v=value, m=mark
            ),
            sql.SQL("extract(epoch FROM {c} - max({v}) FILTER (WHERE {m}))").format(
                c=cutoff, v=value, m=mark
            ),
        ]
    query = sql.SQL(
        "SELECT {fields},"
        " (SELECT coalesce(sum(pg_table_size(p.relid)), pg_table_size({rel}::regclass))"
        "    FROM pg_partition_tree({rel}::regclass) p),"
        " (SELECT coalesce(sum(pg_indexes_size(p.relid)), pg_indexes_size({rel}::regclass))"
        "    FROM pg_partition_tree({rel}::regclass) p)"
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
    for i, rule in enumerate(rules):
        count, oldest, newest = row[2 + 3 * i : 5 + 3 * i]
        statuses.append(
            RuleStatus(
                rule.column,
                int(count),
                None if oldest is None else float(oldest),
                None if newest is None else float(newest),
            )
        )
    return TableStatus(table, total, total - garbage, garbage, statuses, int(row[-2]), int(row[-1]))
