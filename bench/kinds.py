"""Scenarios of the rule kinds of engine 1.1 (docs/rules.md), each side by side with what a
developer writes by hand:

* **K1 orphans**: an orphan rule swept by ``CALL pgsweep.sweep()`` (batches, each its own
  transaction holding the parent table's SHARE lock) against one hand-written anti-join
  ``DELETE ... WHERE NOT EXISTS``, on the same children (half of them orphans) restored before
  each run;
* **K2 live view**: a primary-key lookup through the view ``create_live_view`` makes against the
  same lookup on the bare table (prepared statements, one client, alternating).

Timed from the client on an open connection; set-up outside the clock, identical for both sides.
"""

from __future__ import annotations

import random
import time
from typing import Any

import psycopg

from bench.report import Figure, ScenarioResult, median
from bench.scenarios import Settings, _orders, _size
from bench.server import BenchServer, connect
from pgsweep import engine

Conn = psycopg.Connection[tuple[Any, ...]]
LOOKUPS = 2000  # primary-key lookups per timed run of K2
LOOKUP = {
    "view": "SELECT id FROM attributes_live WHERE id = %s",
    "table": "SELECT id FROM attributes WHERE id = %s",
}

SCHEMA = """
CREATE TABLE parent (id bigint PRIMARY KEY);
CREATE TABLE child_source (id bigint, user_id bigint);
CREATE TABLE child (id bigint PRIMARY KEY, user_id bigint);
CREATE INDEX ON child (user_id);
CREATE TABLE attributes (id bigint PRIMARY KEY, bucket text NOT NULL, ttl_timestamp bigint);
CREATE INDEX ON attributes (ttl_timestamp);
"""


def _load(conn: Conn, rows: int) -> None:
    conn.execute(SCHEMA)
    # Parents 1..rows/2; children point at 1..rows: half of them are orphans.
    conn.execute("INSERT INTO parent SELECT g FROM generate_series(1, %s) g", (rows // 2,))
    conn.execute(
        "INSERT INTO child_source"
        " SELECT g, (g::bigint * 7919) %% %s + 1 FROM generate_series(1, %s) g",
        (rows, rows),
    )
    # Epoch seconds, a tenth never expiring, a third expired.
    conn.execute(
        "INSERT INTO attributes SELECT g, 'oauth', CASE WHEN g %% 10 = 0 THEN NULL"
        " ELSE extract(epoch FROM now())::bigint + (g %% 3 - 1) * 86400 END"
        " FROM generate_series(1, %s) g",
        (rows,),
    )
    conn.execute("ANALYZE parent")
    conn.execute("ANALYZE attributes")
    conn.execute("SELECT pgsweep.add_orphan_rule('child', 'user_id', 'parent', 'id')")
    conn.execute("SELECT pgsweep.add_rule('attributes', 'ttl_timestamp')")
    conn.execute("SELECT pgsweep.create_live_view('attributes')")


def _restore_children(conn: Conn) -> None:
    conn.execute("TRUNCATE child")
    conn.execute("INSERT INTO child SELECT * FROM child_source")
    conn.execute("VACUUM ANALYZE child")


def kinds(
    server: BenchServer, settings: Settings, rows: int, batch_size: int
) -> list[ScenarioResult]:
    """K1 and K2, on one database built for both."""
    dsn = server.create_database("bench_kinds")
    try:
        engine.install(dsn)
        with connect(dsn) as conn:
            _load(conn, rows)
        return [_orphans(dsn, settings, rows, batch_size), _live_view(dsn, settings, rows)]
    finally:
        server.drop_database("bench_kinds")


def _orphans(dsn: str, settings: Settings, rows: int, batch_size: int) -> ScenarioResult:
    result = ScenarioResult("K1 orphans")
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM child_source c"
            " WHERE NOT EXISTS (SELECT FROM parent p WHERE p.id = c.user_id)"
        ).fetchone()
        expected = int(row[0]) if row else 0
        times: dict[str, list[float]] = {"pgsweep": [], "plain": []}
        deleted: dict[str, list[int]] = {"pgsweep": [], "plain": []}
        for measured, pgsweep_first in _orders(settings):
            for side in ("pgsweep", "plain") if pgsweep_first else ("plain", "pgsweep"):
                _restore_children(conn)
                start = time.perf_counter()
                if side == "pgsweep":
                    done = conn.execute(
                        "CALL pgsweep.sweep('child', %s, '0', NULL)", (batch_size,)
                    ).fetchone()
                    count = int(done[0]) if done else -1
                else:
                    count = conn.execute(
                        "DELETE FROM child c"
                        " WHERE NOT EXISTS (SELECT FROM parent p WHERE p.id = c.user_id)"
                    ).rowcount
                elapsed = (time.perf_counter() - start) * 1000.0
                if measured:
                    times[side].append(elapsed)
                    deleted[side].append(count)
    pgsweep_ms, plain_ms = median(times["pgsweep"]), median(times["plain"])
    result.figures.append(
        Figure(
            result.name,
            f"all orphans of {_size(rows)} children ({expected:,}), batches of {batch_size:,}"
            " vs one anti-join DELETE",
            pgsweep_ms,
            plain_ms,
            "ms",
            pgsweep_ms / plain_ms if plain_ms else None,
            "x the time",
            "report",
            None,
            "hand-written",
        )
    )
    result.facts = {"expected_deleted": expected, "rows_deleted": deleted}
    return result


def _live_view(dsn: str, settings: Settings, rows: int) -> ScenarioResult:
    result = ScenarioResult("K2 live view")
    # Which rows to look up: reproducible, not secret.
    ids = random.Random(settings.seed).sample(range(1, rows + 1), min(LOOKUPS, rows))  # noqa: S311
    times: dict[str, list[float]] = {"view": [], "table": []}
    found: dict[str, list[int]] = {"view": [], "table": []}
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        for measured, view_first in _orders(settings):
            for side in ("view", "table") if view_first else ("table", "view"):
                statement = LOOKUP[side]
                hits = 0
                start = time.perf_counter()
                for key in ids:
                    hits += len(conn.execute(statement, (key,)).fetchall())
                elapsed = (time.perf_counter() - start) * 1000.0 / len(ids)
                if measured:
                    times[side].append(elapsed)
                    found[side].append(hits)
    view_ms, table_ms = median(times["view"]), median(times["table"])
    result.figures.append(
        Figure(
            result.name,
            f"primary-key lookup, {_size(rows)} rows, a third expired: view vs bare table",
            view_ms,
            table_ms,
            "ms",
            view_ms / table_ms if table_ms else None,
            "x the time",
            "report",
            None,
            "bare table",
        )
    )
    result.facts = {"lookups": len(ids), "rows_found": found}
    return result
