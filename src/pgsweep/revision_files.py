"""Run a revision's SQL file from inside an Alembic migration.

Each revision module names its two files (``UP_SQL``, ``DOWN_SQL``, relative to the folder
that holds ``migrations/``) and calls :func:`run_sql_file`. The file's ``BEGIN ... COMMIT``
block runs inside Alembic's transaction for the revision, so the schema change and Alembic's
version row commit together; statements outside the block (``CREATE INDEX CONCURRENTLY``) run
in an autocommit block, exactly as psql runs them.

When the caller handed env.py a connection that already holds a transaction (a deploy script's
advisory lock, pytest-alembic), there is no autocommit block to be had: entering one would
commit the caller's transaction behind its back (and Alembic asserts rather than do it). Then
every statement runs inside the caller's transaction, except a concurrent index build or drop,
which cannot; for each one :func:`_run_in_callers_transaction` picks the sound way out:

* **inside the caller's transaction, without CONCURRENTLY**, when the table is empty (the
  build is instant) or the caller's transaction already holds a lock on it beyond
  ``ACCESS SHARE`` (it created or altered the table, or wrote to it: a concurrent build on any
  connection would wait for that transaction, i.e. for ourselves, and the app's writers are
  already queued behind it until it commits), or it runs above READ COMMITTED (its snapshot
  would make a concurrent build wait for it as well);
* **CONCURRENTLY, on a second connection** (autocommit, same lock_timeout), when the table has
  rows and the caller's transaction has not touched it: the app keeps writing while the index
  builds, as under psql. That build commits on its own, before the caller's transaction does;
  if the caller then rolls back, the index stays and the revision is not recorded, exactly the
  state an interrupted psql run leaves, which the revision's next run repairs (0006 drops an
  invalid leftover and skips a valid one).

Committing the caller's transaction was not an option: its advisory lock may be
transaction-scoped, and its other work is not ours to make permanent.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import psycopg
from alembic import op
from psycopg import sql

from pgsweep.sqlfile import Segment, load

log = logging.getLogger("pgsweep.sql")

# Set on the migration session by env.py: Alembic keeps alembic_version itself, so the files'
# own version bookkeeping (for psql runs) stands aside.
MANAGED_BY_SETTING = "pgsweep.managed_by"

# env.py passes this to context.configure: whether the connection it was handed already held a
# transaction (the caller's) before any migration ran.
CALLER_TRANSACTION_OPTION = "pgsweep_caller_transaction"

_CONCURRENT = re.compile(
    r"(?is)^\s*(?P<verb>CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX)\s+CONCURRENTLY\b"
)
_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_INDEXED_TABLE = re.compile(rf"(?is)\bON\s+(?:ONLY\s+)?(?P<table>{_NAME}(?:\s*\.\s*{_NAME})?)")
_DROPPED_INDEX = re.compile(
    rf"(?is)^\s*DROP\s+INDEX\s+CONCURRENTLY\s+(?:IF\s+EXISTS\s+)?(?P<index>{_NAME}(?:\.{_NAME})?)"
)


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
    caller_transaction = bool(context.opts.get(CALLER_TRANSACTION_OPTION))
    for segment in segments:
        if segment.in_transaction:
            _execute(segment)
        elif caller_transaction:
            for statement in segment.statements:
                _run_in_callers_transaction(statement.sql)
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
    # On a connection the caller put in autocommit (isolation_level="AUTOCOMMIT"), Alembic's
    # transaction per revision is no transaction at the server: every statement would commit
    # on its own, and a file's LOCK TABLE fails outside a transaction block. Then the file's
    # BEGIN ... COMMIT block is opened here, as psql opens it.
    own = segment.in_transaction and bool(getattr(driver, "autocommit", False))
    with driver.cursor() as cursor:
        if own:
            cursor.execute("BEGIN")
        try:
            for statement in segment.statements:
                cursor.execute(statement.sql)
        except BaseException:
            if own:
                cursor.execute("ROLLBACK")
            raise
        if own:
            cursor.execute("COMMIT")


def _driver() -> psycopg.Connection[Any]:
    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def _run_in_callers_transaction(statement: str) -> None:
    """One statement of a file's part outside BEGIN/COMMIT, with the caller's transaction open."""
    driver = _driver()
    concurrent = _CONCURRENT.match(statement)
    if concurrent is None:
        driver.execute(statement)
        return
    table = _table_of(driver, statement)
    if table is None or _build_in_transaction(driver, table):
        plain = statement[: concurrent.end("verb")] + statement[concurrent.end() :]
        log.info("caller holds a transaction: %s inside it", " ".join(plain.split()[:2]))
        driver.execute(plain)
    else:
        log.info(
            "caller holds a transaction: %s CONCURRENTLY on a second connection",
            " ".join(statement.split()[:2]),
        )
        _run_on_second_connection(driver, statement)


def _table_of(driver: psycopg.Connection[Any], statement: str) -> int | None:
    """The oid of the table a concurrent index statement touches; None when it does not exist
    (then the plain statement gives the right answer: IF [NOT] EXISTS, or the error)."""
    drop = _DROPPED_INDEX.match(statement)
    if drop is not None:
        query = "SELECT indrelid::oid FROM pg_index WHERE indexrelid = to_regclass(%s)"
        row = driver.execute(query, (drop.group("index"),)).fetchone()
    else:
        on = _INDEXED_TABLE.search(statement)
        if on is None:
            return None
        row = driver.execute("SELECT to_regclass(%s)::oid", (on.group("table"),)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _build_in_transaction(driver: psycopg.Connection[Any], table: int) -> bool:
    row = driver.execute(
        "SELECT current_setting('transaction_isolation') <> 'read committed'"
        "    OR EXISTS (SELECT FROM pg_locks WHERE pid = pg_backend_pid()"
        "               AND locktype = 'relation' AND relation = %s"
        "               AND mode <> 'AccessShareLock')",
        (table,),
    ).fetchone()
    if row is not None and row[0]:
        return True
    name = driver.execute(
        "SELECT n.nspname, c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
        (table,),
    ).fetchone()
    assert name is not None
    empty = driver.execute(
        sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(sql.Identifier(*name))
    ).fetchone()
    return bool(empty and empty[0])


def _run_on_second_connection(driver: psycopg.Connection[Any], statement: str) -> None:
    # SHOW, not SELECT, and last on the caller's connection: the server keeps the unnamed
    # portal of a SELECT, and with it its snapshot, until the next statement, and a concurrent
    # build waits for every transaction holding an older snapshot: here, for ourselves, until
    # lock_timeout. SHOW takes no snapshot.
    row = driver.execute("SHOW lock_timeout").fetchone()
    lock_timeout = "0" if row is None else str(row[0])
    with op.get_bind().engine.connect() as other:
        other = other.execution_options(isolation_level="AUTOCOMMIT")
        raw = other.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        raw.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
        raw.execute(statement)


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
