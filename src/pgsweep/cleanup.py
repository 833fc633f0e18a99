"""``pgsweep cleanup``: run the master cleanup, or say exactly what it would delete.

The cleanup is the contract function ``cleanup_all_expired_tokens()`` (0006), the very call the
pg_cron job makes. ``--dry-run`` asks ``pgsweep.garbage_counts()`` (0007): per rule, the rows it
would delete now, each row counted once per table and every count a range scan of the rule's own
index, so asking is cheap and deletes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from pgsweep import db
from pgsweep.deploy import require_routine

# cleanup_all_expired_tokens()'s output columns, and the table each one counts.
RESULT_COLUMNS = {
    "password_reset_cleaned": "password_reset_tokens",
    "email_verification_cleaned": "email_verification_tokens",
    "refresh_tokens_cleaned": "refresh_tokens",
}


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

    @property
    def total(self) -> int:
        return sum(t.rows for t in self.tables)


def cleanup(dsn: str) -> CleanupResult:
    with db.connect(dsn) as conn:
        require_routine(conn, "public.cleanup_all_expired_tokens()", "0006")
        cur = conn.execute("SELECT * FROM public.cleanup_all_expired_tokens()")
        row = cur.fetchone()
        assert row is not None
        assert cur.description is not None
        values = dict(zip((c.name for c in cur.description), row, strict=True))
    return CleanupResult(
        False, [TableCount(table, int(values[col]), []) for col, table in RESULT_COLUMNS.items()]
    )


def dry_run(dsn: str) -> CleanupResult:
    with db.connect(dsn) as conn:
        return garbage(conn)


def garbage(conn: psycopg.Connection[Any]) -> CleanupResult:
    """What the cleanup would delete now, per table and rule (nothing is deleted)."""
    require_routine(conn, "pgsweep.garbage_counts(regclass)", "0007")
    rows = conn.execute(
        "SELECT table_name::text, column_name::text, garbage FROM pgsweep.garbage_counts()"
    ).fetchall()
    tables: dict[str, list[RuleCount]] = {}
    for table, column, count in rows:
        tables.setdefault(str(table), []).append(RuleCount(str(column), int(count)))
    return CleanupResult(
        True, [TableCount(t, sum(r.rows for r in rules), rules) for t, rules in tables.items()]
    )
