"""A real Django project with django-oauth-toolkit (tests/django_app), cleaned two ways.

Django's ``migrate`` creates the tables, ``tests/django_app/fill.py`` fills them through Django's
own APIs (``SessionStore``, the toolkit's models) from a fixed seed, and copies of that database
(``CREATE DATABASE … TEMPLATE``) are cleaned by ``manage.py clearsessions`` + ``cleartokens``,
by ``pgsweep cleanup`` and by ``CALL pgsweep.sweep()`` with the rules of
``tests/django_app/pgsweep_rules.sql``. The rows left are compared table by table; docs/rules.md
("Django and django-oauth-toolkit") records where pgsweep's rules cannot follow ``cleartokens``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from pgsweep import engine
from tests.pg import PgServer, connect, drop_database, unique_dbname

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "tests" / "django_app"
SEED = 18
DJANGO_TIMEOUT_S = 300

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


def run_python(dsn: str, script: Path, *argv: str) -> str:
    """Run one of the project's scripts (or manage.py) against ``dsn``; its stdout."""
    env = dict(
        os.environ, PGSWEEP_DJANGO_DSN=dsn, DJANGO_SETTINGS_MODULE="tests.django_app.settings"
    )
    done = subprocess.run(
        [sys.executable, str(script), *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DJANGO_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def manage(dsn: str, *argv: str) -> str:
    return run_python(dsn, PROJECT / "manage.py", *argv)


def rows(dsn: str) -> Rows:
    with connect(dsn) as conn:
        return {table: conn.execute(query).fetchall() for table, query in ROWS.items()}


@contextlib.contextmanager
def copy_of(server: PgServer, template: str, hint: str) -> Iterator[str]:
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


def with_rules(dsn: str) -> None:
    engine.install(dsn)
    with connect(dsn) as conn:
        conn.execute((PROJECT / "pgsweep_rules.sql").read_text())


@pytest.fixture(scope="module")
def filled(pg_server: PgServer) -> Iterator[str]:
    """Name of the filled database every copy is made from (no connection left open on it)."""
    name = unique_dbname("django_filled")
    with connect(pg_server.admin_dsn) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    dsn = pg_server.dsn(name)
    try:
        manage(dsn, "migrate", "--verbosity", "0")
        with connect(dsn) as conn:
            conn.execute((PROJECT / "indexes.sql").read_text())
        run_python(dsn, PROJECT / "fill.py", str(SEED))
        yield name
    finally:
        drop_database(pg_server.admin_dsn, name)


def cleanup_once(dsn: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "pgsweep", "cleanup", "--dsn", dsn, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DJANGO_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def sweep_once(dsn: str) -> str:
    with connect(dsn) as conn:
        conn.execute("CALL pgsweep.sweep()")
        status = conn.execute("SELECT status FROM pgsweep.run ORDER BY run_id DESC LIMIT 1")
        row = status.fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def cleaned(pg_server: PgServer, filled: str) -> dict[str, Any]:
    """The rows of the filled database and of each copy after each way of cleaning it."""
    out: dict[str, Any] = {"filled": rows(pg_server.dsn(filled))}
    with (
        copy_of(pg_server, filled, "django_orm") as orm,
        copy_of(pg_server, filled, "django_cleanup") as by_cleanup,
        copy_of(pg_server, filled, "django_sweep") as by_sweep,
    ):
        manage(orm, "clearsessions")
        manage(orm, "cleartokens")
        out["django"] = rows(orm)
        for dsn in (by_cleanup, by_sweep):
            with_rules(dsn)
        out["cleanup_reports"] = [cleanup_once(by_cleanup)]
        out["cleanup"] = rows(by_cleanup)
        out["cleanup_reports"].append(cleanup_once(by_cleanup))
        out["cleanup_twice"] = rows(by_cleanup)
        out["sweep_status"] = [sweep_once(by_sweep)]
        out["sweep"] = rows(by_sweep)
        out["sweep_status"].append(sweep_once(by_sweep))
        out["sweep_twice"] = rows(by_sweep)
        out["sessions_loaded"] = json.loads(run_python(by_sweep, PROJECT / "load_sessions.py"))
    return out


EXACT_IN_ONE_RUN = (
    "django_session",
    "oauth2_provider_refreshtoken",
    "oauth2_provider_grant",
    "oauth2_provider_application",
    "auth_user",
)
# Freed by a refresh token the same run deletes later (docs/rules.md, "Django and
# django-oauth-toolkit"): left for the next run.
SECOND_RUN = ("oauth2_provider_accesstoken", "oauth2_provider_idtoken")


def test_the_filler_wrote_garbage_and_live_rows_of_every_kind(cleaned: dict[str, Any]) -> None:
    filled, django = cleaned["filled"], cleaned["django"]
    for table in ROWS:
        if table in ("oauth2_provider_application", "auth_user"):
            assert len(django[table]) == len(filled[table]) > 0
        else:  # cleartokens and clearsessions both delete some and keep some of each table
            assert 0 < len(django[table]) < len(filled[table]), table
    tokens = filled["oauth2_provider_accesstoken"]
    assert any(source is not None for _, source, _ in tokens)
    assert any(id_token is not None for _, _, id_token in tokens)
    refresh = filled["oauth2_provider_refreshtoken"]
    assert any(access is None and not revoked for _, access, revoked in refresh)
    assert any(access is None and revoked for _, access, revoked in refresh)


@pytest.mark.parametrize("way", ["cleanup", "sweep"])
def test_sessions_refresh_tokens_and_grants_are_left_as_the_commands_leave_them_in_one_run(
    cleaned: dict[str, Any], way: str
) -> None:
    for table in EXACT_IN_ONE_RUN:
        assert cleaned[way][table] == cleaned["django"][table], table


@pytest.mark.parametrize("way", ["cleanup", "sweep"])
def test_one_run_keeps_every_access_and_id_token_cleartokens_keeps(
    cleaned: dict[str, Any], way: str
) -> None:
    for table in SECOND_RUN:
        kept, by_django = set(cleaned[way][table]), set(cleaned["django"][table])
        assert by_django <= kept, table
    # what the first run leaves over is expired: no live access token is ever at stake
    left_over = {
        row[0]
        for row in set(cleaned[way]["oauth2_provider_accesstoken"])
        - set(cleaned["django"]["oauth2_provider_accesstoken"])
    }
    assert left_over  # this seed has access tokens freed only by the run's refresh rules
    refreshed = {r[1] for r in cleaned[way]["oauth2_provider_refreshtoken"]}
    assert not left_over & refreshed  # none has a refresh token any more: the next run's


@pytest.mark.parametrize("way", ["cleanup_twice", "sweep_twice"])
def test_a_second_run_leaves_every_table_as_clearsessions_and_cleartokens_do(
    cleaned: dict[str, Any], way: str
) -> None:
    for table in ROWS:
        assert cleaned[way][table] == cleaned["django"][table], table


def test_every_run_succeeded_and_the_second_deleted_only_access_and_id_tokens(
    cleaned: dict[str, Any],
) -> None:
    assert cleaned["sweep_status"] == ["succeeded", "succeeded"]
    first, second = cleaned["cleanup_reports"]
    for report in (first, second):
        assert report["ok"]
        assert not report["failed"]
    filled, once = cleaned["filled"], cleaned["cleanup"]
    assert first["deleted"] == sum(len(filled[t]) - len(once[t]) for t in ROWS)
    by_table = {t["table"]: t["deleted"] for t in second["tables"] if t["deleted"]}
    assert set(by_table) == set(SECOND_RUN)
    for table in SECOND_RUN:
        assert by_table[table] == len(once[table]) - len(cleaned["django"][table])


def test_every_session_left_still_loads_through_django(cleaned: dict[str, Any]) -> None:
    loaded = cleaned["sessions_loaded"]
    assert sorted(loaded) == [key for (key,) in cleaned["django"]["django_session"]]
    assert all(isinstance(data.get("visit"), int) for data in loaded.values())
