"""A DSN is read by libpq alone: keyword strings and multi-host URLs work for every path that
connects (the library, the pgsweep command, Alembic's own command through env.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgsweep import migrate
from pgsweep.dsn import conninfo
from pgsweep.paths import data_root
from tests.cli import matcha_time


def keyword_dsn(dsn: str) -> str:
    return make_conninfo("", **conninfo_to_dict(conninfo(dsn)))


def multi_host_url(dsn: str) -> str:
    """A URL whose first host refuses connections (port 1): libpq must go on to the second."""
    p = {k: str(v) for k, v in conninfo_to_dict(conninfo(dsn)).items()}
    user = quote(p["user"], safe="")
    if "password" in p:
        user += ":" + quote(p["password"], safe="")
    hosts = f"127.0.0.1:1,{p.get('host', 'localhost')}:{p.get('port', '5432')}"
    return f"postgresql://{user}@{hosts}/{quote(p['dbname'], safe='')}"


def test_a_keyword_dsn_migrates_and_is_shown_masked(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = keyword_dsn(fresh_db)
    assert "://" not in dsn
    migrate.upgrade(dsn, "0002")
    assert migrate.current(dsn) == "0002"
    done = matcha_time(capsys, "upgrade", "0003", "--dsn", dsn)
    assert done.code == 0, done.err
    assert "0002 -> 0003" in done.out
    password = str(conninfo_to_dict(dsn).get("password") or "")
    if password:
        assert password not in done.out + done.err


def test_a_multi_host_url_reaches_the_host_that_answers(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = multi_host_url(fresh_db)
    migrate.upgrade(url, "0001")
    assert migrate.current(url) == "0001"
    assert matcha_time(capsys, "current", "--dsn", url).out.startswith("0001 ")


def test_alembics_own_command_reads_a_multi_host_database_url(fresh_db: str) -> None:
    env = {**os.environ, "DATABASE_URL": multi_host_url(fresh_db)}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "0001"],
        cwd=data_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert migrate.current(fresh_db) == "0001"
