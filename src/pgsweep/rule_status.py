"""The one reader of the engine's view ``pgsweep.rule_status``, for ``status`` and ``metrics``.

One query, one row per rule, read the same way for every consumer so that ``pgsweep status``
and the Prometheus series cannot disagree: live rows are the view's ``rows_alive`` (set and not
yet past the cutoff; never-expiring rows apart), durations are seconds, and the age of the
oldest row is never negative (the view's ``oldest_row_age`` is negative when even the smallest
value of the column lies in the future, as for an ``expires_at`` column whose rows all expire
later: no row is old yet, its age is 0).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

_QUERY = (
    # table: the name as this session's search_path shows it (a dropped table's rule keeps its
    # name); key: the view's own name, schema-qualified (run history's, the metrics' label).
    "SELECT coalesce(to_regclass(table_name)::text, table_name), table_name::text,"
    " column_name::text, problem, garbage, rows_total, rows_never_expire, rows_alive,"
    " counts_estimated,"
    " extract(epoch FROM expiry_lag)::float8, extract(epoch FROM newest_garbage_lag)::float8,"
    " CASE WHEN oldest_row_age < interval '0' THEN 0"
    " ELSE extract(epoch FROM oldest_row_age)::float8 END,"
    " extract(epoch FROM lag_target)::float8,"
    " lag_ok, last_run_at, last_run_status, last_success_at, last_error, deleted_24h,"
    " delete_rate, extract(epoch FROM backlog_eta)::float8, table_bytes, index_bytes,"
    " dead_tuples, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze"
    " FROM pgsweep.rule_status ORDER BY 1, 3"
)


@dataclass(frozen=True)
class RuleRow:
    """One row of ``pgsweep.rule_status``, durations in seconds."""

    table: str
    key: str
    column: str
    problem: str | None
    garbage: int
    rows_total: int | None
    rows_never_expire: int | None
    rows_alive: int | None
    counts_estimated: bool
    expiry_lag_s: float | None
    newest_garbage_lag_s: float | None
    oldest_row_age_s: float | None  # never negative
    lag_target_s: float | None
    lag_ok: bool | None
    last_run_at: dt.datetime | None
    last_run_status: str | None
    last_success_at: dt.datetime | None
    last_error: str | None
    deleted_24h: int
    delete_rate: float | None
    backlog_eta_s: float | None
    table_bytes: int
    index_bytes: int
    dead_tuples: int | None
    last_vacuum: dt.datetime | None
    last_autovacuum: dt.datetime | None
    last_analyze: dt.datetime | None
    last_autoanalyze: dt.datetime | None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def read(conn: psycopg.Connection[Any]) -> list[RuleRow]:
    """Every rule's row of ``pgsweep.rule_status``, by table and column."""
    # Timestamps come back as text psycopg reads in DateStyle ISO only; the session's own
    # DateStyle (a role's or database's default) changes nothing the engine computes.
    conn.execute("SET datestyle = 'ISO'")
    rows = []
    for r in conn.execute(_QUERY).fetchall():
        rows.append(
            RuleRow(
                table=str(r[0]),
                key=str(r[1]),
                column=str(r[2]),
                problem=None if r[3] is None else str(r[3]),
                garbage=int(r[4] or 0),
                rows_total=_int(r[5]),
                rows_never_expire=_int(r[6]),
                rows_alive=_int(r[7]),
                counts_estimated=bool(r[8]),
                expiry_lag_s=_float(r[9]),
                newest_garbage_lag_s=_float(r[10]),
                oldest_row_age_s=_float(r[11]),
                lag_target_s=_float(r[12]),
                lag_ok=r[13],
                last_run_at=r[14],
                last_run_status=r[15],
                last_success_at=r[16],
                last_error=r[17],
                deleted_24h=int(r[18] or 0),
                delete_rate=_float(r[19]),
                backlog_eta_s=_float(r[20]),
                table_bytes=int(r[21] or 0),
                index_bytes=int(r[22] or 0),
                dead_tuples=_int(r[23]),
                last_vacuum=r[24],
                last_autovacuum=r[25],
                last_analyze=r[26],
                last_autoanalyze=r[27],
            )
        )
    return rows
