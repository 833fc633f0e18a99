"""Rules survive the app's DDL. With the event trigger (installed by a superuser), dropping a
ruled table, a ruled column or a ruled partition removes exactly those rules and says so
(NOTICE); a renamed column leaves a rule that reports its problem, is skipped by every consumer
with a warning or a report, and fails verify for that rule only. Without the event trigger
(dropped, or an install by a role that is not a superuser), a dropped table's rule stays, is
reported, and never stops the cleanup of the other tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgsweep import engine, verify
from tests import own_tables
from tests.cli import Outcome, pgsweep
from tests.own_tables import ATTRIBUTES, GARBAGE, KEPT, KEPT_LABELS, SESSIONS
from tests.pg import PgServer, connect, tolerate_lag
from tests.roles import temporary_roles
from tests.sqlrun import psql_file
from tests.tokens import TOKEN_TABLES, add_token, add_user, remaining_ids, without_triggers


class Messages:
    """Every NOTICE and WARNING a connection receives."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.items: list[tuple[str, str]] = []
        conn.add_notice_handler(self._add)

    def _add(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        self.items.append((str(diagnostic.severity_nonlocalized), str(diagnostic.message_primary)))

    def of(self, severity: str) -> list[str]:
        return [m for s, m in self.items if s == severity]


def rules(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str | None]]:
    return [
        (str(t), str(c), None if p is None else str(p))
        for t, c, p in conn.execute(
            "SELECT table_name, column_name::text, problem FROM pgsweep.rules ORDER BY 1, 2"
        ).fetchall()
    ]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    done = pgsweep(capsys, *argv)
    assert done.code == 0, (done.out, done.err)
    return done


@pytest.fixture
def app_db(fresh_db: str) -> str:
    """The engine (with its event trigger) and the app's two ruled tables, seeded."""
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    tolerate_lag(fresh_db)
    return fresh_db


def reseed_attributes(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"TRUNCATE {ATTRIBUTES}")
    own_tables.seed_attributes(conn)


def assert_attributes_still_swept(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every consumer cleans the attributes table exactly, whatever happened to sessions."""
    with connect(dsn) as conn:
        assert conn.execute("CALL pgsweep.sweep(NULL, 5000, '0', NULL)").fetchone() == (
            GARBAGE[ATTRIBUTES],
        )
        assert own_tables.labels(conn, ATTRIBUTES) == KEPT_LABELS[ATTRIBUTES]
        reseed_attributes(conn)
    dry = run(capsys, "cleanup", "--dry-run", "--dsn", dsn, "--json").json()
    assert dry["would_delete"] == GARBAGE[ATTRIBUTES]
    done = run(capsys, "cleanup", "--dsn", dsn, "--json").json()
    assert {t["table"]: t["deleted"] for t in done["tables"]} == {ATTRIBUTES: GARBAGE[ATTRIBUTES]}
    with connect(dsn) as conn:
        reseed_attributes(conn)
    status = run(capsys, "status", "--dsn", dsn, "--json").json()
    assert [(t["table"], t["garbage"]) for t in status["tables"]] == [
        (ATTRIBUTES, GARBAGE[ATTRIBUTES])
    ]
    ran = run(capsys, "run", "--every", "1s", "--max-runs", "1", "--dsn", dsn, "--json")
    (one,) = [e for e in map(json.loads, ran.out.splitlines()) if e["event"] == "run"]
    assert one["deleted"] == {ATTRIBUTES: GARBAGE[ATTRIBUTES]}
    with connect(dsn) as conn:
        assert own_tables.labels(conn, ATTRIBUTES) == KEPT_LABELS[ATTRIBUTES]


# --- with the event trigger ----------------------------------------------------------------------


def test_dropping_a_ruled_table_removes_its_rules_with_a_notice(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(app_db) as conn:
        messages = Messages(conn)
        conn.execute("DROP TABLE sessions")
        assert messages.of("NOTICE") == [
            "pgsweep: expiry rule on column expiresAt removed with the dropped table"
            " public.sessions"
        ]
        assert rules(conn) == [(ATTRIBUTES, "ttl_timestamp", None)]
    assert_attributes_still_swept(app_db, capsys)
    report = verify.verify(app_db, check_cron=False)
    assert report.ok, [c.evidence for c in report.failures]


def test_dropping_a_schema_removes_the_rules_of_every_table_in_it(app_db: str) -> None:
    with connect(app_db) as conn:
        messages = Messages(conn)
        conn.execute('DROP SCHEMA "ActingWeb" CASCADE')
        assert messages.of("NOTICE")[-1] == (
            "pgsweep: expiry rule on column ttl_timestamp removed with the dropped table"
            ' "ActingWeb"."Attributes"'
        )
        assert rules(conn) == [(SESSIONS, "expiresAt", None)]
        assert conn.execute("SELECT pgsweep.sweep_table('sessions')").fetchone() == (
            GARBAGE[SESSIONS],
        )


def test_dropping_the_ruled_column_removes_its_rule_and_another_column_keeps_it(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(app_db) as conn:
        messages = Messages(conn)
        conn.execute('ALTER TABLE sessions DROP COLUMN "userId"')
        assert messages.of("NOTICE") == []
        assert len(rules(conn)) == 2
        conn.execute('ALTER TABLE sessions DROP COLUMN "expiresAt"')
        assert messages.of("NOTICE") == [
            "pgsweep: expiry rule on column expiresAt removed with the dropped table column"
            ' public.sessions."expiresAt"'
        ]
        assert rules(conn) == [(ATTRIBUTES, "ttl_timestamp", None)]
    assert_attributes_still_swept(app_db, capsys)


def test_a_renamed_table_keeps_its_rule(app_db: str) -> None:
    with connect(app_db) as conn:
        conn.execute('ALTER TABLE sessions RENAME TO "userSessions"')
        assert ('"userSessions"', "expiresAt", None) in rules(conn)
        assert conn.execute("SELECT pgsweep.sweep_table('\"userSessions\"')").fetchone() == (
            GARBAGE[SESSIONS],
        )


def test_a_renamed_column_is_reported_skipped_everywhere_and_fails_verify_for_that_rule_only(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = 'column "expiresAt" of public.sessions no longer exists'
    with connect(app_db) as conn:
        conn.execute('ALTER TABLE sessions RENAME COLUMN "expiresAt" TO expires_at')
        assert rules(conn) == [
            (ATTRIBUTES, "ttl_timestamp", None),
            (SESSIONS, "expiresAt", problem),
        ]
        messages = Messages(conn)
        conn.execute("CALL pgsweep.sweep(NULL, 5000, '0', NULL)")
        assert messages.of("WARNING") == [
            f"pgsweep: rule public.sessions.expiresAt skipped: {problem}"
        ]
        counts = conn.execute("SELECT * FROM pgsweep.garbage_counts()").fetchall()
        assert [str(r[0]) for r in counts] == [ATTRIBUTES]
        # Its only rule cannot run: no count, a warning, and no error.
        assert conn.execute("SELECT * FROM pgsweep.garbage_counts('sessions')").fetchall() == []
        assert len(messages.of("WARNING")) == 3
        assert conn.execute("SELECT pgsweep.sweep_table('sessions')").fetchone() == (0,)
        assert len(messages.of("WARNING")) == 4
        reseed_attributes(conn)
    skipped = {"table": SESSIONS, "column": "expiresAt", "problem": problem}
    for argv in (("cleanup", "--dry-run"), ("cleanup",), ("status",)):
        assert run(capsys, *argv, "--dsn", app_db, "--json").json()["skipped"] == [skipped]
        text = run(capsys, *argv, "--dsn", app_db).out
        assert f"skipped rule sessions.expiresAt: {problem}" in text
    ran = run(capsys, "run", "--every", "1s", "--max-runs", "1", "--dsn", app_db, "--json")
    (one,) = [e for e in map(json.loads, ran.out.splitlines()) if e["event"] == "run"]
    assert one["skipped"] == [skipped]
    text = run(capsys, "run", "--every", "1s", "--max-runs", "1", "--dsn", app_db).out
    assert f"skipped rule sessions.expiresAt: {problem}" in text
    with connect(app_db) as conn:  # nothing of the table was touched
        assert sum(own_tables.labels(conn, SESSIONS).values()) == GARBAGE[SESSIONS] + KEPT[SESSIONS]
        assert own_tables.labels(conn, ATTRIBUTES) == KEPT_LABELS[ATTRIBUTES]

    done = pgsweep(capsys, "verify", "--no-cron", "--dsn", app_db)
    assert done.code == 1
    failed = [line for line in done.out.splitlines() if line.startswith("FAIL")]
    assert failed == [f"FAIL  rule sessions.expiresAt: {problem}: skipped by every cleanup"]
    assert done.out.splitlines()[-1].split(": ")[-1].startswith("1 of ")

    # Renaming it back heals the rule.
    with connect(app_db) as conn:
        conn.execute('ALTER TABLE sessions RENAME COLUMN expires_at TO "expiresAt"')
        assert [p for _, _, p in rules(conn)] == [None, None]
    assert verify.verify(app_db, check_cron=False).ok


def test_a_ruled_column_changed_to_a_type_that_cannot_expire_is_reported_and_skipped(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = 'column ttl_timestamp of "ActingWeb"."Attributes" has type text, which cannot expire'
    with connect(app_db) as conn:
        conn.execute(f"ALTER TABLE {ATTRIBUTES} ALTER COLUMN ttl_timestamp TYPE text")
        assert rules(conn)[0] == (ATTRIBUTES, "ttl_timestamp", problem)
        messages = Messages(conn)
        assert conn.execute("CALL pgsweep.sweep(NULL, 5000, '0', NULL)").fetchone() == (
            GARBAGE[SESSIONS],
        )
        assert messages.of("WARNING") == [
            f"pgsweep: rule {ATTRIBUTES}.ttl_timestamp skipped: {problem}"
        ]
    done = run(capsys, "cleanup", "--dry-run", "--dsn", app_db, "--json").json()
    assert [s["problem"] for s in done["skipped"]] == [problem]
    with connect(app_db) as conn:
        conn.execute(
            f"ALTER TABLE {ATTRIBUTES} ALTER COLUMN ttl_timestamp TYPE bigint"
            " USING ttl_timestamp::bigint"
        )
        assert [p for _, _, p in rules(conn)] == [None, None]
        assert conn.execute(f"SELECT pgsweep.sweep_table('{ATTRIBUTES}')").fetchone() == (
            GARBAGE[ATTRIBUTES],
        )
        assert own_tables.labels(conn, ATTRIBUTES) == KEPT_LABELS[ATTRIBUTES]


@pytest.fixture
def partitioned(app_db: str) -> str:
    """``events``, partitioned by day on a timestamptz, four partitions, with a rule."""
    with connect(app_db) as conn:
        conn.execute(
            "CREATE TABLE events (id bigint, expires_at timestamptz NOT NULL)"
            " PARTITION BY RANGE (expires_at)"
        )
        conn.execute("CREATE INDEX ON events (expires_at)")
        for day in range(-2, 2):
            name = sql.Identifier(f"events_d{day + 2}")
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} PARTITION OF events FOR VALUES"
                    " FROM (date_trunc('day', now()) + {} * interval '1 day')"
                    " TO (date_trunc('day', now()) + {} * interval '1 day')"
                ).format(name, sql.Literal(day), sql.Literal(day + 1))
            )
        conn.execute("SELECT pgsweep.add_rule('events', 'expires_at')")
    return app_db


def seed_events(conn: psycopg.Connection[Any], days: tuple[int, ...]) -> tuple[int, int]:
    """A row every ten minutes of each of ``days`` (offsets from today, partitions still
    there); returns (garbage, live)."""
    conn.execute("TRUNCATE events")
    conn.execute(
        "INSERT INTO events SELECT 0, date_trunc('day', now()) + d * interval '1 day'"
        " + m * interval '10 minutes' FROM unnest(%s::int[]) d, generate_series(0, 143) m",
        (list(days),),
    )
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE expires_at < now()),"
        " count(*) FILTER (WHERE expires_at >= now()) FROM events"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_rule_on_a_partitioned_table_survives_dropping_and_detaching_partitions(
    partitioned: str,
) -> None:
    with connect(partitioned) as conn:
        messages = Messages(conn)
        conn.execute("DROP TABLE events_d0")
        conn.execute("ALTER TABLE events DETACH PARTITION events_d3")
        conn.execute("DROP TABLE events_d3")
        assert messages.of("NOTICE") == []
        assert ("events", "expires_at", None) in rules(conn)
        garbage, live = seed_events(conn, (-1, 0))
        assert garbage > 0
        assert live > 0
        assert conn.execute("SELECT garbage FROM pgsweep.garbage_counts('events')").fetchone() == (
            garbage,
        )
        assert conn.execute("CALL pgsweep.sweep('events', 100, '0', NULL)").fetchone() == (garbage,)
        assert conn.execute("SELECT count(*), min(expires_at) >= now() FROM events").fetchone() == (
            live,
            True,
        )


def test_a_rule_on_a_partition_goes_with_that_partition_and_the_parents_stays(
    partitioned: str,
) -> None:
    with connect(partitioned) as conn:
        conn.execute("SELECT pgsweep.add_rule('events_d1', 'expires_at')")
        messages = Messages(conn)
        conn.execute("DROP TABLE events_d1")
        assert messages.of("NOTICE") == [
            "pgsweep: expiry rule on column expires_at removed with the dropped table"
            " public.events_d1"
        ]
        assert [r for r in rules(conn) if r[0].startswith("events")] == [
            ("events", "expires_at", None)
        ]
        garbage, _ = seed_events(conn, (-2, 0, 1))
        assert conn.execute("SELECT pgsweep.sweep_table('events')").fetchone() == (garbage,)


def test_sweeping_matchas_tables_goes_on_after_an_app_table_with_a_rule_is_dropped(
    head_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(head_db) as conn:
        conn.execute("CREATE TABLE app_cache (k text, expires_at timestamptz NOT NULL)")
        conn.execute("CREATE INDEX ON app_cache (expires_at)")
        conn.execute("SELECT pgsweep.add_rule('app_cache', 'expires_at')")
        messages = Messages(conn)
        conn.execute("DROP TABLE app_cache")
        assert len(messages.of("NOTICE")) == 1
        without_triggers(conn)
        user = add_user(conn, "ddl_matcha")
        live = {add_token(conn, t, user, "1 second") for t in TOKEN_TABLES}
        dead = {add_token(conn, t, user, "-1 second") for t in TOKEN_TABLES}
        conn.execute("CALL pgsweep.sweep()")
        assert messages.of("WARNING") == []
        left = set().union(*(remaining_ids(conn, t) for t in TOKEN_TABLES))
        assert live <= left
        assert not dead & left
        dead = {add_token(conn, t, user, "-1 second") for t in TOKEN_TABLES}
        row = conn.execute("SELECT total_cleaned FROM cleanup_all_expired_tokens()").fetchone()
        assert row is not None
        assert row[0] >= len(dead)
    done = run(capsys, "cleanup", "--dsn", head_db, "--json").json()
    assert done["skipped"] == []
    report = verify.verify(head_db, check_cron=False)
    assert report.ok, [c.evidence for c in report.failures]


# --- without the event trigger -----------------------------------------------------------------


def test_without_the_event_trigger_a_dropped_tables_rule_stays_and_never_stops_the_others(
    app_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(app_db) as conn:
        conn.execute("DROP EVENT TRIGGER pgsweep_forget_dropped_rules")
        oid = conn.execute("SELECT 'sessions'::regclass::oid").fetchone()
        assert oid is not None
        messages = Messages(conn)
        conn.execute("DROP TABLE sessions")
        assert messages.of("NOTICE") == []
        problem = f"table {oid[0]} no longer exists"
        assert rules(conn) == [
            (ATTRIBUTES, "ttl_timestamp", None),
            (str(oid[0]), "expiresAt", problem),
        ]
    skipped = {"table": str(oid[0]), "column": "expiresAt", "problem": problem}
    for argv in (("cleanup", "--dry-run"), ("status",)):
        assert run(capsys, *argv, "--dsn", app_db, "--json").json()["skipped"] == [skipped]
    assert_attributes_still_swept(app_db, capsys)
    report = verify.verify(app_db, check_cron=False)
    assert [(c.name, c.evidence) for c in report.failures] == [
        (f"rule {oid[0]}.expiresAt", f"{problem}: skipped by every cleanup")
    ]
    trigger = next(c for c in report.checks if c.name.startswith("event trigger"))
    assert trigger.ok is None
    # The operator removes it by the name the rules view shows: the table's OID.
    with connect(app_db) as conn:
        removed = conn.execute("SELECT pgsweep.remove_rule(%s)", (str(oid[0]),)).fetchone()
        assert removed == (1,)
    assert verify.verify(app_db, check_cron=False).ok


@pytest.fixture
def owner_db(pg_server: PgServer, fresh_db: str) -> Iterator[tuple[str, str]]:
    """(the database's own DSN as its owner, a role that is not a superuser, the admin DSN)."""
    with temporary_roles(fresh_db, "owner") as roles:
        owner = roles["owner"]
        with connect(fresh_db) as admin:
            admin.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(admin.info.dbname), sql.Identifier(owner.name)
                )
            )
        try:
            yield owner.dsn, fresh_db
        finally:
            with connect(fresh_db) as admin:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(
                        sql.Identifier(admin.info.dbname)
                    )
                )


def test_a_database_owner_who_is_not_a_superuser_installs_the_engine_without_the_trigger(
    owner_db: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    dsn, admin_dsn = owner_db
    with connect(dsn) as conn:
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)
    done = run(capsys, "install", "--dsn", dsn)
    notice = "pgsweep: event trigger pgsweep_forget_dropped_rules not created (needs a superuser)"
    assert f"WARNING: {notice}" in done.err
    assert f"installed engine {engine.latest()}" in done.out
    with connect(admin_dsn) as admin:
        assert admin.execute(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname = 'pgsweep_forget_dropped_rules'"
        ).fetchone() == (0,)
        assert admin.execute(
            "SELECT nspowner::regrole::text = current_user FROM pg_namespace"
            " WHERE nspname = 'pgsweep'"
        ).fetchone() == (False,)
    with connect(dsn) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
        conn.execute("DROP TABLE sessions")
        assert [p is None for _, _, p in rules(conn)] == [True, False]
    assert_attributes_still_swept(dsn, capsys)
    report = verify.verify(dsn, check_cron=False)
    assert [c.name for c in report.failures] == [
        next(c.name for c in report.checks if c.name.startswith("rule ") and c.ok is False)
    ]
    trigger = next(c for c in report.checks if c.name.startswith("event trigger"))
    assert (trigger.ok, trigger.evidence.split(" ")[0]) == (None, "absent")
    again = run(capsys, "install", "--dsn", dsn)
    assert "already installed, nothing to do" in again.out
    # And the owner removes it again, with its rules (one of a table that is gone).
    gone = run(capsys, "uninstall", "--force", "--yes", "--dsn", dsn, "--json").json()
    assert (gone["version"], gone["rules_dropped"]) == (engine.latest(), 2)
    with connect(dsn) as conn:
        assert conn.execute("SELECT to_regnamespace('pgsweep')").fetchone() == (None,)


def test_a_superuser_rerunning_the_install_gives_an_engine_another_role_owns_no_event_trigger(
    owner_db: tuple[str, str],
) -> None:
    # The trigger would fire on every DROP, a superuser's too, and call a function its owner
    # may replace at will: it is created only when a superuser owns that function.
    dsn, admin_dsn = owner_db
    engine.install(dsn)
    done = psql_file(admin_dsn, engine.release_file(engine.latest(), "install.sql"))
    assert done.returncode == 0, done.stderr
    assert "not created: the engine belongs to" in done.stderr
    with connect(admin_dsn) as admin:
        assert admin.execute(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname = 'pgsweep_forget_dropped_rules'"
        ).fetchone() == (0,)
