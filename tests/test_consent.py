"""Consent before destruction: a downgrade that destroys data asks (terminal) or refuses
(anything else) unless --yes; --sql shows what would run without connecting at all."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pgsweep import deploy, errors, migrate
from pgsweep.paths import data_root
from tests.cli import matcha_time, matcha_time_process
from tests.pg import connect
from tests.sqlrun import catalog_of

# Down scripts that drop a table but destroy nothing of the app's: the reason for each.
NOT_DESTRUCTIVE = {
    "0007": "pgsweep.scheduled_job is 0007's own record of the jobs it created and unschedules",
    "0009": "pgsweep.release records the engine release; value_zone is a setting the engine"
    " 0009 takes back cannot read; the rules and their keep_for stay",
}
_DROPS = re.compile(r"(?i)\bDROP\s+(TABLE|COLUMN)\b|\bTRUNCATE\b")

# Never connected to: --sql must not touch a database.
NOWHERE = "postgresql://nobody:secret@127.0.0.1:1/nowhere?connect_timeout=1"


def module_of(revision: str) -> dict[str, object]:
    (path,) = (data_root() / "migrations" / "versions").glob(f"{revision}_*.py")
    namespace: dict[str, object] = {"__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own file
    return namespace


@pytest.mark.parametrize("revision", migrate.revisions())
def test_every_revision_says_what_its_downgrade_destroys(revision: str) -> None:
    module = module_of(revision)
    assert "DESTROYS_DATA" in module, f"{revision} must declare DESTROYS_DATA (None or what)"
    down = (data_root() / str(module["DOWN_SQL"])).read_text()
    if _DROPS.search(down) and revision not in NOT_DESTRUCTIVE:
        assert module["DESTROYS_DATA"], f"{revision}'s down script drops a table or column"


def test_the_plan_lists_the_revisions_crossed_and_what_they_destroy(head_db: str) -> None:
    chain = migrate.revisions()
    plan = deploy.downgrade_plan(head_db, "0004")
    assert [s.revision for s in plan.steps] == list(reversed(chain[chain.index("0004") + 1 :]))
    assert [s.revision for s in plan.destroying] == ["0010", "0006", "0005"]
    assert plan.steps[-1].down_sql == "rollback/0005_refresh_tokens_down.sql"
    assert [s.revision for s in deploy.downgrade_plan(head_db, "0006").destroying] == ["0010"]
    assert len(deploy.downgrade_plan(head_db, "base").steps) == len(migrate.revisions())
    assert [s.revision for s in deploy.downgrade_plan(head_db, "-2").steps] == chain[:-3:-1]


def test_a_destroying_downgrade_without_a_terminal_is_refused_and_changes_nothing(
    fresh_db: str,
) -> None:
    migrate.upgrade(fresh_db, "head")
    before = catalog_of(fresh_db)
    done = matcha_time_process("downgrade", "base", "--dsn", fresh_db)  # stdin is not a terminal
    assert done.code == errors.EXIT_USAGE, done.err
    assert "downgrade to base destroys data" in done.err
    assert "Re-run with --yes" in done.err
    assert "Traceback" not in done.err
    assert migrate.current(fresh_db) == migrate.head()
    assert catalog_of(fresh_db) == before

    done = matcha_time_process("downgrade", "0005", "--dsn", fresh_db, "--yes")
    assert done.code == 0, done.err
    assert migrate.current(fresh_db) == "0005"


def test_a_downgrade_that_destroys_nothing_needs_no_consent(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "0009")  # 0010's downgrade drops the run history
    assert matcha_time(capsys, "downgrade", "0006", "--dsn", fresh_db).code == 0
    assert migrate.current(fresh_db) == "0006"


def run_on_a_terminal(answer: str, *argv: str) -> tuple[int, str]:
    """Run matcha-time with a pseudo-terminal as stdin, typing ``answer``; (exit, stderr)."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pgsweep.matcha_cli", *argv],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(master, answer.encode() + b"\n")
        _, err = process.communicate(timeout=120)
        return process.returncode, err
    finally:
        os.close(master)
        os.close(slave)


def test_on_a_terminal_it_shows_what_will_run_and_asks(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        conn.execute("INSERT INTO users (username, email, password_hash) VALUES ('a', 'a@x', 'h')")

    code, err = run_on_a_terminal("n", "downgrade", "0004", "--dsn", fresh_db)
    assert code == errors.EXIT_FAILED, err
    assert f"downgrade {migrate.head()} -> 0004 runs, in this order:" in err
    assert "0005  rollback/0005_refresh_tokens_down.sql   DESTROYS the refresh_tokens table" in err
    assert "0008  rollback/0008_single_pass_purge_down.sql\n" in err
    assert "Proceed? [y/N]" in err
    assert "not confirmed; nothing was changed" in err
    assert migrate.current(fresh_db) == migrate.head()

    code, err = run_on_a_terminal("y", "downgrade", "0004", "--dsn", fresh_db)
    assert code == 0, err
    assert migrate.current(fresh_db) == "0004"
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_sql_prints_the_downgrade_without_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    done = matcha_time(capsys, "downgrade", "0004", "--sql", "--dsn", NOWHERE)
    assert done.code == 0, done.err
    assert "DROP TABLE IF EXISTS refresh_tokens" in done.out
    assert "DROP INDEX CONCURRENTLY IF EXISTS idx_refresh_tokens_expires_at" in done.out
    assert "DROP TABLE IF EXISTS email_verification_tokens" not in done.out  # 0004 stays
    assert "secret" not in done.out + done.err


def test_sql_prints_an_upgrade_range_without_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = matcha_time(capsys, "upgrade", "0005:0006", "--sql", "--dsn", NOWHERE, "--json")
    assert done.code == 0, done.err
    sql = done.json()["sql"]
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_refresh_tokens_expires_at" in sql
    assert "UPDATE alembic_version SET version_num='0006'" in sql
    assert "CREATE TABLE refresh_tokens" not in sql  # 0005 is the start, not re-run


def test_sql_with_a_bad_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    done = matcha_time(capsys, "upgrade", "0005:9999", "--sql", "--dsn", NOWHERE)
    assert done.code == errors.EXIT_USAGE
    assert "unknown revision '9999'" in done.err


def test_the_consent_marker_is_documented_in_the_revision_template() -> None:
    assert "DESTROYS_DATA" in Path(data_root() / "migrations" / "script.py.mako").read_text()
