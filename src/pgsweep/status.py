"""``pgsweep status``: per table under an expiry rule, what is live, what is garbage, how far
behind the cleanup is, and what the run history says.

Everything comes from the engine's view ``pgsweep.rule_status`` (docs/observability.md), one
row per rule, read by :mod:`pgsweep.rule_status` as ``pgsweep metrics`` reads it, so ``psql``,
this command and the metrics answer alike. Its cost follows the garbage, not the
table: garbage and its ages are exact, counted through the rule's index; the rows of a table
larger than ``pgsweep.exact_count_limit()`` rows are the planner's estimates (``estimated``),
never a scan of the table. A table's garbage is ``pgsweep.garbage_counts()``'s, each row counted
once however many rules mark it; under each rule, the rows that rule marks.

``sample`` (``--sample N``) lists up to N garbage rows per rule by primary key (by ``ctid`` in a
table without one), oldest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

from pgsweep import cron, db, partitions, rule_status
from pgsweep.deploy import require_engine
from pgsweep.errors import UsageError
from pgsweep.runner import SkippedRule


@dataclass(frozen=True)
class RuleStatus:
    column: str
    rows: int  # garbage this rule marks
    oldest_age_s: float | None  # since the oldest marked row crossed the cutoff: the expiry lag
    newest_age_s: float | None
    rows_never_expire: int | None = None
    rows_alive: int | None = None
    lag_target_s: float | None = None
    lag_ok: bool | None = None
    oldest_row_age_s: float | None = None
    last_run_at: dt.datetime | None = None
    last_run_status: str | None = None
    last_success_at: dt.datetime | None = None
    last_error: str | None = None
    deleted_24h: int = 0
    delete_rate: float | None = None  # rows per second of sweeping, last 24 h
    backlog_eta_s: float | None = None
    sample: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class TableStatus:
    table: str
    rows: int | None  # None: never analyzed and too large to count
    active: int | None
    garbage: int
    rules: list[RuleStatus]
    table_bytes: int
    index_bytes: int
    estimated: bool = False  # rows and active are the planner's estimates
    dead_tuples: int | None = None
    last_vacuum: dt.datetime | None = None
    last_autovacuum: dt.datetime | None = None
    last_analyze: dt.datetime | None = None
    last_autoanalyze: dt.datetime | None = None
    # Partitions entirely past a rule's cutoff, still there (a cleanup removes them whole).
    partitions_due: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    tables: list[TableStatus]
    skipped: list[SkippedRule]
    # When pg_cron next sweeps every rule here (None: no such job seen, or no pg_cron); a
    # backlog's ETA counts from then, not from now.
    next_sweep_at: dt.datetime | None = None


def status(dsn: str, *, sample: int = 0) -> Status:
    if sample < 0:
        raise UsageError("--sample must not be negative")
    with db.connect(dsn) as conn:
        require_engine(conn, minimum="1.1")  # pgsweep.rule_status came with 1.1
        # One transaction, so one now(): the rules' and the tables' garbage agree.
        with conn.transaction():
            rows = rule_status.read(conn)
            garbage = {
                str(t): int(n)
                for t, n in conn.execute(
                    "SELECT g.table_name::text, sum(g.garbage) FROM pgsweep.garbage_counts() g"
                    " GROUP BY 1"
                ).fetchall()
            }
        tables: dict[str, TableStatus] = {}
        skipped: list[SkippedRule] = []
        for row in rows:
            if row.problem is not None:
                skipped.append(SkippedRule(row.table, row.column, row.problem))
                continue
            keys = garbage_sample(conn, row.table, row.column, sample) if sample else []
            rule = RuleStatus(
                column=row.column,
                rows=row.garbage,
                oldest_age_s=row.expiry_lag_s if row.garbage else None,
                newest_age_s=row.newest_garbage_lag_s,
                rows_never_expire=row.rows_never_expire,
                rows_alive=row.rows_alive,
                lag_target_s=row.lag_target_s,
                lag_ok=row.lag_ok,
                oldest_row_age_s=row.oldest_row_age_s,
                last_run_at=row.last_run_at,
                last_run_status=row.last_run_status,
                last_success_at=row.last_success_at,
                last_error=row.last_error,
                deleted_24h=row.deleted_24h,
                delete_rate=row.delete_rate,
                backlog_eta_s=row.backlog_eta_s,
                sample=keys,
            )
            if row.table not in tables:
                total = row.rows_total
                table_garbage = garbage.get(row.table, 0)
                tables[row.table] = TableStatus(
                    table=row.table,
                    rows=total,
                    active=None if total is None else max(total - table_garbage, 0),
                    garbage=table_garbage,
                    rules=[],
                    table_bytes=row.table_bytes,
                    index_bytes=row.index_bytes,
                    estimated=row.counts_estimated,
                    dead_tuples=row.dead_tuples,
                    last_vacuum=row.last_vacuum,
                    last_autovacuum=row.last_autovacuum,
                    last_analyze=row.last_analyze,
                    last_autoanalyze=row.last_autoanalyze,
                )
            tables[row.table].rules.append(rule)
        for table, found in tables.items():
            due = [
                p.partition
                for rule in found.rules
                for p in partitions.expired(conn, table, rule.column, count=False)
            ]
            if due:
                tables[table] = replace(found, partitions_due=due)
        return Status(list(tables.values()), skipped, cron.next_sweep(dsn, conn))


def garbage_sample(conn: psycopg.Connection[Any], table: str, column: str, limit: int) -> list[Any]:
    """Up to ``limit`` garbage rows of one rule, oldest first, by primary key (a list of values
    for a key of several columns; the ctid in a table without one)."""
    row = conn.execute(
        "SELECT pgsweep.rule_condition(r),"
        " (SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index i"
        "   CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)"
        "   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        "  WHERE i.indrelid = r.table_name AND i.indisprimary)"
        " FROM pgsweep.expiry_rule r WHERE r.table_name = %s::regclass AND r.column_name = %s",
        (table, column),
    ).fetchone()
    if row is None:
        return []
    condition, key_columns = row
    keys = [sql.Identifier(c) for c in key_columns] if key_columns else [sql.SQL("ctid")]
    # `table` is regclass output (quoted by the server); the condition was built by the server
    # with format(%I, %L) (pgsweep.rule_condition): SQL text made safe upstream.
    # Rows of one value (a batch issued together) come in key order.
    query = sql.SQL(
        "SELECT {keys} FROM {table} WHERE {condition} ORDER BY {column}, {keys} LIMIT {n}"
    )
    found = conn.execute(
        query.format(
            keys=sql.SQL(", ").join(keys),
            table=sql.SQL(table),
            condition=sql.SQL(condition),
            column=sql.Identifier(column),
            n=sql.Literal(limit),
        )
    ).fetchall()
    return [_json_value(r[0]) if len(r) == 1 else [_json_value(v) for v in r] for r in found]


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
