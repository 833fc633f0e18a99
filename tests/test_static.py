"""Static checks: squawk on the SQL files, plpgsql_check on every routine, ruff and mypy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pgsweep import migrate
from pgsweep.paths import data_root, engine_dir, rollback_dir, sql_dir
from pgsweep.sqlfile import load
from tests.pg import PgServer, connect

ROOT = data_root()
VENV_BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI") == "true"


def tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make venv`")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def shipped_sql() -> list[Path]:
    """What runs against a database: the app's revisions and the engine's release files."""
    return (
        sorted(sql_dir().glob("*.sql"))
        + sorted(rollback_dir().glob("*.sql"))
        + sorted((engine_dir() / "releases").rglob("*.sql"))
    )


def test_squawk_finds_nothing_in_the_up_and_down_scripts() -> None:
    done = run(tool("squawk"), *(str(p.relative_to(ROOT)) for p in shipped_sql()))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_squawk_exception_carries_its_reason() -> None:
    for path in shipped_sql():
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if "squawk-ignore" in line:
                reason = lines[number - 1] if number > 0 else ""
                assert reason.startswith("-- "), f"{path.name}:{number + 1}: no reason above"
                assert "squawk" not in reason, f"{path.name}:{number + 1}: no reason above"


CHANGES = re.compile(r"^(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|COMMENT|REVOKE|GRANT)\b", re.I)
SETS_LOCK_TIMEOUT = re.compile(r"lock_timeout", re.I)


@pytest.mark.parametrize("path", shipped_sql(), ids=lambda p: p.name)
def test_every_file_sets_a_lock_timeout_before_its_first_change(path: Path) -> None:
    statements = [s.sql for segment in load(path) for s in segment.statements]
    first_change = next(i for i, sql in enumerate(statements) if CHANGES.match(sql))
    assert any(SETS_LOCK_TIMEOUT.search(sql) for sql in statements[:first_change]), (
        f"{path.name}: no lock_timeout before {statements[first_change][:60]!r}"
    )


def test_plpgsql_check_reports_nothing_for_any_routine(fresh_db: str, pg_server: PgServer) -> None:
    if not pg_server.has_plpgsql_check:
        if IN_CI:
            pytest.fail("plpgsql_check is not installed (CI installs postgresql-15-plpgsql-check)")
        pytest.skip("plpgsql_check is not installed on this server")
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        conn.execute("CREATE EXTENSION plpgsql_check")
        checked = conn.execute(
            "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
            " JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE l.lanname = 'plpgsql' AND n.nspname IN ('public', 'pgsweep')"
        ).fetchone()
        findings = conn.execute(
            "SELECT p.oid::regprocedure::text, coalesce(t.tgrelid, 0)::regclass::text,"
            "       c.level, c.lineno, c.message"
            " FROM pg_proc p"
            " JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'"
            " JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname IN ('public', 'pgsweep')"
            " LEFT JOIN pg_trigger t ON t.tgfoid = p.oid"  # a trigger function with its table
            " CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid, coalesce(t.tgrelid, 0),"
            "     extra_warnings => true, security_warnings => true) c"
        ).fetchall()
    assert checked is not None
    assert checked[0] >= 8
    assert findings == []


def test_ruff_is_clean() -> None:
    done = run(tool("ruff"), "check", "src", "tests", "migrations", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_is_clean() -> None:
    done = run(tool("mypy"), "src", "tests", "migrations", "bench")
    assert done.returncode == 0, done.stdout + done.stderr
