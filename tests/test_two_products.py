"""Two products on the command line (issue 20): ``pgsweep`` is the engine's tool and touches no
app's schema; ``matcha-time`` is the reference app's chain and asks before it builds the app's
tables beside another app's. Also: an engine too old for ``status`` is exit 5, a policy file
named pgsweep.toml is not taken for the option file, and the CLI starts without Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pgsweep import engine, errors, migrate
from tests.cli import matcha_time, matcha_time_process, pgsweep
from tests.pg import connect
from tests.sqlrun import psql_ok

FIRST = engine.releases()[0]


def tables(dsn: str) -> set[str]:
    """Every table outside the system schemas, schema-qualified."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname !~ '^pg_toast'"
        ).fetchall()
    return {str(r[0]) for r in rows}


def sessions_database(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE sessions (id bigint PRIMARY KEY, expires_at timestamptz)")


def test_install_then_upgrade_gives_the_newest_engine_and_no_table_of_the_app(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions_database(fresh_db)
    assert pgsweep(capsys, "install", "--dsn", fresh_db).code == 0
    before = tables(fresh_db)
    assert "public.sessions" in before

    up = pgsweep(capsys, "upgrade", "--dsn", fresh_db, "--json")
    assert up.code == 0, up.err
    assert (up.json()["before"], up.json()["after"]) == (engine.latest(), engine.latest())
    assert tables(fresh_db) == before  # the engine's own tables and the user's, nothing else
    current = pgsweep(capsys, "current", "--dsn", fresh_db, "--json")
    assert current.json()["version"] == engine.latest()
    assert current.json()["state"] == "newest"

    # The app's chain on this database: refused off a terminal, nothing created.
    refused = matcha_time_process("upgrade", "--dsn", fresh_db)
    assert refused.code == errors.EXIT_USAGE, refused.out + refused.err
    assert "is not a Matcha Time database" in refused.err
    assert "public.sessions" in refused.err
    assert "--yes" in refused.err
    assert "Traceback" not in refused.err
    assert tables(fresh_db) == before
    assert migrate.current(fresh_db) is None


def test_upgrade_takes_an_older_engine_release_by_release_and_downgrade_steps_it_back(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions_database(fresh_db)
    psql_ok(fresh_db, engine.release_file(FIRST, "install.sql"))
    behind = pgsweep(capsys, "current", "--dsn", fresh_db)
    assert behind.code == 0
    assert f"engine {FIRST} (behind: the newest release is {engine.latest()}" in behind.out

    up = pgsweep(capsys, "upgrade", "--dsn", fresh_db)
    assert up.code == 0, up.err
    assert f"engine {FIRST} -> {engine.latest()}" in up.out
    assert "public.users" not in tables(fresh_db)

    previous = engine.releases()[-2]
    refused = pgsweep(capsys, "downgrade", "--dsn", fresh_db)  # no terminal, no --yes
    assert refused.code == errors.EXIT_USAGE, refused.err
    assert "Re-run with --yes" in refused.err
    down = pgsweep(capsys, "downgrade", "--yes", "--dsn", fresh_db, "--json")
    assert down.code == 0, down.err
    assert down.json()["after"] == previous
    wrong = pgsweep(capsys, "downgrade", "9.9", "--yes", "--dsn", fresh_db)
    assert wrong.code == errors.EXIT_USAGE
    assert "not an older release" in wrong.err


def test_upgrade_without_an_engine_says_to_install_it(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = pgsweep(capsys, "upgrade", "--dsn", fresh_db)
    assert done.code == errors.EXIT_BEHIND
    assert "run pgsweep install" in done.err
    assert tables(fresh_db) == set()


def test_pgsweep_upgrade_leaves_the_apps_engine_to_the_apps_chain(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "0010")
    done = pgsweep(capsys, "upgrade", "--dsn", fresh_db)
    assert done.code == errors.EXIT_USAGE
    assert "matcha-time upgrade" in done.err
    assert migrate.current(fresh_db) == "0010"


def test_matcha_time_upgrades_an_empty_database_and_the_apps_own_without_asking(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert matcha_time(capsys, "upgrade", "0005", "--dsn", fresh_db).code == 0
    assert matcha_time(capsys, "upgrade", "--dsn", fresh_db).code == 0
    assert migrate.current(fresh_db) == migrate.head()


def test_matcha_time_builds_beside_other_tables_only_with_consent(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions_database(fresh_db)
    done = matcha_time(capsys, "upgrade", "0002", "--yes", "--dsn", fresh_db)
    assert done.code == 0, done.err
    assert migrate.current(fresh_db) == "0002"


def test_status_on_the_first_engine_release_is_exit_5_and_says_to_upgrade(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    psql_ok(fresh_db, engine.release_file(FIRST, "install.sql"))
    done = pgsweep(capsys, "status", "--dsn", fresh_db)
    assert done.code == errors.EXIT_BEHIND, done.err
    assert f"the database has {FIRST}" in done.err
    assert "run pgsweep upgrade" in done.err
    assert "42P01" not in done.err


POLICY = """\
[[rule]]
table = "sessions"
column = "expires_at"
"""


def test_a_policy_file_named_pgsweep_toml_is_not_read_as_the_option_file(
    fresh_db: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    sessions_database(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute("CREATE INDEX ON sessions (expires_at)")
    psql_ok(fresh_db, engine.release_file(engine.latest(), "install.sql"))
    monkeypatch.delenv("PGSWEEP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pgsweep.toml").write_text(POLICY)
    dry = pgsweep(capsys, "apply", "pgsweep.toml", "--dry-run", "--dsn", fresh_db)
    assert dry.code == 0, dry.err
    assert "sessions.expires_at" in dry.out
    assert pgsweep(capsys, "current", "--dsn", fresh_db).code == 0
    # Named as the option file, it is a usage error that says what it is.
    named = pgsweep(capsys, "current", "--config", "pgsweep.toml", "--dsn", fresh_db)
    assert named.code == errors.EXIT_USAGE
    assert "is a policy file" in named.err
    assert "pgsweep apply" in named.err


def test_importing_the_cli_loads_neither_alembic_nor_sqlalchemy_nor_psycopg() -> None:
    code = (
        "import sys, pgsweep.cli, pgsweep.matcha_cli;"
        " print(sorted(m for m in ('alembic', 'sqlalchemy', 'psycopg')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("argv", [("--version",), ("--help",), ("status", "--help")])
def test_a_command_that_connects_nowhere_runs_without_alembic_sqlalchemy_or_psycopg(
    argv: tuple[str, ...],
) -> None:
    """What the whole command loads, its exit included (an except clause that names a lazy
    module's class imports that module for every exception that passes, SystemExit too)."""
    code = (
        "import sys, pgsweep.cli\n"
        f"try:\n    pgsweep.cli.main({list(argv)!r})\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('alembic', 'sqlalchemy', 'psycopg') if m in sys.modules),"
        " file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_the_share_of_a_partitioned_table_is_of_all_its_partitions(fresh_db: str) -> None:
    from pgsweep import consent

    with connect(fresh_db) as conn:
        conn.execute("CREATE TABLE events (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
        conn.execute(
            "CREATE TABLE events_old PARTITION OF events FOR VALUES FROM (MINVALUE) TO (now())"
        )
        conn.execute(
            "CREATE TABLE events_new PARTITION OF events FOR VALUES FROM (now()) TO (MAXVALUE)"
        )
        conn.execute(
            "INSERT INTO events SELECT now() + g * interval '1 minute'"
            " FROM generate_series(-3000, 999) g"
        )
        (share,) = consent.shares(conn, {"events": 3000})
        assert (share.rows, share.due) == (4000, 3000)  # counted: never analyzed
        conn.execute("ANALYZE events_old, events_new")
        (share,) = consent.shares(conn, {"events": 3000})
        assert share.rows == 4000
        assert [s.table for s in consent.unusual([share], consent.CONSENT_SHARE)] == ["events"]
        assert consent.unusual([share], 0.8) == []
