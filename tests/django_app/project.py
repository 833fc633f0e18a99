"""Test support: the Django project's database filled, copied, cleaned each way, and read back.

Used by tests/test_django_cleanup.py and by ``python -m tests.django_app.compare`` (the table of
rows left per table that docs/rules.md quotes).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from psycopg import sql

from pgsweep import engine
from tests.pg import PgServer, connect, drop_database, unique_dbname

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "tests" / "django_app"
RULES = PROJECT / "pgsweep_rules.sql"
SEED = 18
TIMEOUT_S = 300

# What each table's rows are compared by: the key, and the keys Django's ORM sets NULL.
ROWS = {
    "django_session": "SELECT session_key FROM django_session ORDER BY 1",
    "oauth2_provider_accesstoken": (
        "SELECT id, source_refresh_token_id, id_token_id FROM oauth2_provider_accesstoken"
        " ORDER BY id"
    ),
    "oauth2_provider_refreshtoken": (
        "SELECT id, access_token_id, revoked IS NOT NULL FROM oauth2_provider_refreshtoken"
        " ORDER BY id"
    ),
    "oauth2_provider_idtoken": "SELECT id FROM oauth2_provider_idtoken ORDER BY id",
    "oauth2_provider_grant": "SELECT id FROM oauth2_provider_grant ORDER BY id",
    "oauth2_provider_application": "SELECT id FROM oauth2_provider_application ORDER BY id",
    "auth_user": "SELECT id FROM auth_user ORDER BY id",
}
Rows = dict[str, list[tuple[Any, ...]]]


def run_python(
    dsn: str, script: Path, *argv: str, oauth: Mapping[str, object] | None = None
) -> str:
    """Run one of the project's scripts (or manage.py) against ``dsn``; its stdout.
    ``oauth`` overrides settings of django-oauth-toolkit (settings.py, PGSWEEP_DJANGO_OAUTH)."""
    env = dict(
        os.environ,
        PGSWEEP_DJANGO_DSN=dsn,
        PGSWEEP_DJANGO_OAUTH=json.dumps(dict(oauth or {})),
        DJANGO_SETTINGS_MODULE="tests.django_app.settings",
    )
    done = subprocess.run(
        [sys.executable, str(script), *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def manage(dsn: str, *argv: str, oauth: Mapping[str, object] | None = None) -> str:
    return run_python(dsn, PROJECT / "manage.py", *argv, oauth=oauth)


def django_cleanup(dsn: str, oauth: Mapping[str, object] | None = None) -> None:
    """What the project's cron job would run: ``clearsessions`` then ``cleartokens``."""
    manage(dsn, "clearsessions", oauth=oauth)
    manage(dsn, "cleartokens", oauth=oauth)


def rows(dsn: str) -> Rows:
    with connect(dsn) as conn:
        return {table: conn.execute(query).fetchall() for table, query in ROWS.items()}


@contextlib.contextmanager
def filled_database(server: PgServer, seed: int = SEED) -> Iterator[str]:
    """Name of a database migrated by Django and filled from ``seed``; no connection is left
    open on it, so that copies can be made from it. Dropped afterwards."""
    name = unique_dbname("django_filled")
    with connect(server.admin_dsn) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    dsn = server.dsn(name)
    try:
        manage(dsn, "migrate", "--verbosity", "0")
        with connect(dsn) as conn:
            conn.execute((PROJECT / "indexes.sql").read_text())
        run_python(dsn, PROJECT / "fill.py", str(seed))
        yield name
    finally:
        drop_database(server.admin_dsn, name)


@contextlib.contextmanager
def copy_of(server: PgServer, template: str, hint: str) -> Iterator[str]:
    """DSN of a new database made from ``template`` (``CREATE DATABASE … TEMPLATE``)."""
    name = unique_dbname(hint)
    with connect(server.admin_dsn) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield server.dsn(name)
    finally:
        drop_database(server.admin_dsn, name)


def with_rules(dsn: str, rules: str | None = None) -> None:
    """The engine and the rules (pgsweep_rules.sql unless given) in the database at ``dsn``."""
    engine.install(dsn)
    with connect(dsn) as conn:
        conn.execute(RULES.read_text() if rules is None else rules)


def cleanup_once(dsn: str) -> dict[str, Any]:
    """``pgsweep cleanup --json``, the real command; its report."""
    done = subprocess.run(
        [sys.executable, "-m", "pgsweep", "cleanup", "--dsn", dsn, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def sweep_once(dsn: str) -> str:
    """``CALL pgsweep.sweep()``; the status the run recorded."""
    with connect(dsn) as conn:
        conn.execute("CALL pgsweep.sweep()")
        row = conn.execute(
            "SELECT status FROM pgsweep.run ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return str(row[0])
