"""`make demo` keeps working, and only where it may: against a given DATABASE_URL it accepts a
throwaway (empty) database and leaves it empty, refuses any other unless told, and without
server binaries it says so in one line."""

from __future__ import annotations

import os
import subprocess
import sys

from pgsweep import cleanup, migrate
from pgsweep_testing.demo import QUIET_AFTER_LOAD, load_sample_data
from tests.pg import connect
from tests.sqlrun import catalog_of
from tests.tokens import add_token, add_user


def demo(dsn: str | None, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    environ.update(env)
    if dsn is not None:
        environ["DATABASE_URL"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "pgsweep_testing.demo", *argv],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_demo_runs_the_operator_commands_and_leaves_an_empty_database_empty(
    fresh_db: str,
) -> None:
    empty = catalog_of(fresh_db)
    done = demo(fresh_db)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for command in ("upgrade", "current"):
        assert f"\n$ matcha-time {command}\n" in out
    for command in (
        "status",
        "cleanup --dry-run",
        "verify --no-cron",
        "cleanup --yes",
    ):
        assert f"\n$ pgsweep {command}\n" in out
    assert "all checks pass" in out
    assert "FAIL" not in out
    # What the dry run announced is what the cleanup deleted.
    would = next(line for line in out.splitlines() if line.startswith("total") and "would" in line)
    deleted = next(
        line for line in out.splitlines() if line.startswith("total") and "deleted" in line
    )
    assert would.split()[-1] == deleted.split()[-1] != "0"
    assert "***" in out  # the password is masked where the DSN is shown
    assert "Done." in out
    # It created everything there, so it took everything away again.
    assert catalog_of(fresh_db) == empty
    assert migrate.current(fresh_db) is None


def test_no_sample_token_expires_between_the_demos_dry_run_and_its_cleanup(fresh_db: str) -> None:
    """The dry run counts at one instant, the cleanup deletes at a later one: a token expiring
    in between made them differ by a row. None of the sample's expires that soon, and what the
    dry run counts is what the cleanup deletes (each row once, though a used token may also be
    expired: garbage by two rules)."""
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        load_sample_data(conn)
        for table in ("password_reset_tokens", "email_verification_tokens", "refresh_tokens"):
            soon = conn.execute(
                f"SELECT count(*) FROM {table}"
                # Half the quiet time: the load itself (and its ANALYZE) took some of it.
                " WHERE expires_at BETWEEN now() AND now() + %s::interval / 2",
                (QUIET_AFTER_LOAD,),
            ).fetchone()
            assert soon == (0,), table
        both = conn.execute(
            "SELECT count(*) FROM password_reset_tokens"
            " WHERE used_at IS NOT NULL AND expires_at < now()"
        ).fetchone()
        assert both is not None
        assert both[0] > 0  # rows garbage by both rules are there
    would = cleanup.dry_run(fresh_db).total
    assert cleanup.cleanup(fresh_db).total == would > 0


def test_the_demo_refuses_a_database_that_has_tables_and_writes_nothing(fresh_db: str) -> None:
    with connect(fresh_db) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    before = catalog_of(fresh_db)
    done = demo(fresh_db)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1
    assert "not a throwaway database" in done.stderr
    assert "public.invoices" in done.stderr
    assert "PGSWEEP_DEMO_ALLOW=1" in done.stderr
    assert "Traceback" not in done.stderr
    assert catalog_of(fresh_db) == before


def test_told_to_use_a_real_database_the_demo_removes_only_its_own_users(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        ann = add_user(conn, "ann")
        token = add_token(conn, "refresh_tokens", ann, "1 day")
    done = demo(fresh_db, PGSWEEP_DEMO_ALLOW="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removing the demo's 500 sample users" in done.stdout
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("ann",)]
        assert conn.execute("SELECT id::text FROM refresh_tokens").fetchall() == [(token,)]
        for table in ("password_reset_tokens", "email_verification_tokens"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    assert migrate.current(fresh_db) == migrate.head()


def test_without_server_binaries_the_demo_says_where_it_looked_in_one_line() -> None:
    done = demo(None, PG_BINDIR="/nonexistent/pg/bin")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "no PostgreSQL server binaries in /nonexistent/pg/bin" in done.stderr
    assert "PG_BINDIR" in done.stderr
    assert "Traceback" not in done.stderr
