"""Ask the planner how the cleanup paths and the hot token lookups would run.

Each cleanup path is a statement a purge runs, built by the same functions the purge uses
(``pgsweep.purge_statement``, ``pgsweep.batch_boundary_statement``); each hot lookup is the
statement the app sends. :func:`scans` flattens an ``EXPLAIN (FORMAT JSON)`` plan into the
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


# The app's hot lookups (schema-facts.md). Parameters are placeholder values: the plan for an
# equality on a unique or selective column does not depend on the value.
HOT_LOOKUPS = (
    Path(
        "login by email",
        "users",
        "SELECT id FROM public.users WHERE email = 'someone@example.test'",
    ),
    Path(
        "password_reset_tokens by hash",
        "password_reset_tokens",
        "SELECT user_id FROM public.password_reset_tokens WHERE token_hash = 'no-such-hash'",
    ),
    Path(
        "email_verification_tokens by hash",
        "email_verification_tokens",
        "SELECT user_id FROM public.email_verification_tokens WHERE token_hash = 'no-such-hash'",
    ),
    Path(
        "refresh_tokens by hash",
        "refresh_tokens",
        "SELECT user_id FROM public.refresh_tokens WHERE token_hash = 'no-such-hash'",
    ),
    Path(
        "password_reset_tokens invalidate by user",
        "password_reset_tokens",
        "UPDATE public.password_reset_tokens SET used_at = now()"
        " WHERE user_id = '00000000-0000-0000-0000-000000000000' AND used_at IS NULL",
    ),
    Path(
        "email_verification_tokens invalidate by user",
        "email_verification_tokens",
        "UPDATE public.email_verification_tokens SET used_at = now()"
        " WHERE user_id = '00000000-0000-0000-0000-000000000000' AND used_at IS NULL",
    ),
    Path(
        "refresh_tokens by user",
        "refresh_tokens",
        "SELECT id FROM public.refresh_tokens"
        " WHERE user_id = '00000000-0000-0000-0000-000000000000'",
    ),
)


def cleanup_paths(conn: psycopg.Connection[Any]) -> list[Path]:
    """Per expiry rule, the statements a purge runs (0008): the one DELETE of the cleanup
    functions, then a sweep batch's probe for where it ends and its DELETE of that range, for the
    batch that resumes from the table's oldest value."""
    rules = conn.execute(
        "SELECT r.table_name::text, r.column_name, r.keep_for FROM pgsweep.expiry_rule r"
        " ORDER BY 1, 2"
    ).fetchall()
    paths: list[Path] = []
    for table, column, keep_for in rules:
        # table is regclass output: already a quoted, possibly schema-qualified name.
        name = f"cleanup {table}.{column}"
        oldest = _one(
            conn,
            sql.SQL("SELECT min({})::text FROM {}").format(sql.Identifier(column), sql.SQL(table)),
        )
        whole = _one(
            conn,
            sql.SQL("SELECT pgsweep.rule_condition({}, {}, {})").format(table, column, keep_for),
        )
        batch_start = _one(
            conn,
            sql.SQL("SELECT pgsweep.rule_condition({}, {}, {}, {})").format(
                table, column, keep_for, oldest
            ),
        )
        # The range's upper end is a value from the table; the oldest one stands in for it (the
        # plan's shape does not depend on where a range ends, only that it is bounded).
        batch_range = _one(
            conn,
            sql.SQL("SELECT pgsweep.rule_condition({}, {}, {}, {}, {})").format(
                table, column, keep_for, oldest, oldest
            ),
        )
        delete = "SELECT pgsweep.purge_statement({}, {}, false)"
        statements = (
            ("", delete, (table, whole)),
            (
                " (sweep probe)",
                "SELECT pgsweep.batch_boundary_statement({}, {}, {}, {})",
                (table, column, batch_start, SWEEP_BATCH_SIZE),
            ),
            (" (sweep batch)", delete, (table, batch_range)),
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
