"""The engine never deletes a live row of another partition, never lends its owner's rights to
someone else's triggers, and keeps what a rule states when the rule is updated."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgsweep import engine, errors, migrate
from tests.cli import pgsweep
from tests.pg import connect
from tests.roles import temporary_roles
from tests.sqlrun import psql_file

Conn = psycopg.Connection[tuple[Any, ...]]


def live_left(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM ev WHERE expires_at > now()").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def partitioned(fresh_db: str) -> str:
    """Two partitions whose rows sit at the same ctids: expired ones in ev_a, live in ev_b."""
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE ev (id int, expires_at timestamptz) PARTITION BY RANGE (id);"
            "CREATE TABLE ev_a PARTITION OF ev FOR VALUES FROM (0) TO (100);"
            "CREATE TABLE ev_b PARTITION OF ev FOR VALUES FROM (100) TO (200);"
            "CREATE INDEX ON ev (expires_at);"
            "INSERT INTO ev SELECT g, now() - interval '1 hour' FROM generate_series(1, 3) g;"
            "INSERT INTO ev SELECT 100 + g, now() + interval '1 hour' FROM generate_series(1, 3) g;"
            "SELECT pgsweep.add_rule('ev', 'expires_at')"
        )
        same = conn.execute(
            "SELECT count(*) FROM ev_a a JOIN ev_b b ON a.ctid = b.ctid"
        ).fetchone()
    assert same == (3,)  # the collision this module is about
    return fresh_db


def test_the_insert_triggers_batch_never_deletes_a_live_row_of_another_partition(
    partitioned: str,
) -> None:
    with connect(partitioned) as conn:
        conn.execute(
            "CREATE TRIGGER ev_cleanup AFTER INSERT ON ev FOR EACH STATEMENT"
            " EXECUTE FUNCTION pgsweep.sweep_on_insert('expires_at', '10')"
        )
        conn.execute("INSERT INTO ev VALUES (150, now() + interval '2 hours')")
        assert live_left(conn) == 4
        assert conn.execute("SELECT count(*) FROM ev_a").fetchone() == (0,)


def test_a_sweep_that_gives_way_to_a_held_row_never_deletes_a_live_row_of_another_partition(
    partitioned: str,
) -> None:
    with connect(partitioned, autocommit=False) as holder, connect(partitioned) as cleaner:
        holder.execute("SELECT 1 FROM ev WHERE id = 1 FOR UPDATE")
        # The one-pass DELETE meets the held row, gives way, and takes the rest with SKIP LOCKED.
        assert cleaner.execute("SELECT pgsweep.sweep_table('ev')").fetchone() == (2,)
        assert live_left(cleaner) == 3
        holder.rollback()


def test_rows_sharing_one_value_taken_a_batch_at_a_time_never_include_another_partitions(
    partitioned: str,
) -> None:
    with connect(partitioned) as conn:
        conn.execute("UPDATE ev SET expires_at = date_trunc('hour', now()) - interval '1 hour'"
                     " WHERE id < 100")
        assert conn.execute("CALL pgsweep.sweep(p_batch_size => 1)").fetchone() == (3,)
        assert live_left(conn) == 3


def test_the_insert_trigger_leaves_a_table_its_owner_does_not_own_and_lends_no_rights(
    fresh_db: str,
) -> None:
    engine.install(fresh_db)
    with temporary_roles(fresh_db, "tenant") as roles:
        tenant = roles["tenant"]
        with connect(fresh_db) as admin:
            admin.execute(f'GRANT CREATE ON SCHEMA public TO "{tenant.name}"')
        with connect(tenant.dsn) as conn:
            conn.execute(
                "CREATE TABLE tenant_sessions (expires_at timestamptz);"
                "CREATE INDEX ON tenant_sessions (expires_at);"
                "INSERT INTO tenant_sessions VALUES (now() - interval '1 day');"
                # What a table's owner could hang on it: run with the DELETE's rights.
                "CREATE FUNCTION escalate() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN EXECUTE 'ALTER ROLE \"{tenant.name}\" SUPERUSER'; RETURN NULL; END $$;"
                "CREATE TRIGGER escalate AFTER DELETE ON tenant_sessions"
                " FOR EACH STATEMENT EXECUTE FUNCTION escalate()"
            )
        with connect(fresh_db) as admin:  # the owner of the engine attaches the rule and trigger
            admin.execute(
                "SELECT pgsweep.add_rule('tenant_sessions', 'expires_at');"
                "CREATE TRIGGER tenant_sessions_cleanup AFTER INSERT ON tenant_sessions"
                " FOR EACH STATEMENT EXECUTE FUNCTION pgsweep.sweep_on_insert('expires_at')"
            )
        warnings: list[str] = []
        with connect(tenant.dsn) as conn:
            conn.add_notice_handler(lambda d: warnings.append(str(d.message_primary)))
            conn.execute("INSERT INTO tenant_sessions VALUES (now() + interval '1 day')")
            assert conn.execute("SELECT count(*) FROM tenant_sessions").fetchone() == (2,)
        with connect(fresh_db) as admin:
            superuser = admin.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (tenant.name,)
            ).fetchone()
            admin.execute("DROP TABLE tenant_sessions; DROP FUNCTION escalate()")
    assert superuser == (False,)
    assert any("is not owned by" in w for w in warnings), warnings


def test_updating_a_rule_without_a_zone_keeps_the_zone_it_states(fresh_db: str) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute("CREATE TABLE visits (seen_at timestamp); CREATE INDEX ON visits (seen_at)")
        conn.execute("SELECT pgsweep.add_rule('visits', 'seen_at', '1 hour', 'America/New_York')")
        conn.execute("SELECT pgsweep.add_rule('visits', 'seen_at', '2 hours')")
        row = conn.execute("SELECT keep_for::text, value_zone FROM pgsweep.rules").fetchone()
        assert row == ("02:00:00", "America/New_York")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown time zone"):
            conn.execute("SELECT pgsweep.add_rule('visits', 'seen_at', '1 hour', 'IST')")


def test_the_cutoff_does_not_follow_the_sessions_zone_or_daylight_saving(fresh_db: str) -> None:
    engine.install(fresh_db)
    with connect(fresh_db, autocommit=False) as conn:  # one transaction: one now()
        conn.execute("CREATE TABLE t (at timestamptz, wall timestamp, day date)")
        for column in ("at", "wall", "day"):
            conn.execute(f"CREATE INDEX ON t ({column})")
            conn.execute("SELECT pgsweep.add_rule('t', %s, '40 days')", (column,))
        cutoffs = set()
        for zone in ("UTC", "Europe/Berlin", "Pacific/Kiritimati", "America/Los_Angeles"):
            conn.execute("SELECT set_config('TimeZone', %s, true)", (zone,))
            rows = conn.execute(
                "SELECT pgsweep.cutoff_literal(r) FROM pgsweep.expiry_rule r ORDER BY column_name"
            ).fetchall()
            cutoffs.add(tuple(r[0] for r in rows))
        conn.rollback()
    assert len(cutoffs) == 1, cutoffs


def test_the_engine_an_app_embedded_is_upgraded_by_the_apps_chain_not_by_install(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "0008")
    done = psql_file(fresh_db, engine.release_file(engine.latest(), "install.sql"))
    assert done.returncode != 0
    assert "engine embedded by an application's migrations" in done.stderr
    refused = pgsweep(capsys, "install", "--dsn", fresh_db)
    assert refused.code == errors.EXIT_BEHIND
    assert "upgrade it with the app's chain" in refused.err
    with connect(fresh_db) as conn:  # nothing changed: still the embedded engine
        assert conn.execute("SELECT to_regclass('pgsweep.release')").fetchone() == (None,)
