"""The engine on its own, as an app that is not Matcha Time meets it (issue 9, "Done when"): on an
empty database, ``pgsweep install``, two tables of the app's own under rules (epoch seconds in a
quoted mixed-case schema, and a ``TIMESTAMP(3)`` holding UTC), then every command covers both
rules with exact counts, never deletes a NULL, and takes the row expired a second ago but not
the one expiring in a minute; no Matcha table ever appears. Install, uninstall and their psql
scripts leave nothing behind and change nothing when run again.

The real pg_cron run of the scheduled sweep over these tables is in tests/test_time_zones.py
(it waits for a cron minute, so it is a soak test).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pgsweep import cron, engine, verify
from tests import own_tables
from tests.cli import Outcome, pgsweep, pgsweep_process, show_operator
from tests.cron_cluster import cron_cluster
from tests.own_tables import ATTRIBUTES, GARBAGE, KEPT, KEPT_LABELS, SESSIONS, TABLES
from tests.pg import connect, tolerate_lag
from tests.sqlrun import assert_same_catalog, catalog_of

MATCHA_TABLES = (
    "users",
    "decks",
    "flashcards",
    "password_reset_tokens",
    "email_verification_tokens",
    "refresh_tokens",
    "alembic_version",
)
RULES = {ATTRIBUTES: own_tables.ATTRIBUTES_COLUMN, SESSIONS: own_tables.SESSIONS_COLUMN}


def user_relations(dsn: str) -> set[str]:
    """Every table and view outside the system schemas, schema-qualified."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p', 'v', 'm')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname !~ '^pg_toast'"
        ).fetchall()
    return {str(r[0]) for r in rows}


def assert_no_matcha_table(dsn: str) -> None:
    relations = user_relations(dsn)
    assert not {f"public.{t}" for t in MATCHA_TABLES} & relations, relations


def engine_state(dsn: str) -> dict[str, Any]:
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT to_regnamespace('pgsweep') IS NOT NULL,"
            " EXISTS (SELECT FROM pg_event_trigger"
            "  WHERE evtname = 'pgsweep_forget_dropped_rules')"
        ).fetchone()
    assert row is not None
    return {"schema": bool(row[0]), "event_trigger": bool(row[1])}


@pytest.fixture
def app_db(fresh_db: str) -> str:
    """An empty database with the engine installed, the app's two tables, rules and rows."""
    assert_no_matcha_table(fresh_db)
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    tolerate_lag(fresh_db)
    return fresh_db


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    done = pgsweep(capsys, *argv)
    assert done.code == 0, (done.out, done.err)
    return done


def assert_cleaned(dsn: str) -> None:
    """Exactly the garbage of both rules is gone: NULLs and the row due in a second remain."""
    with connect(dsn) as conn:
        for table in TABLES:
            assert own_tables.labels(conn, table) == KEPT_LABELS[table], table


# --- install --------------------------------------------------------------------------------


def test_install_puts_the_engine_alone_into_an_empty_database_and_again_changes_nothing(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert user_relations(fresh_db) == set()
    first = run(capsys, "install", "--dsn", fresh_db)
    assert f"installed engine {engine.latest()}" in first.out
    assert user_relations(fresh_db) == {
        "pgsweep.expiry_rule",
        "pgsweep.release",
        "pgsweep.rules",
        # run history and status (docs/observability.md)
        "pgsweep.run",
        "pgsweep.run_rule",
        "pgsweep.rule_counter",
        "pgsweep.trigger_sweep",
        "pgsweep.idle_run",  # function runs that deleted nothing (1.2)
        "pgsweep.rule_dependent",  # what happens to rows referencing a rule's garbage (1.2)
        "pgsweep.partition_detach",  # a cleanup's concurrent detaches not finished (1.4)
        "pgsweep.dependents",
        "pgsweep.runs",
        "pgsweep.rule_last_run",
        "pgsweep.run_failures",
        "pgsweep.rows_deleted_per_day",
        "pgsweep.rule_counters",
        "pgsweep.rule_status",
    }
    assert engine_state(fresh_db) == {"schema": True, "event_trigger": True}
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == (engine.latest(),)
        assert conn.execute("SELECT count(*) FROM pgsweep.release").fetchone() == (1,)
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_'"
            " AND nspname NOT IN ('information_schema', 'public') ORDER BY 1"
        ).fetchall()
    assert schemas == [("pgsweep",)]
    installed = catalog_of(fresh_db)

    again = run(capsys, "install", "--dsn", fresh_db, "--json")
    assert again.json() == {
        "ok": True,
        "command": "install",
        "before": engine.latest(),
        "after": engine.latest(),
        "notices": [],
    }
    text = run(capsys, "install", "--dsn", fresh_db)
    assert "already installed, nothing to do" in text.out
    assert_same_catalog(installed, catalog_of(fresh_db), "a second install changed the catalog")
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM pgsweep.release").fetchone() == (1,)
    assert_no_matcha_table(fresh_db)


def test_install_by_the_real_command_reports_json_and_creates_no_app_table(
    fresh_db: str,
) -> None:
    done = pgsweep_process("install", "--dsn", fresh_db, "--json")
    assert done.code == 0, done.err
    assert done.json() == {
        "ok": True,
        "command": "install",
        "before": None,
        "after": engine.latest(),
        "notices": [],
    }
    assert_no_matcha_table(fresh_db)


# --- every command covers both rules ----------------------------------------------------------


def test_the_rules_view_lists_both_rules_with_type_and_zone(app_db: str) -> None:
    with connect(app_db) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name::text, keep_for::text, value_zone,"
            " column_type::text, problem FROM pgsweep.rules ORDER BY 1"
        ).fetchall()
    assert rows == [
        (ATTRIBUTES, "ttl_timestamp", "00:00:00", None, "bigint", None),
        (SESSIONS, "expiresAt", "00:00:00", "UTC", "timestamp without time zone", None),
    ]


def test_status_counts_the_garbage_of_both_rules_and_never_a_null(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    document = run(capsys, "status", "--dsn", app_db, "--json").json()
    assert document["skipped"] == []
    tables = {t["table"]: t for t in document["tables"]}
    assert set(tables) == set(TABLES)
    for table in TABLES:
        got = tables[table]
        assert (got["rows"], got["garbage"], got["active"]) == (
            GARBAGE[table] + KEPT[table],
            GARBAGE[table],
            KEPT[table],
        ), table
        (rule,) = got["rules"]
        assert (rule["column"], rule["rows"]) == (RULES[table], GARBAGE[table])
        # The oldest garbage expired a day (attributes) or an hour (sessions) ago, the newest
        # a second ago: ages from the instant each value stands for, in UTC.
        oldest = 86400 if table == ATTRIBUTES else 3600
        assert oldest - 5 < rule["oldest_age_s"] < oldest + 5, rule
        assert 0 <= rule["newest_age_s"] < 5, rule
    text = run(capsys, "status", "--dsn", app_db).out
    assert f"{ATTRIBUTES}: {GARBAGE[ATTRIBUTES] + KEPT[ATTRIBUTES]} rows" in text
    assert f"{SESSIONS}: {GARBAGE[SESSIONS] + KEPT[SESSIONS]} rows" in text


def test_cleanup_deletes_exactly_what_its_dry_run_counts_for_both_rules(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dry = run(capsys, "cleanup", "--dry-run", "--dsn", app_db, "--json").json()
    assert dry["would_delete"] == sum(GARBAGE.values())
    assert {t["table"]: t["rules"] for t in dry["tables"]} == {
        t: [
            {
                "column": RULES[t],
                "would_delete": GARBAGE[t],
                "partitions": [],  # neither table is partitioned
                "partitions_left": [],
            }
        ]
        for t in TABLES
    }
    assert dry["skipped"] == []
    with connect(app_db) as conn:  # the dry run deleted nothing
        assert sum(sum(own_tables.labels(conn, t).values()) for t in TABLES) == sum(
            GARBAGE[t] + KEPT[t] for t in TABLES
        )

    done = run(capsys, "cleanup", "--dsn", app_db, "--json").json()
    assert done["deleted"] == dry["would_delete"]
    assert {t["table"]: t["deleted"] for t in done["tables"]} == GARBAGE
    assert_cleaned(app_db)

    again = run(capsys, "cleanup", "--dsn", app_db).out.splitlines()
    assert again[-1].split() == ["total", "deleted", "0"]


def test_cleanup_of_one_table_leaves_the_other_tables_garbage(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run(capsys, "cleanup", "--table", ATTRIBUTES, "--dsn", app_db, "--json").json()
    assert done["deleted"] == GARBAGE[ATTRIBUTES]
    assert [t["table"] for t in done["tables"]] == [ATTRIBUTES]
    with connect(app_db) as conn:
        assert own_tables.labels(conn, ATTRIBUTES) == KEPT_LABELS[ATTRIBUTES]
        assert sum(own_tables.labels(conn, SESSIONS).values()) == GARBAGE[SESSIONS] + KEPT[SESSIONS]
    dry = run(capsys, "cleanup", "--dry-run", "--table", SESSIONS, "--dsn", app_db).out
    assert dry.splitlines()[-1].split() == ["total", "would", "delete", str(GARBAGE[SESSIONS])]
    run(capsys, "cleanup", "--table", SESSIONS, "--dsn", app_db, "--batch-size", "2")
    assert_cleaned(app_db)


def test_verify_is_green_on_the_engine_only_database_and_checks_both_rules(
    app_db: str, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config
) -> None:
    done = run(capsys, "verify", "--no-cron", "--dsn", app_db)
    show_operator(capsys, pytestconfig, done.out)
    lines = done.out.splitlines()
    assert lines[0] == f"PASS  engine: pgsweep engine {engine.latest()}, this code's newest"
    assert lines[-1].endswith(": all checks pass")
    assert f"PASS  rule {ATTRIBUTES}.ttl_timestamp: bigint, kept 00:00:00 past expiry" in lines
    assert (
        f"PASS  rule {SESSIONS}.expiresAt: timestamp without time zone,"
        " kept 00:00:00 past expiry, values in UTC"
    ) in lines
    for table, column in RULES.items():
        for path in ("", " (sweep probe)", " (sweep batch)"):
            (line,) = [
                x for x in lines if x.startswith(f"PASS  plan cleanup {table}.{column}{path}:")
            ]
            assert "can serve it" in line
    assert not [x for x in lines if x.startswith("FAIL")]
    assert not [x for x in lines if " None" in x]  # every scan the planner picks is named
    # No app check runs in a database that is not Matcha Time's.
    assert not [x for x in lines if "revision" in x or "users" in x]
    assert "SKIP  pg_cron job: not checked (--no-cron)" in lines

    document = run(capsys, "verify", "--no-cron", "--dsn", app_db, "--json").json()
    assert document["ok"] is True
    assert {c["status"] for c in document["checks"]} == {"pass", "skip"}


def test_run_sweeps_both_rules_once_and_reports_each_table(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run(capsys, "run", "--every", "1s", "--max-runs", "1", "--dsn", app_db, "--json")
    events = [json.loads(line) for line in done.out.splitlines()]
    (one,) = [e for e in events if e["event"] == "run"]
    assert one["deleted"] == GARBAGE
    assert one["total"] == sum(GARBAGE.values())
    assert {k: events[-1][k] for k in ("event", "ok", "runs")} == {
        "event": "stopped",
        "ok": True,
        "runs": 1,
    }
    assert_cleaned(app_db)


def test_the_sweep_procedure_and_function_cover_both_rules(app_db: str) -> None:
    with connect(app_db) as conn:
        counts = conn.execute(
            "SELECT table_name::text, column_name::text, garbage FROM pgsweep.garbage_counts()"
        ).fetchall()
        assert sorted(counts) == sorted((t, RULES[t], GARBAGE[t]) for t in TABLES)
        row = conn.execute("CALL pgsweep.sweep(NULL, 3, '0', NULL)").fetchone()
    assert row == (sum(GARBAGE.values()),)
    assert_cleaned(app_db)
    with connect(app_db) as conn:
        own_tables.seed(conn)
        assert conn.execute("SELECT pgsweep.sweep_table(%s)", (SESSIONS,)).fetchone() == (
            GARBAGE[SESSIONS],
        )


def test_schedule_registers_the_sweep_of_every_rule_and_verify_sees_the_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with cron_cluster("app") as (_cluster, dsn):
        run(capsys, "install", "--dsn", dsn)
        with connect(dsn) as conn:
            own_tables.create(conn)
            own_tables.seed(conn)
        tolerate_lag(dsn)
        done = run(capsys, "schedule", "--dsn", dsn, "--cron", "*/5 * * * *", "--json").json()
        job = done["job"]
        assert (job["command"], job["database"], job["active"]) == (
            cron.SWEEP_COMMAND,
            "app",
            True,
        )
        assert cron.sweeps_every_rule(job["command"])
        report = verify.verify(dsn)
        assert report.ok, [c.evidence for c in report.failures]
        names = [c.name for c in report.checks]
        assert f"rule {ATTRIBUTES}.ttl_timestamp" in names
        assert f"rule {SESSIONS}.expiresAt" in names
        assert f"pg_cron job {cron.DEFAULT_JOB}" in names
        # The job's own command, run here: both rules, exactly (pg_cron running it on its own
        # minute is tests/test_time_zones.py's soak test).
        with connect(dsn) as conn:
            assert conn.execute(job["command"]).fetchone() == (sum(GARBAGE.values()),)
        assert_cleaned(dsn)
        assert_no_matcha_table(dsn)
        gone = run(capsys, "unschedule", "--dsn", dsn, "--json").json()
        assert [j["name"] for j in gone["removed"]] == [cron.DEFAULT_JOB]


# --- uninstall --------------------------------------------------------------------------------


def test_uninstall_refuses_while_rules_exist_and_force_removes_only_the_engine(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = pgsweep(capsys, "uninstall", "--dsn", app_db)
    assert refused.code == 2
    assert "2 expiry rules still registered" in refused.err
    assert engine_state(app_db) == {"schema": True, "event_trigger": True}
    refused_json = pgsweep(capsys, "uninstall", "--dsn", app_db, "--json")
    assert (refused_json.code, refused_json.json()["exit_code"]) == (2, 2)

    # Consent first: off a terminal, nothing is removed without --yes.
    unconfirmed = pgsweep(capsys, "uninstall", "--force", "--dsn", app_db)
    assert unconfirmed.code == 2
    assert "Re-run with --yes" in unconfirmed.err
    assert engine_state(app_db) == {"schema": True, "event_trigger": True}
    done = run(capsys, "uninstall", "--force", "--yes", "--dsn", app_db, "--json").json()
    assert done == {
        "ok": True,
        "command": "uninstall",
        "version": engine.latest(),
        "rules_dropped": 2,
    }
    assert engine_state(app_db) == {"schema": False, "event_trigger": False}
    with connect(app_db) as conn:  # the app's tables and every row are untouched
        for table in TABLES:
            assert sum(own_tables.labels(conn, table).values()) == GARBAGE[table] + KEPT[table]
    assert user_relations(app_db) == {"ActingWeb.Attributes", "public.sessions"}
    nothing = run(capsys, "uninstall", "--yes", "--dsn", app_db)
    assert "no pgsweep engine installed, nothing to do" in nothing.out


def test_uninstall_without_rules_needs_no_force(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "install", "--dsn", fresh_db)
    done = run(capsys, "uninstall", "--yes", "--dsn", fresh_db)
    assert f"removed engine {engine.latest()}" in done.out
    assert engine_state(fresh_db) == {"schema": False, "event_trigger": False}


def psql(dsn: str, path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-q", "-d", dsn, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def test_the_psql_scripts_install_and_uninstall_as_the_commands_do(fresh_db: str) -> None:
    empty = catalog_of(fresh_db)
    install = engine.release_file(engine.latest(), "install.sql")
    uninstall = engine.release_file(engine.latest(), "uninstall.sql")
    for _ in range(2):  # the second run is a no-op
        done = psql(fresh_db, install)
        assert done.returncode == 0, done.stderr
    assert engine_state(fresh_db) == {"schema": True, "event_trigger": True}
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == (engine.latest(),)
        own_tables.create(conn)
        own_tables.seed(conn)
    with_rules = catalog_of(fresh_db)

    refused = psql(fresh_db, uninstall)
    assert refused.returncode == 3, refused.stderr  # psql: ON_ERROR_STOP in a script
    assert "2 expiry rules are still registered" in refused.stderr
    assert_same_catalog(with_rules, catalog_of(fresh_db), "a refused uninstall changed things")

    forced = psql(fresh_db, uninstall, PGOPTIONS="-c pgsweep.force_uninstall=on")
    assert forced.returncode == 0, forced.stderr
    assert engine_state(fresh_db) == {"schema": False, "event_trigger": False}
    with connect(fresh_db) as conn:
        for table in TABLES:
            assert sum(own_tables.labels(conn, table).values()) == GARBAGE[table] + KEPT[table]
        conn.execute('DROP SCHEMA "ActingWeb" CASCADE')
        conn.execute("DROP TABLE sessions")
    assert_same_catalog(empty, catalog_of(fresh_db), "install then uninstall left something")
    again = psql(fresh_db, uninstall)
    assert again.returncode == 0, again.stderr  # safe to run again


def test_install_uninstall_install_leaves_the_catalog_identical(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = catalog_of(fresh_db)
    run(capsys, "install", "--dsn", fresh_db)
    first = catalog_of(fresh_db)
    assert first.names("event_triggers") == {"pgsweep_forget_dropped_rules"}
    run(capsys, "uninstall", "--yes", "--dsn", fresh_db)
    assert_same_catalog(empty, catalog_of(fresh_db), "uninstall left something behind")
    psql_done = psql(fresh_db, engine.release_file(engine.latest(), "install.sql"))
    assert psql_done.returncode == 0, psql_done.stderr
    assert_same_catalog(first, catalog_of(fresh_db), "the second install differs from the first")
