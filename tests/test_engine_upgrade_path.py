"""Every engine release after the first upgrades the one before it in place and steps back to
it: ``upgrade.sql`` gives the catalog a fresh install of the newer release has, ``downgrade.sql``
the catalog of a fresh install of the older one, and the rules registered before either survive
both ways (psql, ``pgsweep install`` and the Alembic branch alike)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from pgsweep import db, engine
from pgsweep.alembic_branch import VERSION_LOCATION
from pgsweep.catalog import Snapshot
from tests import own_tables
from tests.cli import pgsweep
from tests.pg import connect
from tests.sqlrun import assert_same_catalog, catalog_of

FIRST, *LATER = engine.releases()
STEPS = list(zip([FIRST, *LATER], LATER, strict=False))


def psql(dsn: str, path: Path) -> None:
    done = subprocess.run(
        ["psql", "-X", "-q", "-d", dsn, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr


def version(dsn: str) -> str:
    with connect(dsn) as conn:
        row = conn.execute("SELECT pgsweep.version()").fetchone()
    assert row is not None
    return str(row[0])


def rules(dsn: str) -> list[tuple[str, str]]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name::text, column_name::text FROM pgsweep.expiry_rule ORDER BY 1, 2"
        ).fetchall()
    return [(str(t), str(c)) for t, c in rows]


def fresh_catalog(dsn: str, release: str) -> Snapshot:
    """The catalog of ``release`` installed on its own (the database is emptied again after)."""
    psql(dsn, engine.release_file(release, "install.sql"))
    snapshot = catalog_of(dsn)
    psql(dsn, engine.release_file(release, "uninstall.sql"))
    return snapshot


@pytest.mark.skipif(not LATER, reason="one release only: nothing to upgrade from")
@pytest.mark.parametrize(("older", "newer"), STEPS, ids=[f"{a}-{b}" for a, b in STEPS])
def test_upgrade_then_downgrade_match_fresh_installs_and_keep_the_rules(
    fresh_db: str, older: str, newer: str
) -> None:
    with connect(fresh_db) as conn:
        own_tables.create(conn, rules=False)
    fresh_older = fresh_catalog(fresh_db, older)
    fresh_newer = fresh_catalog(fresh_db, newer)

    psql(fresh_db, engine.release_file(older, "install.sql"))
    with connect(fresh_db) as conn:
        own_tables.add_rules(conn)
    registered = rules(fresh_db)
    assert registered

    psql(fresh_db, engine.release_file(newer, "upgrade.sql"))
    assert version(fresh_db) == newer
    assert rules(fresh_db) == registered
    upgraded = catalog_of(fresh_db)
    assert_same_catalog(fresh_newer, upgraded, f"{older} upgraded differs from {newer}")

    for _ in range(2):  # the downgrade is safe to run again
        psql(fresh_db, engine.release_file(newer, "downgrade.sql"))
    assert version(fresh_db) == older
    assert rules(fresh_db) == registered
    downgraded = catalog_of(fresh_db)
    assert_same_catalog(fresh_older, downgraded, f"{newer} downgraded differs from {older}")

    psql(fresh_db, engine.release_file(newer, "upgrade.sql"))
    assert_same_catalog(fresh_newer, catalog_of(fresh_db), "upgrade, downgrade, upgrade differs")


@pytest.mark.skipif(not LATER, reason="one release only: nothing to upgrade from")
def test_install_upgrades_the_first_release_to_the_newest(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    psql(fresh_db, engine.release_file(FIRST, "install.sql"))
    done = pgsweep(capsys, "install", "--dsn", fresh_db)
    assert done.code == 0, done.err
    assert version(fresh_db) == engine.latest()


def test_the_alembic_branch_steps_through_every_release_and_back(
    fresh_db: str, tmp_path: Path
) -> None:
    (tmp_path / "env.py").write_text(
        "from alembic import context\n"
        "connection = context.config.attributes['connection']\n"
        "context.configure(connection=connection, transaction_per_migration=True)\n"
        "with context.begin_transaction():\n"
        "    context.run_migrations()\n"
    )
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    config.set_main_option("path_separator", "space")
    config.set_main_option("version_locations", VERSION_LOCATION)
    connectable = db.engine(fresh_db)
    with connectable.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "pgsweep@head")
        connection.commit()
        assert version(fresh_db) == engine.latest()
        for older in reversed([FIRST, *LATER][:-1]):
            command.downgrade(config, f"pgsweep_{older.replace('.', '_')}")
            connection.commit()
            assert version(fresh_db) == older
        command.downgrade(config, "base")
        connection.commit()
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regnamespace('pgsweep')").fetchone() == (None,)
    connectable.dispose()
