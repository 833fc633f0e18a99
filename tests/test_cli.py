"""The ``pgsweep`` command: revisions, connection sources, and every error path with its exit
status, one line, and no password in sight."""

from __future__ import annotations

import os

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgsweep import errors, migrate
from pgsweep.dsn import conninfo
from tests.cli import matcha_time, matcha_time_process, pgsweep, pgsweep_process
from tests.pg import PgServer, connect

SECRET = "s3cret-never-printed"


def with_password(dsn: str, password: str) -> str:
    params = conninfo_to_dict(conninfo(dsn))
    params["password"] = password
    return make_conninfo("", **params)


def password_of(dsn: str) -> str:
    return str(conninfo_to_dict(conninfo(dsn)).get("password") or "")


def assert_no_password(dsn: str, *texts: str) -> None:
    password = password_of(dsn)
    for text in texts:
        assert SECRET not in text
        if password:
            assert password not in text


def test_upgrade_current_and_downgrade_report_where_the_database_stands(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    head = migrate.head()
    empty = matcha_time(capsys, "current", "--dsn", fresh_db)
    assert (empty.code, empty.out.split()[0]) == (0, "none")

    up = matcha_time(capsys, "upgrade", "0005", "--dsn", fresh_db)
    assert up.code == 0, up.err
    assert "base -> 0005" in up.out
    behind = matcha_time(capsys, "current", "--dsn", fresh_db, "--json")
    assert behind.json() == {"ok": True, "revision": "0005", "head": head, "state": "behind"}

    up = matcha_time(capsys, "upgrade", "--dsn", fresh_db, "--json")
    assert up.code == 0
    document = up.json()
    assert (document["before"], document["after"], document["ok"]) == ("0005", head, True)
    # 0007 says why it scheduled nothing: this test database is not the cron database.
    assert any("no pg_cron job registered" in n for n in document["notices"])
    assert matcha_time(capsys, "current", "--dsn", fresh_db).out.strip() == f"{head} (head)"

    down = matcha_time(capsys, "downgrade", "0006", "--yes", "--dsn", fresh_db)
    assert down.code == 0
    assert f"{head} -> 0006" in down.out
    assert migrate.current(fresh_db) == "0006"
    assert_no_password(fresh_db, up.out, down.out, down.err)


def test_the_connection_comes_from_database_url_then_the_pg_variables(
    fresh_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    assert matcha_time(capsys, "upgrade", "0002").code == 0
    assert migrate.current(fresh_db) == "0002"

    monkeypatch.delenv("DATABASE_URL")
    params = conninfo_to_dict(conninfo(fresh_db))
    for key, variable in (
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("password", "PGPASSWORD"),
        ("dbname", "PGDATABASE"),
    ):
        if params.get(key):
            monkeypatch.setenv(variable, str(params[key]))
    current = matcha_time(capsys, "current", "--json")
    assert current.code == 0, current.err
    assert current.json()["revision"] == "0002"
    # Alembic's connection (SQLAlchemy) takes the same PG* variables.
    assert matcha_time(capsys, "upgrade", "0003").code == 0
    assert migrate.current(fresh_db) == "0003"


def test_python_dash_m_pgsweep_is_the_same_command(fresh_db: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = matcha_time_process("current", "--dsn", fresh_db, env=env)
    assert done.code == 0, done.err
    assert done.out.startswith("none")
    usage = pgsweep_process(env=env)
    assert usage.code == errors.EXIT_USAGE
    assert "usage: pgsweep" in usage.err


def test_an_unreachable_server_is_one_line_and_exit_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = f"postgresql://someone:{SECRET}@127.0.0.1:1/matcha"
    for command in (
        ["current"],
        ["upgrade"],
        ["verify"],
        ["status"],
        ["cleanup"],
        ["schedule"],
        ["run", "--every", "1s"],
    ):
        done = pgsweep(capsys, *command, "--dsn", dsn)
        assert done.code == errors.EXIT_CANNOT_CONNECT, (command, done.err)
        assert done.err.count("\n") == 1
        assert "cannot connect to postgresql://someone:***@127.0.0.1:1/matcha" in done.err
        assert "Traceback" not in done.err
        assert_no_password(dsn, done.out, done.err)
    as_json = pgsweep(capsys, "verify", "--dsn", dsn, "--json")
    assert as_json.json()["exit_code"] == errors.EXIT_CANNOT_CONNECT
    assert as_json.json()["ok"] is False


def test_a_wrong_password_is_exit_4(
    fresh_db: str, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    if not password_of(fresh_db):
        pytest.skip("this test server does not use passwords")
    dsn = with_password(fresh_db, SECRET)
    for command in (["current"], ["upgrade"], ["verify"]):
        done = pgsweep(capsys, *command, "--dsn", dsn)
        assert done.code == errors.EXIT_AUTHENTICATION, done.err
        assert "authentication failed" in done.err
        assert_no_password(dsn, done.out, done.err)


def test_an_unknown_target_revision_is_a_usage_error(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = matcha_time(capsys, "upgrade", "0099", "--dsn", fresh_db)
    assert done.code == errors.EXIT_USAGE
    assert "unknown revision '0099'" in done.err
    assert migrate.current(fresh_db) is None


def test_a_database_ahead_of_the_code_is_exit_6(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    current = matcha_time(capsys, "current", "--dsn", fresh_db)
    assert current.code == errors.EXIT_UNKNOWN_REVISION
    assert "0099 (unknown to this code" in current.out
    for command in (["upgrade"], ["downgrade", "0006"]):
        done = matcha_time(capsys, *command, "--dsn", fresh_db)
        assert done.code == errors.EXIT_UNKNOWN_REVISION, done.err
        assert "ahead of this code" in done.err
    verified = pgsweep(capsys, "verify", "--no-cron", "--dsn", fresh_db)
    assert verified.code == errors.EXIT_FAILED
    assert "FAIL  revision: database at 0099, unknown to this code" in verified.out


def test_a_database_at_an_older_revision_is_exit_5_for_commands_that_need_the_engine(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "0005")
    for command in (["cleanup"], ["cleanup", "--dry-run"], ["status"], ["run", "--every", "1s"]):
        done = pgsweep(capsys, *command, "--dsn", fresh_db)
        assert done.code == errors.EXIT_BEHIND, (command, done.err)
        assert "the database is at 0005" in done.err
        assert "matcha-time upgrade" in done.err
    # 0006-0008 embedded an engine of their own; the commands need the standalone one (0009).
    migrate.upgrade(fresh_db, "0006")
    for command in (["cleanup"], ["cleanup", "--dry-run"], ["status"]):
        done = pgsweep(capsys, *command, "--dsn", fresh_db)
        assert done.code == errors.EXIT_BEHIND, (command, done.err)
        assert f"the database is at 0006, this needs {migrate.head()}" in done.err
    verified = pgsweep(capsys, "verify", "--no-cron", "--dsn", fresh_db)
    assert verified.code == errors.EXIT_FAILED
    assert f"FAIL  revision: database at 0006, behind the code's head {migrate.head()}" in (
        verified.out
    )


def test_an_upgrade_that_never_gets_its_lock_is_exit_7(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "0005")
    with connect(fresh_db, autocommit=False) as app:
        app.execute("LOCK TABLE refresh_tokens IN ROW EXCLUSIVE MODE")
        done = matcha_time(
            capsys, "upgrade", "--dsn", fresh_db, "--lock-timeout", "100", "--attempts", "2"
        )
        app.rollback()
    assert done.code == errors.EXIT_LOCK_TIMEOUT, done.err
    assert "not granted within 100 ms in 2 attempts" in done.err
    assert matcha_time(capsys, "upgrade", "--dsn", fresh_db).code == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--every", "soon"],
        ["run", "--every", "0s"],
        ["cleanup", "--max-share", "2"],
    ],
)
def test_bad_option_values_are_usage_errors(
    fresh_db: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    done = pgsweep(capsys, *argv, "--dsn", fresh_db)
    assert done.code == errors.EXIT_USAGE
    assert done.err.startswith(f"pgsweep {argv[0]}: error: ")
