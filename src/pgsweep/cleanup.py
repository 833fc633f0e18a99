"""``pgsweep cleanup``: delete what every rule marks as garbage, or say exactly what it would.

The cleanup takes every rule of every table (``table`` narrows it to one table), in the order
``pgsweep.garbage_counts()`` counts them, batch by batch with ``pgsweep.purge_range`` (the
function ``CALL pgsweep.sweep()`` runs), each batch its own short transaction. The batches are
driven from here rather than by one ``CALL`` so that every batch can be reported (a progress
display) and the counts come back per rule. ``--dry-run`` asks ``pgsweep.garbage_counts()``:
per rule, the rows it would delete now, each row counted once per table, so the cleanup deletes
what the dry run counts (barring rows written or held meanwhile). A rule that cannot run
(its table or column is gone) is reported and skipped, never an error for the others.

The cleanup is recorded as a run (``invoked_by`` 'cli', docs/observability.md) through the
engine's own API: ``pgsweep.run_begin`` (committed at once), ``pgsweep.run_record`` in the same
statement as each batch (so the counts are exact whatever happens next), ``pgsweep.run_end``
with 'succeeded' or 'failed' and the error. A cleanup killed mid-way shows as 'interrupted'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgsweep import db
from pgsweep.deploy import require_engine
from pgsweep.errors import UsageError
from pgsweep.runner import SWEEP_BATCH_SIZE, SkippedRule

# A cleanup that would delete more rows than this asks first (pgsweep cleanup: --yes, or y on a
# terminal): a backlog that large is worth a look at what it is before it goes.
CONSENT_ROWS = 100_000


@dataclass(frozen=True)
class RuleCount:
    column: str
    rows: int


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int  # deleted, or (dry run) would be deleted
    rules: list[RuleCount]


@dataclass(frozen=True)
class CleanupResult:
    dry_run: bool
    tables: list[TableCount]
    skipped: list[SkippedRule] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass(frozen=True)
class Progress:
    """One committed batch: the rule, its rows deleted so far, and the whole run's."""

    table: str
    column: str
    rule_deleted: int
    total_deleted: int


def cleanup(
    dsn: str,
    *,
    table: str | None = None,
    batch_size: int = SWEEP_BATCH_SIZE,
    on_batch: Callable[[Progress], None] | None = None,
) -> CleanupResult:
    """Delete the garbage of every rule (of ``table``), one transaction per batch."""
    if batch_size < 1:
        raise UsageError("--batch-size must be a positive integer")
    with db.connect(dsn) as conn:
        require_engine(conn)
        rules, skipped = _rules(conn, table)
        run_id = _run_begin(conn, table)
        try:
            tables = _sweep(conn, run_id, rules, skipped, batch_size, on_batch)
        except psycopg.Error as exc:
            _run_end(conn, run_id, "failed", db.one_line(str(exc)))
            raise
        _run_end(conn, run_id, "succeeded", None)
    return CleanupResult(False, _tables(tables), skipped)


def _run_begin(conn: psycopg.Connection[Any], table: str | None) -> int:
    """The run's row in pgsweep.run, committed ('cli'), with the rules that cannot run."""
    row = conn.execute("SELECT pgsweep.run_begin('cli')").fetchone()
    assert row is not None
    run_id = int(row[0])
    conn.execute(
        "SELECT pgsweep.run_record(%s, r.table_name, r.column_name, 0, 0,"
        " p_error => 'skipped: ' || p.problem)"
        " FROM pgsweep.expiry_rule r, LATERAL (SELECT pgsweep.rule_problem(r) AS problem) p"
        " WHERE p.problem IS NOT NULL AND (%s::regclass IS NULL OR r.table_name = %s::regclass)",
        (run_id, table, table),
    )
    return run_id


def _run_end(conn: psycopg.Connection[Any], run_id: int, state: str, error: str | None) -> None:
    if conn.closed or conn.broken:
        return  # the run shows as interrupted once its session is gone
    conn.execute("SELECT pgsweep.run_end(%s, %s, %s)", (run_id, state, error))


def _sweep(
    conn: psycopg.Connection[Any],
    run_id: int,
    rules: list[tuple[str, str]],
    skipped: list[SkippedRule],
    batch_size: int,
    on_batch: Callable[[Progress], None] | None,
) -> dict[str, list[RuleCount]]:
    tables: dict[str, list[RuleCount]] = {}
    total = 0
    for rule_table, column in rules:
        deleted = 0
        start: str | None = None
        while True:
            try:
                row = _batch(conn, run_id, rule_table, column, start, batch_size)
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
                # The table or column went away since the rules were read: said, and the
                # other rules go on (the batches done are committed). Any other error (a
                # missing privilege) is the operator's to see, not a rule to skip.
                skipped.append(SkippedRule(rule_table, column, db.one_line(str(exc))))
                break
            if row is None:  # the rule was removed meanwhile
                break
            deleted += int(row[0])
            total += int(row[0])
            if on_batch is not None:
                on_batch(Progress(rule_table, column, deleted, total))
            start = row[1]
            if start is None:
                break
        tables.setdefault(rule_table, []).append(RuleCount(column, deleted))
    return tables


def _batch(
    conn: psycopg.Connection[Any],
    run_id: int,
    table: str,
    column: str,
    start: str | None,
    batch_size: int,
) -> tuple[Any, ...] | None:
    """One batch of one rule and its record in the run (one statement, so one transaction: the
    connection is in autocommit mode)."""
    return conn.execute(
        "SELECT b.deleted, b.next_from, pgsweep.run_record(%s, r.table_name, r.column_name,"
        " b.deleted, 1, p_since => statement_timestamp())"
        " FROM pgsweep.expiry_rule r, pgsweep.purge_range(r, %s, %s) b"
        " WHERE r.table_name = %s::regclass AND r.column_name = %s",
        (run_id, start, batch_size, table, column),
    ).fetchone()


def dry_run(dsn: str, *, table: str | None = None) -> CleanupResult:
    with db.connect(dsn) as conn:
        return garbage(conn, table)


def garbage(conn: psycopg.Connection[Any], table: str | None = None) -> CleanupResult:
    """What the cleanup would delete now, per table and rule (nothing is deleted)."""
    require_engine(conn)
    _, skipped = _rules(conn, table)
    rows = conn.execute(
        "SELECT g.table_name::text, g.column_name::text, g.garbage"
        " FROM pgsweep.garbage_counts(%s::regclass) g",
        (table,),
    ).fetchall()
    tables: dict[str, list[RuleCount]] = {}
    for rule_table, column, count in rows:
        tables.setdefault(str(rule_table), []).append(RuleCount(str(column), int(count)))
    return CleanupResult(True, _tables(tables), skipped)


def _tables(rules: dict[str, list[RuleCount]]) -> list[TableCount]:
    return [TableCount(t, sum(r.rows for r in counts), counts) for t, counts in rules.items()]


def _rules(
    conn: psycopg.Connection[Any], table: str | None
) -> tuple[list[tuple[str, str]], list[SkippedRule]]:
    """The rules that can run, in the order the engine counts them, and those that cannot."""
    if table is not None:
        _require_rules(conn, table)
    rows = conn.execute(
        "SELECT table_name, column_name::text, problem FROM pgsweep.rules"
        " WHERE %s::regclass IS NULL OR table_name = %s::regclass::text"
        " ORDER BY table_name, column_name",
        (table, table),
    ).fetchall()
    runnable = [(str(t), str(c)) for t, c, problem in rows if problem is None]
    skipped = [SkippedRule(str(t), str(c), str(p)) for t, c, p in rows if p is not None]
    return runnable, skipped


def _require_rules(conn: psycopg.Connection[Any], table: str) -> None:
    """A usage error for a --table that does not exist or has no rule."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL,"
        " EXISTS (SELECT FROM pgsweep.expiry_rule r WHERE r.table_name = to_regclass(%s))",
        (table, table),
    ).fetchone()
    assert row is not None
    if not row[0]:
        raise UsageError(f"no table {table!r} in this database")
    if not row[1]:
        raise UsageError(f"table {table!r} has no expiry rule (pgsweep.add_rule)")
