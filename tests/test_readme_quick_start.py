"""The README's quick start runs as written: its SQL blocks through the real psql, with the
flags the README gives, on a fresh database holding only the app's tables and the engine."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from pgsweep import engine
from tests.pg import connect

README = Path(__file__).resolve().parent.parent / "README.md"

# The tables the quick start stands for: an app's own, no index on the expiry columns yet.
APP_TABLES = """
CREATE TABLE attributes (id bigint PRIMARY KEY, ttl_timestamp bigint);
CREATE TABLE sessions (id text PRIMARY KEY, expires_at timestamp(3) NOT NULL);
CREATE TABLE events_seen (id bigint PRIMARY KEY, seen_at timestamptz NOT NULL);
"""


def quick_start() -> str:
    text = README.read_text()
    start = text.index("\n## Quick start for any app\n")
    return text[start : text.index("\n## ", start + 1)]


def heredocs(section: str) -> list[tuple[list[str], str]]:
    """Every ``psql … <<'SQL'`` of the section: psql's arguments and the block."""
    found = re.findall(r"^(psql [^\n]*?)\s*<<'SQL'\n(.*?)^SQL$", section, re.M | re.S)
    return [(shlex.split(command)[1:], block) for command, block in found]


def test_the_quick_start_has_sql_blocks_that_stop_at_the_first_error() -> None:
    blocks = heredocs(quick_start())
    assert blocks
    for argv, _ in blocks:
        assert "ON_ERROR_STOP=1" in argv, argv


def test_the_quick_starts_sql_runs_with_on_error_stop_on_a_fresh_database(fresh_db: str) -> None:
    with connect(fresh_db) as conn:
        conn.execute(APP_TABLES)
    engine.install(fresh_db)
    for argv, block in heredocs(quick_start()):
        # The README's own flags; its "$DATABASE_URL" is this test's database.
        args = [fresh_db if a == "$DATABASE_URL" else a for a in argv]
        done = subprocess.run(
            ["psql", *args], input=block, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
    with connect(fresh_db) as conn:
        rules = conn.execute(
            "SELECT table_name::text, column_name::text FROM pgsweep.expiry_rule ORDER BY 1"
        ).fetchall()
    assert rules == [
        ("attributes", "ttl_timestamp"),
        ("events_seen", "seen_at"),
        ("sessions", "expires_at"),
    ]


def test_a_block_missing_its_index_fails_psql_rather_than_exit_zero(fresh_db: str) -> None:
    with connect(fresh_db) as conn:
        conn.execute(APP_TABLES)
    engine.install(fresh_db)
    argv, _ = heredocs(quick_start())[0]
    args = [fresh_db if a == "$DATABASE_URL" else a for a in argv]
    done = subprocess.run(
        ["psql", *args],
        input="SELECT pgsweep.add_rule('events_seen', 'seen_at', '7 days');\nSELECT 1;\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done
    assert "index" in done.stderr


def test_the_quick_start_says_to_create_the_pg_cron_extension_before_scheduling() -> None:
    section = quick_start()
    assert "CREATE EXTENSION IF NOT EXISTS pg_cron" in section
    assert "shared_preload_libraries" in section
    assert "cron.database_name" in section
