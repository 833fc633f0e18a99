"""``pgsweep health``: one verdict on the database and its cleanup, the Nagios way.

Each check reads the catalog or the statistics views once (cheap: estimates from ``pg_class``,
never a ``count(*)`` of an app table) and says ``ok``, ``warning``, ``critical`` or ``unknown``
with a one-line summary and its evidence. The verdict is the worst status of all checks, ordered
``ok < unknown < warning < critical`` (a check this role may not read does not hide a critical
one), and the exit status is Nagios': 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. A database that
cannot be reached is UNKNOWN (exit 3), not an error.

Checks: connection, tables (sizes and estimated rows), oldest records (per rule), long queries,
blocked queries (who blocks whom, ``pg_blocking_pids``), largest indexes, index bloat a large
delete left (an estimate, no pgstattuple), dead tuples,
vacuum/analyze age, invalid indexes, transaction ID age, replication slots, standby lag, and the
cleanup of every rule (last run, failures, expiry lag against its target) from
``pgsweep.rule_status``.

Every threshold is a constant below (its default), overridable by an option of ``pgsweep health``
or the config file. A read-only role can run every check: ``pg_monitor`` plus the grants of
docs/observability.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgsweep import db
from pgsweep.errors import AuthenticationFailed, CannotConnect
from pgsweep.output import format_bytes, plural
from pgsweep.verify import format_age  # one way of writing ages across the commands

OK, WARNING, CRITICAL, UNKNOWN = "ok", "warning", "critical", "unknown"
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}  # the Nagios plugin convention
_RANK = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}

# --- thresholds (defaults; docs/observability.md explains each) -------------------------------
LONG_QUERY_WARNING_S = 300.0  # a statement (or an open transaction) running for 5 minutes
LONG_QUERY_CRITICAL_S = 3600.0
BLOCKED_WARNING_S = 60.0  # a session waiting this long for a lock another one holds
BLOCKED_CRITICAL_S = 300.0
DEAD_RATIO_WARNING = 0.2  # dead / (live + dead) tuples: autovacuum's default scale factor
DEAD_RATIO_CRITICAL = 0.5
DEAD_MIN_ROWS = 10_000  # below this many dead (or modified) tuples a table is never flagged
MAINTENANCE_AGE_WARNING_S = 7 * 86400.0  # since the last (auto)vacuum / (auto)analyze
XID_AGE_WARNING = 500_000_000  # age(datfrozenxid); wraparound protection stops writes near 2^31
XID_AGE_CRITICAL = 1_500_000_000
SLOT_WAL_WARNING_BYTES = 1 << 30  # WAL a replication slot keeps on disk
SLOT_WAL_CRITICAL_BYTES = 16 << 30
STANDBY_LAG_WARNING_S = 60.0  # replay lag of a standby (on a standby: its own)
STANDBY_LAG_CRITICAL_S = 600.0
NO_SUCCESS_WARNING_S = 26 * 3600.0  # a rule without a successful run for this long: a daily
# job that missed a night (24 h + 2 h of slack)
# An index of a table under a rule this many times the size its live rows need (estimated from
# pg_class and pg_stats, no pgstattuple): what a large delete leaves, since a B-tree never gives
# its pages back to the file system. Never flagged below the minimum size.
INDEX_BLOAT_FACTOR = 4.0
INDEX_BLOAT_MIN_BYTES = 8 << 20
TOP = 5  # tables and indexes listed
STATEMENT_TIMEOUT_MS = 10_000  # each check's query


@dataclass(frozen=True)
class Thresholds:
    """Durations in seconds, sizes in bytes, ratios from 0 to 1, the timeout in ms."""

    long_query_warning: float = LONG_QUERY_WARNING_S
    long_query_critical: float = LONG_QUERY_CRITICAL_S
    blocked_warning: float = BLOCKED_WARNING_S
    blocked_critical: float = BLOCKED_CRITICAL_S
    dead_ratio_warning: float = DEAD_RATIO_WARNING
    dead_ratio_critical: float = DEAD_RATIO_CRITICAL
    dead_min_rows: int = DEAD_MIN_ROWS
    maintenance_age_warning: float = MAINTENANCE_AGE_WARNING_S
    xid_age_warning: int = XID_AGE_WARNING
    xid_age_critical: int = XID_AGE_CRITICAL
    slot_wal_warning: int = SLOT_WAL_WARNING_BYTES
    slot_wal_critical: int = SLOT_WAL_CRITICAL_BYTES
    standby_lag_warning: float = STANDBY_LAG_WARNING_S
    standby_lag_critical: float = STANDBY_LAG_CRITICAL_S
    no_success_warning: float = NO_SUCCESS_WARNING_S
    index_bloat_factor: float = INDEX_BLOAT_FACTOR
    index_bloat_min_bytes: int = INDEX_BLOAT_MIN_BYTES
    top: int = TOP
    statement_timeout: int = STATEMENT_TIMEOUT_MS


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    summary: str
    details: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the details for a person


@dataclass(frozen=True)
class Health:
    database: str
    checks: list[Check]

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def worst(statuses: Any) -> str:
    return max(statuses, key=_RANK.__getitem__, default=OK)


def health(dsn: str, thresholds: Thresholds | None = None) -> Health:
    """Run every check; a database that cannot be reached is one UNKNOWN check."""
    t = thresholds or Thresholds()
    where = db.describe(dsn)
    started = time.monotonic()
    try:
        conn = db.connect(dsn)
    except (CannotConnect, AuthenticationFailed) as exc:
        return Health(where, [Check("connection", UNKNOWN, str(exc))])
    with conn:
        conn.execute(f"SET statement_timeout = {int(t.statement_timeout)}")
        checks = [_connection(conn, time.monotonic() - started)]
        rules = _rule_rows(conn)
        for name, check in _CHECKS:
            try:
                checks.append(check(conn, t, rules))
            except psycopg.Error as exc:
                checks.append(Check(name, UNKNOWN, f"could not check: {_error(exc)}"))
    return Health(where, checks)


def _error(exc: psycopg.Error) -> str:
    return db.one_line(exc.diag.message_primary or str(exc))


Connection = psycopg.Connection[Any]


@dataclass(frozen=True)
class _Rules:
    """``pgsweep.rule_status`` read once for the checks that need it, or why it could not be."""

    rows: list[dict[str, Any]]
    problem: str | None  # the engine or the view is missing, or not readable


def _rule_rows(conn: Connection) -> _Rules:
    try:
        installed = conn.execute("SELECT to_regclass('pgsweep.rule_status') IS NOT NULL").fetchone()
        if not installed or not installed[0]:
            engine = conn.execute("SELECT to_regnamespace('pgsweep') IS NOT NULL").fetchone()
            if not engine or not engine[0]:
                return _Rules([], "no pgsweep engine in this database (pgsweep install)")
            return _Rules([], "the engine has no pgsweep.rule_status: pgsweep install upgrades it")
        cur = conn.execute(
            "SELECT *, extract(epoch FROM expiry_lag) AS expiry_lag_s,"
            " extract(epoch FROM lag_target) AS lag_target_s,"
            " extract(epoch FROM oldest_row_age) AS oldest_row_age_s,"
            " extract(epoch FROM now() - last_success_at) AS since_success_s"
            " FROM pgsweep.rule_status ORDER BY table_name, column_name"
        )
        names = [d.name for d in cur.description or ()]
        return _Rules([dict(zip(names, row, strict=True)) for row in cur.fetchall()], None)
    except psycopg.Error as exc:
        return _Rules([], _error(exc))


def _connection(conn: Connection, seconds: float) -> Check:
    row = conn.execute(
        "SELECT current_setting('server_version'), current_database(), pg_is_in_recovery(),"
        " current_user"
    ).fetchone()
    assert row is not None
    version, database, standby, user = row
    role = "standby" if standby else "primary"
    return Check(
        "connection",
        OK,
        f"PostgreSQL {version}, database {database} ({role}) as {user},"
        f" connected in {seconds * 1000:.0f} ms",
        [
            {
                "version": version,
                "database": database,
                "standby": standby,
                "user": user,
                "connect_s": round(seconds, 4),
            }
        ],
    )


def _tables(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    """Size and estimated rows of every table under a rule and of the largest others."""
    ruled = "c.oid IN (SELECT table_name FROM pgsweep.expiry_rule)"
    cur = conn.execute(_TABLES.format(ruled=ruled if _has_rules_table(conn) else "false"))
    rows = cur.fetchall()
    shown = [r for r in rows if r[4]] + [r for r in rows if not r[4]][: t.top]
    details = [
        {
            "table": name,
            "rows_estimate": None if est < 0 else est,
            "table_bytes": tb,
            "index_bytes": ib,
            "under_rule": ruled,
        }
        for name, est, tb, ib, ruled in shown
    ]
    lines = [
        f"{d['table']}: ~{_count(d['rows_estimate'])} rows, table {_bytes(d['table_bytes'])},"
        f" indexes {_bytes(d['index_bytes'])}" + (" (under a rule)" if d["under_rule"] else "")
        for d in details
    ]
    total = sum(r[2] + r[3] for r in rows)
    summary = f"{plural(len(rows), 'table')}, {_bytes(total)} with indexes"
    return Check("tables", OK, summary, details, lines)


# {ruled}: a constant condition (is the table under a rule?), never user input.
_TABLES = (
    "SELECT c.oid::regclass::text, c.reltuples::bigint, pg_table_size(c.oid),"
    " pg_indexes_size(c.oid), {ruled}"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'm')"
    "   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgsweep', 'cron')"
    "   AND n.nspname NOT LIKE 'pg_toast%%'"
    " ORDER BY pg_total_relation_size(c.oid) DESC"
)


def _has_rules_table(conn: Connection) -> bool:
    row = conn.execute(
        "SELECT to_regclass('pgsweep.expiry_rule') IS NOT NULL"
        " AND has_table_privilege('pgsweep.expiry_rule', 'SELECT')"
    ).fetchone()
    return bool(row and row[0])


def _oldest_records(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    if rules.problem is not None:
        return Check("oldest_records", UNKNOWN, rules.problem)
    details = [
        {
            "table": r["table_name"],
            "rule": r["column_name"],
            "oldest_row_age_s": _num(r["oldest_row_age_s"]),
            "expiry_lag_s": _num(r["expiry_lag_s"]),
        }
        for r in rules.rows
    ]
    lines = [
        f"{d['table']}.{d['rule']}: oldest row {_age(d['oldest_row_age_s'])},"
        f" oldest garbage {_age(d['expiry_lag_s'], none='none')}"
        for d in details
    ]
    oldest = max((d["oldest_row_age_s"] or 0 for d in details), default=0)
    summary = f"{plural(len(details), 'rule')}, oldest row {_age(oldest)}" if details else "no rule"
    return Check("oldest_records", OK, summary, details, lines)


def _long_queries(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    rows = conn.execute(
        "SELECT pid, usename::text, application_name, state, wait_event_type,"
        " extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start"
        "                                 ELSE xact_start END) AS age_s,"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 120)"
        " FROM pg_catalog.pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        "   AND state IS DISTINCT FROM 'idle'"
        "   AND now() - CASE WHEN state = 'active' THEN query_start ELSE xact_start END"
        "       >= make_interval(secs => %s)"
        " ORDER BY age_s DESC",
        (t.long_query_warning,),
    ).fetchall()
    details = [
        {
            "pid": pid,
            "user": user,
            "application_name": app,
            "state": state,
            "wait_event_type": wait,
            "seconds": float(age),
            "query": query,
        }
        for pid, user, app, state, wait, age, query in rows
    ]
    oldest = max((d["seconds"] for d in details), default=0.0)
    status = _level(oldest, t.long_query_warning, t.long_query_critical) if details else OK
    lines = [
        f"pid {d['pid']} ({d['user']}, {d['application_name'] or '-'}, {d['state']})"
        f" for {_age(d['seconds'])}: {d['query']}"
        for d in details[: t.top]
    ]
    summary = (
        f"{len(details)} running for {_age(t.long_query_warning)} or more, the longest"
        f" {_age(oldest)}"
        if details
        else f"none running for {_age(t.long_query_warning)} or more"
    )
    return Check("long_queries", status, summary, details, lines)


def _blocked_queries(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    rows = conn.execute(
        "SELECT a.pid, a.usename::text, a.application_name,"
        " pg_blocking_pids(a.pid) AS blockers,"
        " extract(epoch FROM now() - coalesce("
        "   (SELECT min(l.waitstart) FROM pg_catalog.pg_locks l"
        "     WHERE l.pid = a.pid AND NOT l.granted), a.query_start)) AS waiting_s,"
        " left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120)"
        " FROM pg_catalog.pg_stat_activity a"
        " WHERE a.pid <> pg_backend_pid() AND cardinality(pg_blocking_pids(a.pid)) > 0"
        " ORDER BY waiting_s DESC NULLS LAST"
    ).fetchall()
    # The sessions that block them, as pg_stat_activity shows them (a session gone meanwhile:
    # its pid alone).
    who: dict[int, dict[str, Any]] = {}
    blockers = sorted({b for row in rows for b in row[3]})
    if blockers:
        for pid, user, app, state, query in conn.execute(
            "SELECT pid, usename::text, application_name, state,"
            " left(regexp_replace(query, '\\s+', ' ', 'g'), 120)"
            " FROM pg_catalog.pg_stat_activity WHERE pid = ANY(%s)",
            (blockers,),
        ).fetchall():
            who[int(pid)] = {"user": user, "application_name": app, "state": state, "query": query}
    unknown = {"user": None, "application_name": None, "state": None, "query": None}
    details = [
        {
            "pid": pid,
            "user": user,
            "application_name": app,
            "waiting_s": _num(waiting),
            "query": query,
            "blocked_by": [{"pid": b, **who.get(b, unknown)} for b in blocked_by],
        }
        for pid, user, app, blocked_by, waiting, query in rows
    ]
    longest = max((d["waiting_s"] or 0.0 for d in details), default=0.0)
    status = _level(longest, t.blocked_warning, t.blocked_critical)
    lines = [
        f"pid {d['pid']} ({d['application_name'] or d['user']}) waits {_age(d['waiting_s'])}"
        f" on "
        + ", ".join(
            f"pid {b['pid']} ({b['application_name'] or b['user']}, {b['state']}: {b['query']})"
            for b in d["blocked_by"]
        )
        + f": {d['query']}"
        for d in details[: t.top]
    ]
    summary = (
        f"{len(details)} waiting on a lock, the longest for {_age(longest)}"
        if details
        else "no session waits on another's lock"
    )
    return Check("blocked_queries", status, summary, details, lines)


def _largest_indexes(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    rows = conn.execute(
        "SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text,"
        " pg_relation_size(i.indexrelid), s.idx_scan"
        " FROM pg_catalog.pg_index i"
        " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_catalog.pg_stat_all_indexes s ON s.indexrelid = i.indexrelid"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
        "   AND n.nspname NOT LIKE 'pg_toast%%'"
        " ORDER BY 3 DESC, 1 LIMIT %s",
        (t.top,),
    ).fetchall()
    details = [
        {"index": name, "table": table, "bytes": size, "scans": scans}
        for name, table, size, scans in rows
    ]
    lines = [
        f"{d['index']} on {d['table']}: {_bytes(d['bytes'])}, {_count(d['scans'])} scans"
        for d in details
    ]
    summary = (
        f"the largest: {details[0]['index']}, {_bytes(details[0]['bytes'])}"
        if details
        else "no index"
    )
    return Check("largest_indexes", OK, summary, details, lines)


# Per B-tree index of a table under a rule: its size, and the size its live rows need: each
# entry an 8-byte tuple header plus the key (pg_stats' average widths, 8 bytes where unknown)
# aligned to 8, plus a 4-byte line pointer, leaf pages 90 % full (the B-tree's fillfactor),
# one metapage. An estimate from pg_class.reltuples (the engine analyzes a table after a large
# delete), never a scan; pgstattuple would measure it, and is an extension not everyone has.
_INDEX_BLOAT = """
SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text,
       pg_relation_size(i.indexrelid) AS bytes, greatest(t.reltuples, 0)::bigint AS live,
       current_setting('block_size')::int * (1 + ceil(greatest(t.reltuples, 0)
           * (12 + 8 * ceil(k.width / 8.0))
           / ((current_setting('block_size')::int - 40) * 0.9)))::bigint AS needed
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
  JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  CROSS JOIN LATERAL (
        SELECT coalesce(sum(coalesce(s.avg_width, 8)), 8) AS width
          FROM unnest(i.indkey) AS key(attnum)
          LEFT JOIN pg_catalog.pg_attribute a
                 ON a.attrelid = i.indrelid AND a.attnum = key.attnum
          LEFT JOIN pg_catalog.pg_stats s
                 ON s.schemaname = n.nspname AND s.tablename = t.relname
                AND s.attname = a.attname) k
 WHERE i.indrelid IN (SELECT table_name FROM pgsweep.expiry_rule) AND i.indisvalid
   AND t.reltuples >= 0
 ORDER BY bytes DESC, 1
"""


def _index_bloat(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    """Indexes a large delete left far larger than their rows need, and what to run."""
    if not _has_rules_table(conn):
        return Check("index_bloat", OK, "no table under a rule", [], [])
    rows = conn.execute(_INDEX_BLOAT).fetchall()
    details = [
        {
            "index": index,
            "table": table,
            "bytes": int(size),
            "rows": int(live),
            "needed_bytes": int(needed),
            "factor": round(int(size) / max(int(needed), 1), 1),
            "fix": f"REINDEX INDEX CONCURRENTLY {index};",
        }
        for index, table, size, live, needed in rows
    ]
    over = [
        d
        for d in details
        if d["bytes"] >= t.index_bloat_min_bytes and d["factor"] >= t.index_bloat_factor
    ]
    lines = [
        f"{d['index']} on {d['table']}: {_bytes(d['bytes'])}, about {d['factor']:.0f}x what its"
        f" {d['rows']:,} rows need ({_bytes(d['needed_bytes'])}): {d['fix']}"
        for d in over
    ]
    if over:
        summary = (
            "; ".join(
                f"{d['index']} {_bytes(d['bytes'])}, {d['factor']:.0f}x its rows' need: {d['fix']}"
                for d in over[: t.top]
            )
            + " (space a large delete left; REINDEX CONCURRENTLY rebuilds it without blocking"
            " writes)"
        )
    else:
        summary = (
            f"{plural(len(details), 'index', 'indexes')} of tables under a rule, none over"
            f" {t.index_bloat_factor:.0f}x the size its rows need"
        )
    return Check("index_bloat", WARNING if over else OK, summary, over, lines)


def _dead_tuples(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    rows = conn.execute(
        "SELECT relid::regclass::text, n_live_tup, n_dead_tup,"
        " n_dead_tup::float8 / nullif(n_live_tup + n_dead_tup, 0) AS ratio,"
        " greatest(last_vacuum, last_autovacuum)"
        " FROM pg_catalog.pg_stat_user_tables"
        " WHERE n_dead_tup > 0 ORDER BY n_dead_tup DESC"
    ).fetchall()
    details = [
        {
            "table": table,
            "live": live,
            "dead": dead,
            "dead_ratio": round(ratio or 0.0, 4),
            "last_vacuum": vacuumed,
        }
        for table, live, dead, ratio, vacuumed in rows
    ]
    flagged = [d for d in details if d["dead"] >= t.dead_min_rows]
    status = worst(
        _level(d["dead_ratio"], t.dead_ratio_warning, t.dead_ratio_critical) for d in flagged
    )
    lines = [
        f"{d['table']}: {d['dead']:,} dead of {d['live'] + d['dead']:,}"
        f" ({d['dead_ratio']:.0%}), last vacuum {_when(d['last_vacuum'])}"
        for d in details[: t.top]
    ]
    over = [d for d in flagged if d["dead_ratio"] >= t.dead_ratio_warning]
    if over:
        summary = ", ".join(f"{d['table']} {d['dead_ratio']:.0%} dead" for d in over[: t.top])
    else:
        dead = sum(d["dead"] for d in details)
        summary = f"{plural(dead, 'dead tuple')}, no table over {t.dead_ratio_warning:.0%}"
    return Check("dead_tuples", status, summary, details, lines)


def _maintenance_age(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    """Tables with work for vacuum or analyze that neither has done for a long time."""
    rows = conn.execute(
        "SELECT relid::regclass::text, n_dead_tup, n_mod_since_analyze,"
        " greatest(last_vacuum, last_autovacuum), greatest(last_analyze, last_autoanalyze),"
        " extract(epoch FROM now() - greatest(last_vacuum, last_autovacuum)),"
        " extract(epoch FROM now() - greatest(last_analyze, last_autoanalyze))"
        " FROM pg_catalog.pg_stat_user_tables"
        " WHERE n_dead_tup >= %(min)s OR n_mod_since_analyze >= %(min)s"
        " ORDER BY 1",
        {"min": t.dead_min_rows},
    ).fetchall()
    details = []
    for table, dead, modified, vacuumed, analyzed, vacuum_age, analyze_age in rows:
        late = []
        if dead >= t.dead_min_rows and (
            vacuum_age is None or vacuum_age > t.maintenance_age_warning
        ):
            late.append("vacuum")
        if modified >= t.dead_min_rows and (
            analyze_age is None or analyze_age > t.maintenance_age_warning
        ):
            late.append("analyze")
        if late:
            details.append(
                {
                    "table": table,
                    "dead": dead,
                    "modified_since_analyze": modified,
                    "last_vacuum": vacuumed,
                    "last_analyze": analyzed,
                    "late": late,
                }
            )
    lines = [
        f"{d['table']}: {d['dead']:,} dead, {d['modified_since_analyze']:,} modified;"
        f" last vacuum {_when(d['last_vacuum'])}, last analyze {_when(d['last_analyze'])}"
        for d in details[: t.top]
    ]
    summary = (
        f"{len(details)} tables not vacuumed or analyzed for {_age(t.maintenance_age_warning)}"
        " despite the work waiting"
        if details
        else f"every table with work waiting was vacuumed and analyzed in the last"
        f" {_age(t.maintenance_age_warning)}"
    )
    return Check("vacuum_analyze_age", WARNING if details else OK, summary, details, lines)


def _invalid_indexes(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    rows = conn.execute(
        "SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text"
        " FROM pg_catalog.pg_index i WHERE NOT i.indisvalid ORDER BY 1"
    ).fetchall()
    details = [{"index": name, "table": table} for name, table in rows]
    lines = [
        f"{d['index']} on {d['table']}: invalid (a failed CREATE INDEX CONCURRENTLY?"
        " drop it, then create it again)"
        for d in details
    ]
    summary = (
        "invalid: " + ", ".join(d["index"] for d in details) if details else "every index is valid"
    )
    return Check("invalid_indexes", WARNING if details else OK, summary, details, lines)


def _xid_age(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    rows = conn.execute(
        "SELECT datname::text, age(datfrozenxid), mxid_age(datminmxid)"
        " FROM pg_catalog.pg_database WHERE datallowconn ORDER BY 2 DESC"
    ).fetchall()
    details = [{"database": name, "xid_age": age, "mxid_age": mxid} for name, age, mxid in rows]
    oldest = max((max(d["xid_age"], d["mxid_age"]) for d in details), default=0)
    status = _level(oldest, t.xid_age_warning, t.xid_age_critical)
    lines = [
        f"{d['database']}: {d['xid_age']:,} transactions, {d['mxid_age']:,} multixacts"
        for d in details[: t.top]
    ]
    where = details[0]["database"] if details else "-"
    summary = f"the oldest unfrozen transaction ID is {oldest:,} old ({where})"
    return Check("transaction_id_age", status, summary, details, lines)


def _replication_slots(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    rows = conn.execute(
        "SELECT slot_name::text, slot_type, database::text, active, wal_status,"
        " pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()"
        "                      ELSE pg_current_wal_lsn() END, restart_lsn)::bigint"
        " FROM pg_catalog.pg_replication_slots ORDER BY 1"
    ).fetchall()
    details = [
        {
            "slot": name,
            "type": kind,
            "database": database,
            "active": active,
            "wal_status": wal_status,
            "retained_wal_bytes": retained,
        }
        for name, kind, database, active, wal_status, retained in rows
    ]
    statuses = []
    for d in details:
        level = _level(d["retained_wal_bytes"] or 0, t.slot_wal_warning, t.slot_wal_critical)
        if d["wal_status"] == "lost":
            level = CRITICAL
        elif not d["active"]:
            level = worst((level, WARNING))
        statuses.append(level)
    lines = [
        f"{d['slot']} ({d['type']}{', ' + d['database'] if d['database'] else ''}):"
        f" {'active' if d['active'] else 'INACTIVE'}, retains"
        f" {_bytes(d['retained_wal_bytes'])} of WAL, wal_status {d['wal_status']}"
        for d in details
    ]
    inactive = [d["slot"] for d in details if not d["active"]]
    summary = (
        f"{len(details)} slots"
        + (f", inactive: {', '.join(inactive)}" if inactive else ", all active")
        + f", retaining up to {_bytes(max(d['retained_wal_bytes'] or 0 for d in details))}"
        if details
        else "no replication slot"
    )
    return Check("replication_slots", worst(statuses), summary, details, lines)


def _standby_lag(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    if row and row[0]:
        return _own_replay_lag(conn, t)
    rows = conn.execute(
        "SELECT application_name, client_addr::text, state, sync_state,"
        " coalesce(extract(epoch FROM replay_lag), 0),"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint"
        " FROM pg_catalog.pg_stat_replication ORDER BY 1"
    ).fetchall()
    details = [
        {
            "standby": name,
            "client_addr": addr,
            "state": state,
            "sync_state": sync,
            "replay_lag_s": float(lag),
            "replay_lag_bytes": lag_bytes,
        }
        for name, addr, state, sync, lag, lag_bytes in rows
    ]
    status = worst(
        _level(d["replay_lag_s"], t.standby_lag_warning, t.standby_lag_critical) for d in details
    )
    lines = [
        f"{d['standby']} ({d['client_addr'] or 'local'}, {d['state']}, {d['sync_state']}):"
        f" replay {_age(d['replay_lag_s'])}, {_bytes(d['replay_lag_bytes'])} behind"
        for d in details
    ]
    summary = (
        f"{len(details)} standbys, the furthest behind by"
        f" {_age(max(d['replay_lag_s'] for d in details))}"
        if details
        else "no standby connected"
    )
    return Check("standby_lag", status, summary, details, lines)


def _own_replay_lag(conn: Connection, t: Thresholds) -> Check:
    """On a standby: how far its replay is behind what it received (0 when it replayed it all),
    and whether replay is paused."""
    row = conn.execute(
        "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM"
        "                 pg_last_wal_replay_lsn() THEN 0"
        "            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END,"
        " coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0),"
        " pg_is_wal_replay_paused()"
    ).fetchone()
    assert row is not None
    seconds, behind, paused = _num(row[0]), int(row[1]), bool(row[2])
    if seconds is None:  # nothing replayed since it started, but WAL waits: behind, how long?
        status = WARNING if behind > 0 else OK
    else:
        status = _level(seconds, t.standby_lag_warning, t.standby_lag_critical)
    if paused:
        status = worst((status, WARNING))
    summary = (
        f"this server is a standby, replaying {_age(seconds, none='an unknown time')} behind"
        f" ({_bytes(behind)} received, not replayed)" + ("; replay is PAUSED" if paused else "")
    )
    detail = {"standby": "self", "replay_lag_s": seconds, "replay_lag_bytes": behind,
              "replay_paused": paused}  # fmt: skip
    return Check("standby_lag", status, summary, [detail])


def _rules(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    """Every rule's last run, its failures, and its expiry lag against its target."""
    if rules.problem is not None:
        return Check("rules", UNKNOWN, rules.problem)
    details, statuses, lines, reasons = [], [], [], []
    for r in rules.rows:
        name = f"{r['table_name']}.{r['column_name']}"
        status, why = OK, []
        if r.get("problem"):
            status, why = WARNING, [f"cannot run: {r['problem']}"]
        if r.get("last_run_status") in ("failed", "interrupted"):
            status = CRITICAL
            why.append(f"last run {r['last_run_status']}: {r.get('last_error') or '?'}")
        if r.get("lag_ok") is False:
            status = CRITICAL
            why.append(
                f"expiry lag {_age(r['expiry_lag_s'])} over its target {_age(r['lag_target_s'])}"
            )
        since = _num(r.get("since_success_s"))
        if since is None or since > t.no_success_warning:
            status = worst((status, WARNING))
            why.append(
                "never ran successfully"
                if since is None
                else f"no successful run for {_age(since)}"
            )
        statuses.append(status)
        detail = {
            "table": r["table_name"],
            "rule": r["column_name"],
            "status": status,
            "garbage": r.get("garbage"),
            "expiry_lag_s": _num(r["expiry_lag_s"]),
            "lag_target_s": _num(r["lag_target_s"]),
            "lag_ok": r.get("lag_ok"),
            "last_run_at": r.get("last_run_at"),
            "last_success_at": r.get("last_success_at"),
            "last_run_status": r.get("last_run_status"),
            "last_error": r.get("last_error"),
            "delete_rate": _num(r.get("delete_rate")),
            "backlog_eta": _text(r.get("backlog_eta")),
            "problems": why,
        }
        details.append(detail)
        lines.append(
            f"{name}: {status.upper()}, garbage {_count(detail['garbage'])}, lag"
            f" {_age(detail['expiry_lag_s'], none='none')} (target"
            f" {_age(detail['lag_target_s'])}), last run {_when(detail['last_run_at'])},"
            f" last success {_when(detail['last_success_at'])}"
            + (f": {'; '.join(why)}" if why else "")
        )
        if why:
            reasons.append(f"{name} {why[0]}")
    if not details:
        return Check("rules", OK, "no expiry rule", [], [])
    summary = (
        "; ".join(reasons)
        if reasons
        else (
            f"{plural(len(details), 'rule')}, each within its lag target and run successfully"
            f" in the last {_age(t.no_success_warning)}"
        )
    )
    return Check("rules", worst(statuses), summary, details, lines)


# A rule's lock (pgsweep.rule_lock_keys: the table's oid, hashtext('pgsweep.rule:' || column))
# as pg_locks shows it, read without any engine routine so that a monitoring role needs no grant
# beyond SELECT on pgsweep.expiry_rule.
_RULE_LOCKS = """
SELECT r.table_name::text, r.column_name::text, l.pid, a.usename::text, a.application_name,
       a.state, extract(epoch FROM now() - a.state_change),
       EXISTS (SELECT FROM pgsweep.runs u WHERE u.pid = l.pid AND u.status = 'running')
  FROM pgsweep.expiry_rule r
  JOIN pg_catalog.pg_locks l
    ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                      WHERE d.datname = pg_catalog.current_database())
   AND l.classid = r.table_name::oid
   AND l.objid = pg_catalog.hashtext('pgsweep.rule:' || r.column_name)::oid
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 ORDER BY 1, 2
"""


def _rule_locks(conn: Connection, t: Thresholds, rules: _Rules) -> Check:
    """A rule's lock held by a session that has been idle (no statement, no transaction) for
    --long-query-warning: a CALL pgsweep.sweep() cancelled right after a commit leaves it to its
    session, and other runs skip the rule until that session runs again or ends (a pooled
    connection may keep it for days). A sweep at work is never idle that long (pgsweep cleanup
    is idle only between its batches)."""
    if rules.problem is not None:  # said once, by the rules check
        return Check("rule_locks", OK, f"not checked: {rules.problem}")
    details = [
        {
            "table_name": table,
            "column_name": column,
            "pid": pid,
            "user": user,
            "application_name": app,
            "state": state,
            "idle_s": None if idle is None else float(idle),
            "in_a_run": bool(in_run),
        }
        for table, column, pid, user, app, state, idle, in_run in conn.execute(
            _RULE_LOCKS
        ).fetchall()
    ]
    # Held for --long-query-warning by a session that is idle, or by one with no run of its own
    # open (a lock taken by hand, pgsweep.lock_rule or pg_advisory_lock, keeps every sweep off
    # the rule while that session stays busy with anything else).
    stale = [
        d
        for d in details
        if (d["state"] == "idle" or not d["in_a_run"])
        and d["idle_s"] is not None
        and d["idle_s"] >= t.long_query_warning
    ]
    lines = [
        f"{d['table_name']}.{d['column_name']}: held by pid {d['pid']} ({d['user']},"
        f" {d['application_name'] or '-'}),"
        f" {'idle' if d['state'] == 'idle' else 'with no run of its own'} for"
        f" {_age(d['idle_s'] or 0)}: its next run frees"
        f" it, or end it with SELECT pg_terminate_backend({d['pid']})"
        for d in stale[: t.top]
    ]
    if stale:
        first = stale[0]
        summary = (
            f"{plural(len(stale), 'rule')} held by an idle session or one with no run, e.g."
            f" {first['table_name']}.{first['column_name']} by pid {first['pid']}:"
            f" SELECT pg_terminate_backend({first['pid']}) frees it"
        )
        return Check("rule_locks", WARNING, summary, details, lines)
    held = f"{plural(len(details), 'rule')} being swept now" if details else "no rule being swept"
    return Check(
        "rule_locks", OK, f"{held}, none held by an idle session or one with no run", details, lines
    )


_CHECKS: list[tuple[str, Callable[[Connection, Thresholds, _Rules], Check]]] = [
    ("rules", _rules),
    ("tables", _tables),
    ("oldest_records", _oldest_records),
    ("long_queries", _long_queries),
    ("blocked_queries", _blocked_queries),
    ("rule_locks", _rule_locks),
    ("largest_indexes", _largest_indexes),
    ("index_bloat", _index_bloat),
    ("dead_tuples", _dead_tuples),
    ("vacuum_analyze_age", _maintenance_age),
    ("invalid_indexes", _invalid_indexes),
    ("transaction_id_age", _xid_age),
    ("replication_slots", _replication_slots),
    ("standby_lag", _standby_lag),
]
CHECK_NAMES = ("connection", *(name for name, _ in _CHECKS))


# --- small helpers -----------------------------------------------------------------------------


def _level(value: float, warning: float, critical: float) -> str:
    if value >= critical:
        return CRITICAL
    if value >= warning:
        return WARNING
    return OK


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _age(seconds: float | None, *, none: str = "-") -> str:
    if seconds is None:
        return none
    # Tenths under 10 s, where whole seconds would read "lag 1s over its target 1s".
    return f"{max(seconds, 0.0):.1f}s" if seconds < 10 else format_age(seconds)


def _when(value: Any) -> str:
    return "never" if value is None else str(value)[:19]


def _count(value: Any) -> str:
    return "?" if value is None else f"{int(value):,}"


def _bytes(value: int | None) -> str:
    return "?" if value is None else format_bytes(int(value))
