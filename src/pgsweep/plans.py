"""Ask the planner how the cleanup paths of every rule (and an app's hot lookups) would run.

Each cleanup path is a statement a purge runs, built by the same functions the purge uses
(``pgsweep.rule_condition``, ``pgsweep.purge_statement``, ``pgsweep.batch_boundary_statement``);
an app's hot lookup (:mod:`pgsweep.matcha`) is a statement the app sends. :func:`scans`
flattens an ``EXPLAIN (FORMAT JSON)`` plan into the
table scans it contains, so a caller can say which index serves a path, or that none does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgsweep.runner import SWEEP_BATCH_SIZE

INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})


@dataclass(frozen=True)
class Scan:
    node_type: str
    relation: str | None  # the table scanned (for a Bitmap Index Scan: the index's table)
    index: str | None

    @property
    def uses_index(self) -> bool:
        return self.node_type in INDEX_SCANS


@dataclass(frozen=True)
class Path:
    """A statement whose plan must be index-driven on ``table`` (ideally via ``index``)."""

    name: str
    table: str
    statement: str


def cleanup_paths(conn: psycopg.Connection[Any]) -> list[Path]:
    """Per expiry rule that can run, the statements a purge runs: the one DELETE of
    ``pgsweep.purge_rule``, then a sweep batch's probe for where it ends and its DELETE of that
    range, for the batch that resumes from the table's oldest value."""
    rules = conn.execute(
        "SELECT r.table_name::text, r.column_name FROM pgsweep.expiry_rule r"
        " WHERE pgsweep.rule_problem(r) IS NULL ORDER BY 1, 2"
    ).fetchall()
    paths: list[Path] = []
    for table, column in rules:
        # table is regclass output: already a quoted, possibly schema-qualified name.
        name = f"cleanup {table}.{column}"
        # The oldest value the batches meet: on a partitioned table, partitions past the cutoff
        # are removed whole before them (pgsweep.expired_partitions), so not theirs.
        oldest = _one(
            conn,
            sql.SQL(
                "SELECT min({})::text FROM {} WHERE tableoid <> ALL (ARRAY("
                "SELECT e.partition FROM pgsweep.expiry_rule r, pgsweep.expired_partitions(r) e"
                " WHERE r.table_name = {}::regclass AND r.column_name = {}))"
            ).format(sql.Identifier(column), sql.SQL(table), table, column),
        )
        # A batch's range ends at a value from the table; the oldest one stands in for it (the
        # plan's shape does not depend on where a range ends, only that it is bounded). On a
        # partitioned table that empty range would be pruned to no scan at all: up to the
        # cutoff instead.
        partitioned = _one(
            conn,
            sql.SQL("SELECT relkind = 'p' FROM pg_class WHERE oid = {}::regclass").format(table),
        )
        batch_end = None if partitioned else oldest

        def condition(*bounds: object, table: str = table, column: str = column) -> Any:
            extra = sql.SQL("").join(sql.SQL(", {}").format(b) for b in bounds if b is not None)
            return _one(
                conn,
                sql.SQL(
                    "SELECT pgsweep.rule_condition(r{}) FROM pgsweep.expiry_rule r"
                    " WHERE r.table_name = {}::regclass AND r.column_name = {}"
                ).format(extra, table, column),
            )

        delete = "SELECT pgsweep.purge_statement({}, {}, false)"
        statements = (
            ("", delete, (table, condition())),
            (
                " (sweep probe)",
                "SELECT pgsweep.batch_boundary_statement({}, {}, {}, {})",
                (table, column, condition(oldest), SWEEP_BATCH_SIZE),
            ),
            (" (sweep batch)", delete, (table, condition(oldest, batch_end))),
        )
        for label, query, args in statements:
            statement = _one(conn, sql.SQL(query).format(*args))
            paths.append(Path(f"{name}{label}", table, statement))
    return paths


def _one(conn: psycopg.Connection[Any], query: sql.Composed) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def explain(conn: psycopg.Connection[Any], statement: str) -> dict[str, Any]:
    """``EXPLAIN (FORMAT JSON)``: planned, never executed."""
    query = sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(statement))
    row = conn.execute(query).fetchone()
    assert row is not None
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def scans(plan: dict[str, Any]) -> list[Scan]:
    """Every scan node in the plan, depth first."""
    return list(_walk(plan))


def _walk(node: dict[str, Any]) -> Iterator[Scan]:
    node_type = str(node.get("Node Type", ""))
    if "Scan" in node_type and node_type not in {"CTE Scan", "Function Scan", "Result"}:
        yield Scan(node_type, node.get("Relation Name"), node.get("Index Name"))
    for child in node.get("Plans", []):
        yield from _walk(child)
