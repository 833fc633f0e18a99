"""Run the shipped SQL files the way operators do (the real psql binary), and read the catalog."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pgsweep import catalog
from pgsweep.paths import rollback_dir, sql_dir
from tests.pg import connect


def up_file(revision: str) -> Path:
    (path,) = sql_dir().glob(f"{revision}_*.sql")
    return path


def down_file(revision: str) -> Path:
    (path,) = rollback_dir().glob(f"{revision}_*_down.sql")
    return path


def psql_file(dsn: str, path: Path) -> subprocess.CompletedProcess[str]:
    """``psql -X -f path`` exactly as docs/matcha.md tells operators; never raises."""
    return subprocess.run(
        ["psql", "-X", "-q", "-d", dsn, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def psql_ok(dsn: str, path: Path) -> None:
    done = psql_file(dsn, path)
    assert done.returncode == 0, f"psql -f {path.name} failed:\n{done.stderr}"


def catalog_of(dsn: str) -> catalog.Snapshot:
    with connect(dsn) as conn:
        return catalog.snapshot(conn)


def assert_same_catalog(before: catalog.Snapshot, after: catalog.Snapshot, what: str) -> None:
    differences = catalog.diff(before, after)
    assert not differences, f"{what}:\n" + "\n".join(differences)


def recorded_version(dsn: str) -> str | None:
    with connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])
