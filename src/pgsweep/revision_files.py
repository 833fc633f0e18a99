"""Run a revision's SQL file from inside an Alembic migration.

Each revision module names its two files (``UP_SQL``, ``DOWN_SQL``, relative to the folder
that holds ``migrations/``) and calls :func:`run_sql_file`. The file's ``BEGIN ... COMMIT``
block runs inside Alembic's transaction for the revision, so the schema change and Alembic's
version row commit together; statements outside the block (``CREATE INDEX CONCURRENTLY``) run
in an autocommit block, exactly as psql runs them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import op

from pgsweep.sqlfile import Segment, load

log = logging.getLogger("pgsweep.sql")

# Set on the migration session by env.py: Alembic keeps alembic_version itself, so the files'
# own version bookkeeping (for psql runs) stands aside.
MANAGED_BY_SETTING = "pgsweep.managed_by"


def revision_path(revision_module_file: str, relative: str) -> Path:
    """A path relative to the folder holding ``migrations/`` (checkout or wheel alike)."""
    return Path(revision_module_file).resolve().parents[2] / relative


def run_sql_file(path: Path) -> None:
    """Execute one migration file, online or as offline ``--sql`` output."""
    context = op.get_context()
    segments = load(path)
    log.info("running %s", path.name)
    if context.as_sql:
        _emit_offline(segments)
        return
    for segment in segments:
        if segment.in_transaction:
            _execute(segment)
        else:
            with context.autocommit_block():
                _execute(segment)


def _execute(segment: Segment) -> None:
    # The driver's raw connection: no SQLAlchemy text() parsing, so ":name" and "%" inside
    # PL/pgSQL bodies reach the server untouched, as they do from psql.
    # A cursor rather than the connection's own execute(): an app's chain that includes the
    # engine's branch may run on psycopg2 as well as psycopg 3.
    driver: Any = op.get_bind().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        for statement in segment.statements:
            cursor.execute(statement.sql)


def _emit_offline(segments: list[Segment]) -> None:
    context = op.get_context()
    for segment in segments:
        if segment.in_transaction:
            for statement in segment.statements:
                context.impl.static_output(statement.sql + ";")
        else:
            with context.autocommit_block():
                for statement in segment.statements:
                    context.impl.static_output(statement.sql + ";")
