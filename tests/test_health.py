"""``pgsweep health``: every check on a real server, each made to go off by a real cause (a
session holding a lock, a long statement, a failed concurrent index build, dead tuples, an
inactive replication slot), and the Nagios exit statuses."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgsweep import engine, health
from tests import own_tables
from tests.cli import pgsweep
from tests.pg import connect


def checks(outcome: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in outcome.json()["checks"]}


@contextmanager
def waiting_session(dsn: str, statement: str, until: str) -> Iterator[int]:
    """Run ``statement`` in a thread on its own connection; yield its pid once
    pg_stat_activity shows it in the state ``until`` (an SQL condition) holds; cancel it after."""
    conn = connect(dsn)
    pid = conn.info.backend_pid
    error: list[BaseException] = []

    def run() -> None:
        try:
            conn.execute(statement)
        except psycopg.errors.QueryCanceled:
            pass
        except psycopg.Error as exc:  # reported below: a test must see why it did not wait
            error.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        with connect(dsn) as watcher:
            for _ in range(500):
                row = watcher.execute(
                    f"SELECT {until} FROM pg_stat_activity WHERE pid = %s",
                    (pid,),
                ).fetchone()
                if row and row[0]:
                    break
                assert not error, error
                watcher.execute("SELECT pg_sleep(0.01)")
            else:
                raise AssertionError(f"the session never reached {until}")
            yield pid
            watcher.execute("SELECT pg_cancel_backend(%s)", (pid,))
    finally:
        thread.join(10)
        conn.close()


def test_a_quiet_database_is_ok_except_for_what_it_lacks(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No engine: the rule checks cannot run (UNKNOWN); everything else is OK.
    shown = pgsweep(capsys, "health", "--dsn", fresh_db, "--json")
    found = checks(shown)
    assert set(found) == set(health.CHECK_NAMES)
    assert found["rules"]["status"] == "unknown"
    assert "no pgsweep engine" in found["rules"]["summary"]
    assert {n for n, c in found.items() if c["status"] != "ok"} == {"rules", "oldest_records"}
    assert shown.json()["status"] == "unknown"
    assert shown.code == 3
    assert found["standby_lag"]["summary"] == "no standby connected"

    text = pgsweep(capsys, "health", "--dsn", fresh_db)
    first = text.out.splitlines()[0]
    assert first.startswith("PGSWEEP HEALTH UNKNOWN: rules: no pgsweep engine")
    assert "OK       connection: PostgreSQL" in text.out


def test_an_unreachable_database_or_a_bad_option_is_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    shown = pgsweep(capsys, "health", "--dsn", gone, "--json")
    assert shown.code == 3
    assert shown.json()["status"] == "unknown"
    assert shown.json()["checks"][0]["name"] == "connection"
    assert "cannot connect" in shown.json()["checks"][0]["summary"]
    text = pgsweep(capsys, "health", "--dsn", gone)
    assert text.code == 3
    assert text.out.startswith("PGSWEEP HEALTH UNKNOWN: connection: cannot connect")
    bad = pgsweep(capsys, "health", "--dead-ratio-warning", "3")
    assert bad.code == 3  # not 2, which Nagios reads as CRITICAL
    assert "between 0 and 1" in bad.err


def test_a_blocked_session_is_named_with_the_session_that_blocks_it(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(fresh_db) as admin:
        admin.execute("CREATE TABLE queue (id int PRIMARY KEY)")
        admin.execute("INSERT INTO queue VALUES (1)")
    holder = connect(fresh_db, autocommit=False)
    holder_pid = holder.info.backend_pid
    try:
        holder.execute("SET application_name = 'the holder'")
        holder.execute("UPDATE queue SET id = 1 WHERE id = 1")
        with waiting_session(
            fresh_db, "DELETE FROM queue WHERE id = 1", "wait_event_type = 'Lock'"
        ) as waiter:
            shown = pgsweep(
                capsys, "health", "--dsn", fresh_db, "--json",
                "--blocked-warning", "1ms", "--blocked-critical", "1d",
                "--long-query-warning", "1ms", "--long-query-critical", "1d",
            )  # fmt: skip
            text = pgsweep(capsys, "health", "--dsn", fresh_db, "--blocked-warning", "1ms")
    finally:
        holder.close()
    found = checks(shown)
    blocked = found["blocked_queries"]
    assert blocked["status"] == "warning"
    assert [d["pid"] for d in blocked["details"]] == [waiter]
    (blocker,) = blocked["details"][0]["blocked_by"]
    assert blocker["pid"] == holder_pid
    assert blocker["application_name"] == "the holder"
    assert blocker["state"] == "idle in transaction"
    # Both are long at a threshold of 1 ms: the waiter runs, the holder's transaction is open.
    long_pids = {d["pid"] for d in found["long_queries"]["details"]}
    assert {waiter, holder_pid} <= long_pids
    assert found["long_queries"]["status"] == "warning"
    assert f"pid {waiter}" in text.out
    assert "the holder" in text.out
    assert text.code == 1


def test_invalid_indexes_dead_tuples_and_an_inactive_slot_are_reported(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    slot = f"pgsweep_test_{uuid.uuid4().hex[:10]}"
    with connect(fresh_db) as admin:
        admin.execute("CREATE TABLE t (id int, v int) WITH (autovacuum_enabled = false)")
        admin.execute("INSERT INTO t SELECT i, i % 2 FROM generate_series(1, 1000) i")
        with pytest.raises(psycopg.errors.UniqueViolation):
            admin.execute("CREATE UNIQUE INDEX CONCURRENTLY t_v_key ON t (v)")
        admin.execute("DELETE FROM t WHERE id <= 600")
        admin.execute("SELECT pg_stat_force_next_flush()")
        admin.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
    try:
        shown = pgsweep(
            capsys, "health", "--dsn", fresh_db, "--json", "--dead-min-rows", "100",
            "--xid-age-warning", "1", "--slot-wal-warning", "1GB",
        )  # fmt: skip
    finally:
        with connect(fresh_db) as admin:
            admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    found = checks(shown)
    assert found["invalid_indexes"]["status"] == "warning"
    assert found["invalid_indexes"]["details"] == [{"index": "t_v_key", "table": "t"}]
    dead = found["dead_tuples"]
    assert dead["status"] == "critical"  # 600 of 1000: over 50 %
    assert dead["details"][0] == {
        "table": "t", "live": 400, "dead": 600, "dead_ratio": 0.6, "last_vacuum": None,
    }  # fmt: skip
    late = found["vacuum_analyze_age"]
    assert late["status"] == "warning"
    assert late["details"][0]["table"] == "t"
    assert late["details"][0]["late"] == ["vacuum", "analyze"]
    slots = {d["slot"]: d for d in found["replication_slots"]["details"]}
    assert slots[slot]["active"] is False
    assert found["replication_slots"]["status"] == "warning"
    assert found["transaction_id_age"]["status"] == "warning"  # over a threshold of 1
    assert found["tables"]["details"][0]["table"] == "t"
    assert found["largest_indexes"]["details"][0]["index"] == "t_v_key"
    assert shown.json()["status"] == "critical"
    assert shown.code == 2


def test_the_tables_under_a_rule_come_first_with_their_estimates(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
        conn.execute(f"ANALYZE {own_tables.ATTRIBUTES}, {own_tables.SESSIONS}")
    found = checks(pgsweep(capsys, "health", "--dsn", fresh_db, "--json"))
    tables = {d["table"]: d for d in found["tables"]["details"] if d["under_rule"]}
    assert set(tables) == {own_tables.ATTRIBUTES, own_tables.SESSIONS}
    total = {
        t: own_tables.GARBAGE[t] + own_tables.KEPT[t] for t in (own_tables.TABLES)
    }
    assert {t: d["rows_estimate"] for t, d in tables.items()} == total


def test_a_threshold_comes_from_the_config_file_unless_the_command_line_says_otherwise(
    fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "pgsweep.toml"
    config.write_text('[health]\nxid-age-warning = 1\ndead-ratio-warning = "30%"\n')
    shown = pgsweep(capsys, "health", "--dsn", fresh_db, "--config", str(config), "--json")
    xid = checks(shown)["transaction_id_age"]
    assert xid["status"] == "warning"  # any database is older than 1 transaction
    assert "no table over 30%" in checks(shown)["dead_tuples"]["summary"]
    again = pgsweep(
        capsys, "health", "--dsn", fresh_db, "--config", str(config), "--json",
        "--xid-age-warning", "2000000000", "--xid-age-critical", "2100000000",
    )  # fmt: skip
    assert checks(again)["transaction_id_age"]["status"] == "ok"


def test_a_rule_that_never_ran_warns_and_one_whose_last_run_failed_is_critical(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE kept (id int PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX ON kept (expires_at);"
            "SELECT pgsweep.add_rule('kept', 'expires_at');"
            "INSERT INTO kept VALUES (1, now() + interval '1 day')"
        )
    found = checks(pgsweep(capsys, "health", "--dsn", fresh_db, "--json"))
    assert found["rules"]["status"] == "warning"  # no garbage, within target, but never ran
    assert found["rules"]["details"][0]["problems"] == ["never ran successfully"]

    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'kept rows are kept'; END $$;"
            "CREATE TRIGGER refuse BEFORE DELETE ON kept FOR EACH ROW EXECUTE FUNCTION refuse();"
            "UPDATE kept SET expires_at = now() - interval '1 second'"
        )
        conn.execute("CALL pgsweep.sweep()")  # the rule fails; the run ends 'failed'
        assert conn.execute("SELECT status FROM pgsweep.run").fetchone() == ("failed",)
    shown = pgsweep(capsys, "health", "--dsn", fresh_db, "--json")
    rules = checks(shown)["rules"]
    assert rules["status"] == "critical"
    assert rules["details"][0]["last_run_status"] == "failed"
    assert "last run failed: kept rows are kept" in rules["summary"]
    assert shown.code == 2
    scraped = pgsweep(capsys, "metrics", "--dsn", fresh_db).out
    assert 'pgsweep_last_run_failed{rule="expires_at",table="public.kept"} 1.0' in scraped
    assert 'pgsweep_run_failures_total{rule="expires_at",table="public.kept"} 1.0' in scraped
