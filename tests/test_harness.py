"""The test harness itself: server, scratch databases, catalog snapshots, DSN helpers."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pgsweep import catalog
from pgsweep.dsn import conninfo, redact, with_dbname
from pgsweep_testing.localpg import LocalCluster, LocalClusterError
from tests.pg import PgServer, connect, scratch_database


def snap(dsn: str) -> catalog.Snapshot:
    with connect(dsn) as conn:
        return catalog.snapshot(conn)


def run(dsn: str, statements: str) -> None:
    if statements:
        with connect(dsn) as conn:
            conn.execute(statements)


# --- the server ----------------------------------------------------------------------------


def test_server_answers_select_version(pg_server: PgServer) -> None:
    with connect(pg_server.admin_dsn) as conn:
        row = conn.execute("SELECT version()").fetchone()
    assert row is not None
    assert str(row[0]).startswith("PostgreSQL 15")


def test_fresh_db_is_isolated_from_other_databases(pg_server: PgServer, fresh_db: str) -> None:
    run(fresh_db, "CREATE TABLE only_here (id int)")
    with scratch_database(pg_server, "other") as other:
        assert other != fresh_db
        assert "public.only_here" not in snap(other).names("tables")
    assert "public.only_here" in snap(fresh_db).names("tables")


def test_scratch_database_is_dropped_afterwards(pg_server: PgServer) -> None:
    with scratch_database(pg_server, "dropme") as dsn, connect(dsn) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        name = str(row[0])
    with connect(pg_server.admin_dsn) as conn:
        gone = conn.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = %s)", (name,)
        ).fetchone()
    assert gone == (True,)


def test_module_db_is_shared_within_a_module(module_db: str) -> None:
    run(module_db, "CREATE TABLE IF NOT EXISTS shared_marker (id int)")
    assert "public.shared_marker" in snap(module_db).names("tables")


def test_local_cluster_preloads_pg_cron(pg_server: PgServer) -> None:
    if pg_server.kind != "local" or not pg_server.has_pg_cron:
        pytest.skip("only on the local cluster with pg_cron installed")
    with connect(pg_server.admin_dsn) as conn:
        libs = conn.execute("SHOW shared_preload_libraries").fetchone()
        cron_db = conn.execute("SHOW cron.database_name").fetchone()
    assert libs is not None
    assert "pg_cron" in str(libs[0])
    assert cron_db == ("postgres",)
    assert pg_server.cron_database == "postgres"


def test_local_cluster_restart_keeps_port_and_drops_connections() -> None:
    # A cluster of its own: restarting the session's server would cut connections that other
    # modules' fixtures may hold.
    if not (LocalCluster().bindir / "postgres").exists():
        pytest.skip("no local PostgreSQL binaries")
    with LocalCluster(preload_cron=False) as cluster:
        port = cluster.port
        old = connect(cluster.dsn())
        try:
            cluster.restart()
            with pytest.raises(psycopg.OperationalError):
                old.execute("SELECT 1")
        finally:
            old.close()
        assert cluster.port == port
        with connect(cluster.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        root = cluster.root
    assert not root.exists()


def test_local_cluster_start_failure_raises_with_log_tail(tmp_path: Path) -> None:
    if not (LocalCluster().bindir / "postgres").exists():
        pytest.skip("no local PostgreSQL binaries")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cluster = LocalCluster(port=taken.getsockname()[1], preload_cron=False)
        with pytest.raises(LocalClusterError, match="could not bind"):
            cluster.start()
    assert not cluster.running


# --- catalog snapshots ---------------------------------------------------------------------


def test_snapshot_of_fresh_database_has_no_user_objects(fresh_db: str) -> None:
    s = snap(fresh_db)
    assert s.names("schemas") == {"public"}
    assert s.names("extensions") == {"plpgsql"}
    for section, rows in s.sections().items():
        if section not in ("schemas", "extensions"):
            assert rows == (), section


TRIGGER_FN = "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"


@pytest.mark.parametrize(
    ("setup", "change", "expected"),
    [
        pytest.param("", "CREATE TABLE t (id int)", "+ tables public.t", id="table"),
        pytest.param(
            "CREATE TABLE t (id int)",
            "ALTER TABLE t ADD COLUMN note text",
            "+ columns public.t note",
            id="column",
        ),
        pytest.param(
            "CREATE TABLE t (id int)",
            "CREATE INDEX t_id_idx ON t (id)",
            "+ indexes public.t_id_idx",
            id="index",
        ),
        pytest.param(
            "CREATE TABLE t (id int)",
            "ALTER TABLE t ADD CONSTRAINT t_pos CHECK (id > 0)",
            "+ constraints public.t t_pos",
            id="constraint",
        ),
        pytest.param(
            "",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "+ functions public.f()",
            id="function",
        ),
        pytest.param(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2'",
            "~ functions public.f(): body: 'SELECT 1' -> 'SELECT 2'",
            id="function-body",
        ),
        pytest.param(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC",
            "~ functions public.f(): acl",
            id="function-revoke",
        ),
        pytest.param(
            f"CREATE TABLE t (id int); {TRIGGER_FN}",
            "CREATE TRIGGER t_touch BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch()",
            "+ triggers public.t t_touch",
            id="trigger",
        ),
        pytest.param(
            "CREATE TABLE t (id int)",
            "GRANT SELECT ON t TO PUBLIC",
            "+ grants table public.t PUBLIC SELECT",
            id="grant",
        ),
        pytest.param(
            "CREATE TABLE t (id int)",
            "GRANT SELECT (id) ON t TO PUBLIC",
            "+ grants column public.t.id PUBLIC SELECT",
            id="column-grant",
        ),
        pytest.param(
            "",
            "CREATE TYPE mood AS ENUM ('sad', 'ok')",
            "+ types public.mood",
            id="enum",
        ),
        pytest.param(
            "CREATE TABLE t (id int)",
            "CREATE VIEW v AS SELECT id FROM t",
            "+ views public.v",
            id="view",
        ),
    ],
)
def test_snapshot_diff_reports_the_change(
    fresh_db: str, setup: str, change: str, expected: str
) -> None:
    run(fresh_db, setup)
    before = snap(fresh_db)
    run(fresh_db, change)
    lines = catalog.diff(before, snap(fresh_db))
    assert lines, "diff saw no change"
    assert any(line.startswith(expected) for line in lines), "\n".join(lines)


def test_snapshot_compares_columns_by_name_not_attnum(pg_server: PgServer, fresh_db: str) -> None:
    run(fresh_db, "CREATE TABLE t (a int, gone int, b text); ALTER TABLE t DROP COLUMN gone")
    with scratch_database(pg_server, "direct") as direct:
        run(direct, "CREATE TABLE t (a int, b text)")
        assert catalog.diff(snap(direct), snap(fresh_db)) == []


def test_snapshot_equal_after_grant_then_revoke(fresh_db: str) -> None:
    run(fresh_db, "CREATE TABLE t (id int)")
    before = snap(fresh_db)
    run(fresh_db, "GRANT SELECT ON t TO PUBLIC; REVOKE SELECT ON t FROM PUBLIC")
    assert catalog.diff(before, snap(fresh_db)) == []


def test_snapshot_ignores_extension_members_and_alembic_version(fresh_db: str) -> None:
    before = snap(fresh_db)
    run(
        fresh_db,
        'CREATE EXTENSION "uuid-ossp";'
        " CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
    )
    lines = catalog.diff(before, snap(fresh_db))
    assert [line.split(" (")[0] for line in lines] == ["+ extensions uuid-ossp"], lines


# --- DSN helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://alice:s3cr%40t@127.0.0.1:5432/app",
        "postgres://alice:s3cr@t@db.example:5432/app",
        "postgresql://alice@127.0.0.1/app?password=s3cr%40t&sslmode=disable",
        "host=127.0.0.1 user=alice password=s3cr@t dbname=app",
        "host=127.0.0.1 user=alice password='s3cr@t with space' dbname=app",
    ],
)
def test_redact_hides_the_password(dsn: str) -> None:
    shown = redact(dsn)
    assert "s3cr" not in shown
    assert "alice" in shown
    assert "app" in shown


def test_redact_hides_the_local_cluster_password(pg_server: PgServer) -> None:
    if pg_server.cluster is None:
        pytest.skip("only on the local cluster")
    secret = pg_server.cluster.dsn().split(":")[2].split("@")[0]
    assert secret
    assert secret not in redact(pg_server.cluster.dsn())
    assert secret not in repr(pg_server)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:p@h:1/d",
        "postgres://u:p@h:1/d",
        "postgresql+psycopg://u:p@h:1/d",  # SQLAlchemy's spelling, as alembic.ini may hold it
        "host=h port=1 user=u password=p dbname=d",
    ],
)
def test_conninfo_is_libpqs_reading_of_either_spelling(dsn: str) -> None:
    assert conninfo_to_dict(conninfo(dsn)) == {
        "host": "h",
        "port": "1",
        "user": "u",
        "password": "p",
        "dbname": "d",
    }


def test_conninfo_keeps_every_host_of_a_multi_host_url() -> None:
    params = conninfo_to_dict(conninfo("postgresql://u@h1:5432,h2:5433/d?target_session_attrs=any"))
    assert (params["host"], params["port"], params["dbname"]) == ("h1,h2", "5432,5433", "d")


def test_conninfo_rejects_what_libpq_rejects() -> None:
    for bad in ("mysql://u@h/d", "not a dsn", "host=h port"):
        with pytest.raises(psycopg.ProgrammingError):
            conninfo(bad)


def test_with_dbname_keeps_every_other_keyword() -> None:
    params = conninfo_to_dict(with_dbname("postgresql://u:p@h:1/old?sslmode=disable", "new"))
    assert params == {
        "host": "h",
        "port": "1",
        "user": "u",
        "password": "p",
        "dbname": "new",
        "sslmode": "disable",
    }
