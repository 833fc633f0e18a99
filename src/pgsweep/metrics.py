"""``pgsweep metrics`` and ``pgsweep serve``: the cleanup's figures in Prometheus' text format.

A custom collector (the official ``prometheus_client`` library's pattern for an exporter) reads
the engine's views on every scrape, over one connection with a short ``statement_timeout``, so
a scrape shows the database as it is now and pgsweep keeps no state of its own. Counters come
from ``pgsweep.rule_counters`` (the totals of the runs pruned from the history, the runs kept,
and the insert trigger's sweeps), so they only ever go up (a
``rate()`` over them is right even after the run history was pruned).

Every series of a rule has the labels ``table`` (as ``regclass`` prints it) and ``rule`` (the
column). ``pgsweep_up`` is 1 when the scrape read everything, 0 when it could not (the database
is down, the role lacks a grant, the engine is older than 1.1); the exporter itself being down
is Prometheus' own ``up``. docs/observability.md lists every series and the example alerts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

import psycopg
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pgsweep import db, rule_status
from pgsweep.errors import PgsweepError, UsageError

DEFAULT_PORT = 9745  # unassigned in Prometheus' list of exporter ports at the time of writing
DEFAULT_ADDRESS = "127.0.0.1"  # only this host unless told otherwise (--address 0.0.0.0)
STATEMENT_TIMEOUT_MS = 5_000  # a scrape's queries; Prometheus' default scrape_timeout is 10 s

RULE = ("table", "rule")


@dataclass(frozen=True)
class _Series:
    name: str
    kind: str  # "gauge" or "counter" (the counter's name has no _total: the library adds it)
    help: str
    column: str  # a column of the rule query below
    labels: Sequence[str] = RULE


# Per rule, in the order they are exposed.
RULE_SERIES = (
    _Series(
        "pgsweep_rows_deleted",
        "counter",
        "Rows the cleanup deleted, since the engine was installed (pgsweep.rule_counters)",
        "rows_deleted_total",
    ),
    _Series(
        "pgsweep_rows_archived",
        "counter",
        "Rows the cleanup archived before deleting",
        "rows_archived_total",
    ),
    _Series("pgsweep_runs", "counter", "Cleanup runs of the rule", "runs_total"),
    _Series(
        "pgsweep_run_failures", "counter", "Cleanup runs of the rule that failed", "failures_total"
    ),
    _Series(
        "pgsweep_garbage_rows",
        "gauge",
        "Rows the rule marks as garbage, not deleted yet",
        "garbage",
    ),
    _Series("pgsweep_rows_alive", "gauge", "Rows the rule will expire later", "rows_alive"),
    _Series(
        "pgsweep_rows_never_expire",
        "gauge",
        "Rows whose expiry column is NULL",
        "rows_never_expire",
    ),
    _Series(
        "pgsweep_expiry_lag_seconds",
        "gauge",
        "Age of the oldest garbage row: how long"
        " past its expiry it still exists (0 when there is none)",
        "expiry_lag_s",
    ),
    _Series(
        "pgsweep_expiry_lag_target_seconds", "gauge", "The rule's expiry lag target", "lag_target_s"
    ),
    _Series(
        "pgsweep_oldest_row_age_seconds",
        "gauge",
        "Age of the oldest row of the table by the rule's column",
        "oldest_row_age_s",
    ),
    _Series(
        "pgsweep_delete_rate_rows_per_second",
        "gauge",
        "Rows deleted per second, measured from the run history",
        "delete_rate",
    ),
    _Series(
        "pgsweep_backlog_eta_seconds",
        "gauge",
        "When the garbage will be gone at the measured delete rate",
        "backlog_eta_s",
    ),
    _Series(
        "pgsweep_last_run_timestamp_seconds",
        "gauge",
        "When the rule's last run started (Unix time)",
        "last_run_ts",
    ),
    _Series(
        "pgsweep_last_run_duration_seconds",
        "gauge",
        "How long the rule's last finished run took",
        "last_run_duration_s",
    ),
    _Series(
        "pgsweep_last_run_failed", "gauge", "1 when the rule's last run failed", "last_run_failed"
    ),
    _Series(
        "pgsweep_last_success_timestamp_seconds",
        "gauge",
        "When the rule's last successful run ended (Unix time)",
        "last_success_ts",
    ),
)
# Per table (a table with two rules is one series).
TABLE_SERIES = (
    _Series(
        "pgsweep_table_bytes",
        "gauge",
        "Size of the table (pg_table_size)",
        "table_bytes",
        ("table",),
    ),
    _Series(
        "pgsweep_index_bytes", "gauge", "Size of the table's indexes", "index_bytes", ("table",)
    ),
    _Series(
        "pgsweep_dead_tuples",
        "gauge",
        "Dead tuples of the table (pg_stat_user_tables)",
        "dead_tuples",
        ("table",),
    ),
)

# What the metrics add to pgsweep.rule_status (read by pgsweep.rule_status, as status reads it):
# the counters and the last run, by the view's schema-qualified table name.
_RUNS_QUERY = """
SELECT c.table_name::text, c.column_name::text,
       extract(epoch FROM c.last_success_at) AS counted_success_ts,
       coalesce(c.rows_deleted_total, 0), coalesce(c.rows_archived_total, 0),
       coalesce(c.runs_total, 0), coalesce(c.failures_total, 0)
  FROM pgsweep.rule_counters c
"""
_LAST_RUN_QUERY = """
SELECT l.table_name::text, l.column_name::text,
       extract(epoch FROM l.ended_at - l.started_at),
       CASE WHEN l.run_id IS NULL OR l.run_status = 'running' THEN NULL
            WHEN l.run_status IN ('failed', 'interrupted') OR l.error IS NOT NULL THEN 1
            ELSE 0 END
  FROM pgsweep.rule_last_run l
"""


def _epoch(moment: Any) -> float | None:
    return None if moment is None else float(moment.timestamp())


def _rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every rule's figures, by the names of the series' columns."""
    with conn.transaction():  # one snapshot, one now()
        read = rule_status.read(conn)
        counters = {(str(r[0]), str(r[1])): r[2:] for r in conn.execute(_RUNS_QUERY).fetchall()}
        last = {(str(r[0]), str(r[1])): r[2:] for r in conn.execute(_LAST_RUN_QUERY).fetchall()}
    rows = []
    for rule in read:
        counted = counters.get((rule.key, rule.column), (None, 0, 0, 0, 0))
        duration, failed = last.get((rule.key, rule.column), (None, None))
        successes = [t for t in (_epoch(rule.last_success_at), _float(counted[0])) if t is not None]
        rows.append(
            {
                "table_name": rule.key,
                "column_name": rule.column,
                "garbage": rule.garbage,
                "rows_alive": rule.rows_alive,
                "rows_never_expire": rule.rows_never_expire,
                "expiry_lag_s": rule.expiry_lag_s,
                "lag_target_s": rule.lag_target_s,
                "oldest_row_age_s": rule.oldest_row_age_s,
                "delete_rate": rule.delete_rate,
                "backlog_eta_s": rule.backlog_eta_s,
                "last_run_ts": _epoch(rule.last_run_at),
                "last_success_ts": max(successes) if successes else None,
                "table_bytes": rule.table_bytes,
                "index_bytes": rule.index_bytes,
                "dead_tuples": rule.dead_tuples,
                "rows_deleted_total": counted[1],
                "rows_archived_total": counted[2],
                "runs_total": counted[3],
                "failures_total": counted[4],
                "last_run_duration_s": _float(duration),
                "last_run_failed": failed,
            }
        )
    return rows


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Scrape:
    """One reading of the database: the rules' rows, or why there are none."""

    rows: list[dict[str, Any]]
    error: str | None
    seconds: float
    engine: str | None


def scrape(dsn: str, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> Scrape:
    """Read every rule's figures now (never raises: a failure is ``error``)."""
    started = time.monotonic()
    try:
        with db.connect(dsn) as conn:
            conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
            version = conn.execute("SELECT pgsweep.version()").fetchone()
            rows = _rows(conn)
            engine = str(version[0]) if version else None
    except PgsweepError as exc:
        return Scrape([], str(exc), time.monotonic() - started, None)
    except psycopg.Error as exc:
        message = db.one_line(exc.diag.message_primary or str(exc))
        return Scrape([], message, time.monotonic() - started, None)
    return Scrape(rows, None, time.monotonic() - started, engine)


def families(reading: Scrape) -> Iterator[Metric]:
    """The metric families of one reading, in the exposition's order."""
    up = GaugeMetricFamily(
        "pgsweep_up", "1 when this scrape read the engine's views, 0 when it could not"
    )
    up.add_metric([], 0 if reading.error else 1)
    yield up
    duration = GaugeMetricFamily(
        "pgsweep_scrape_duration_seconds", "How long reading the database took"
    )
    duration.add_metric([], reading.seconds)
    yield duration
    if reading.engine is not None:
        info = GaugeMetricFamily(
            "pgsweep_engine_info", "The pgsweep engine release installed", labels=["version"]
        )
        info.add_metric([reading.engine], 1)
        yield info
    for series in RULE_SERIES:
        yield _family(series, reading.rows, lambda r: [r["table_name"], r["column_name"]])
    tables: dict[str, dict[str, Any]] = {}
    for row in reading.rows:
        tables.setdefault(row["table_name"], row)
    for series in TABLE_SERIES:
        yield _family(series, list(tables.values()), lambda r: [r["table_name"]])


def _family(series: _Series, rows: Iterable[dict[str, Any]], labels: Any) -> Metric:
    family: GaugeMetricFamily | CounterMetricFamily
    if series.kind == "counter":
        family = CounterMetricFamily(series.name, series.help, labels=list(series.labels))
    else:
        family = GaugeMetricFamily(series.name, series.help, labels=list(series.labels))
    for row in rows:
        value = row.get(series.column)
        if value is not None:  # no sample rather than a made-up one (e.g. never ran)
            family.add_metric(labels(row), float(value))
    return family


class PgsweepCollector(Collector):
    """Reads the database on every ``collect()`` (every scrape)."""

    def __init__(self, dsn: str, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> None:
        self.dsn = dsn
        self.statement_timeout_ms = statement_timeout_ms

    def collect(self) -> Iterable[Metric]:
        return list(families(scrape(self.dsn, self.statement_timeout_ms)))

    def describe(self) -> Iterable[Metric]:
        # Registering must not connect: describe without reading.
        return []


def registry(dsn: str, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> CollectorRegistry:
    """A registry with only pgsweep's collector (no process or Python runtime series)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PgsweepCollector(dsn, statement_timeout_ms))
    return registry


def exposition(dsn: str, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> str:
    """The Prometheus text exposition (format 0.0.4) of one scrape."""
    return generate_latest(registry(dsn, statement_timeout_ms)).decode()


def serve(
    dsn: str,
    address: str = DEFAULT_ADDRESS,
    port: int = DEFAULT_PORT,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
) -> WSGIServer:
    """Serve ``/metrics`` on ``address:port`` from a daemon thread (the library's own server);
    the caller stops it with ``shutdown()``. Port 0 picks a free port: ``server_address``."""
    try:
        server, _thread = start_http_server(port, address, registry(dsn, statement_timeout_ms))
    except OSError as exc:
        raise UsageError(f"cannot listen on {address} port {port}: {exc.strerror}") from None
    return server
