"""Consent before destruction: a downgrade whose down scripts destroy data, an uninstall, the
app's chain on a database that is not the app's, and a cleanup that would delete an unusual
share of a table (more than :data:`CONSENT_SHARE` of its rows) run only when told.

On a terminal the operator sees what would happen and answers y/N; anywhere else (a pipe, CI,
cron) the command refuses unless ``--yes`` was given, and says how to proceed.

A cleanup asks by share, not by row count: a backlog grows with the traffic and a nightly job
must keep working when it does, while a rule that would take most of a table at once is the
sign of a wrong rule (a column in the wrong unit, a condition turned around).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from pgsweep.errors import PgsweepError, UsageError

if TYPE_CHECKING:
    import psycopg

    from pgsweep.deploy import DowngradePlan

# A cleanup that would delete more than this share of a table's rows asks first (--max-share
# changes it for one run).
CONSENT_SHARE = 0.5
# Tables where fewer rows are due than this never ask: a share of a handful of rows says little
# about the rule, and a first cleanup of a small new table is often most of it.
CONSENT_MIN_ROWS = 1_000
# Up to this many rows (the planner's estimate) a table is counted exactly for its share.
_EXACT_COUNT_ROWS = 1_000_000


@dataclass(frozen=True)
class Share:
    """What a cleanup would delete from one table against the rows the table holds."""

    table: str
    due: int
    rows: int  # the table's rows (counted, or the planner's estimate on a large table)

    @property
    def share(self) -> float:
        return 1.0 if self.rows <= 0 else min(self.due / self.rows, 1.0)


def shares(conn: psycopg.Connection[Any], due: Mapping[str, int]) -> list[Share]:
    """The share each table's due rows are of the table (``due``: table -> rows to delete)."""
    found = []
    for table, rows in due.items():
        # A partitioned table's own reltuples is -1: its leaves' estimates add up instead.
        row = conn.execute(
            "SELECT CASE WHEN bool_and(c.reltuples < 0) THEN -1"
            " ELSE sum(greatest(c.reltuples, 0)) END::bigint"
            " FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid"
            " WHERE t.isleaf",
            (table,),
        ).fetchone()
        estimate = int(row[0]) if row and row[0] is not None else -1
        total = _count(conn, table) if estimate < _EXACT_COUNT_ROWS else estimate
        found.append(Share(table, rows, max(total, rows)))
    return found


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    from psycopg import sql

    name = conn.execute(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s::regclass",
        (table,),
    ).fetchone()
    assert name is not None
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name[0], name[1]))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def unusual(found: list[Share], max_share: float) -> list[Share]:
    """The tables a cleanup may not empty this far without consent."""
    return [s for s in found if s.due >= CONSENT_MIN_ROWS and s.share > max_share]


def require_share(
    found: list[Share],
    max_share: float,
    *,
    yes: bool,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> None:
    """Return when no table loses more than ``max_share`` of its rows (or consent is given)."""
    large = unusual(found, max_share)
    if not large:
        return
    what = "; ".join(f"{s.table}: {s.due:,} of {s.rows:,} rows ({s.share:.0%})" for s in large)
    confirm(
        f"this cleanup would delete more than {max_share:.0%} of a table, the sign of a wrong"
        f" rule ({what}). Check the rule first (pgsweep cleanup --dry-run, pgsweep status);"
        " --max-share raises the limit for one run",
        yes=yes,
        stdin=stdin,
        stderr=stderr,
    )


class NotConfirmed(PgsweepError):
    """The operator answered no at the prompt: nothing was changed (exit 1)."""


def preview(plan: DowngradePlan) -> str:
    """What the downgrade runs, newest first, and what each destructive step destroys."""
    target = plan.target or "base"
    lines = [f"downgrade {plan.before or 'base'} -> {target} runs, in this order:"]
    for step in plan.steps:
        mark = f"   DESTROYS {step.destroys}" if step.destroys else ""
        lines.append(f"  {step.revision}  {step.down_sql}{mark}")
    lines.append(
        "The data named above cannot be brought back by an upgrade."
        f" The SQL itself: matcha-time downgrade {_range(plan)} --sql"
    )
    return "\n".join(lines) + "\n"


def require(
    plan: DowngradePlan,
    *,
    yes: bool,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> None:
    """Return when the downgrade may run; raise when it may not (nothing has run yet)."""
    if yes or not plan.destroying:
        return
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    target = plan.target or "base"
    if not stdin.isatty():
        what = "; ".join(f"{s.revision}: {s.destroys}" for s in plan.destroying)
        raise UsageError(
            f"downgrade to {target} destroys data ({what}); nothing was changed."
            f" Re-run with --yes to confirm (see the SQL first:"
            f" matcha-time downgrade {_range(plan)} --sql)"
        )
    stderr.write(preview(plan))
    stderr.write("Proceed? [y/N] ")
    stderr.flush()
    answer = stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise NotConfirmed(f"downgrade to {target} not confirmed; nothing was changed")


def confirm(
    what: str,
    *,
    yes: bool,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> None:
    """Return when ``what`` (a sentence: what will be destroyed) may happen; raise otherwise."""
    if yes:
        return
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    if not stdin.isatty():
        raise UsageError(f"{what}; nothing was changed. Re-run with --yes to confirm")
    stderr.write(f"{what}.\nProceed? [y/N] ")
    stderr.flush()
    if stdin.readline().strip().lower() not in ("y", "yes"):
        raise NotConfirmed("not confirmed; nothing was changed")


def _range(plan: DowngradePlan) -> str:
    return f"{plan.before or 'base'}:{plan.target or 'base'}"
