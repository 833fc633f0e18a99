"""Alembic environment for the Matcha Time chain.

The database is, in order: a connection (or an engine, as pytest-alembic passes) handed in by
the caller (``config.attributes["connection"]``, used by pgsweep's Python layer and the tests),
else ``DATABASE_URL``, else ``sqlalchemy.url`` from alembic.ini; psycopg opens the connection
from libpq's reading of it (:func:`pgsweep.db.engine`). Each revision runs in its own
transaction (``transaction_per_migration``) so that ``CREATE INDEX CONCURRENTLY`` can run in an
autocommit block between them.

A caller whose connection already holds a transaction (a deploy script that took an advisory
lock on it, pytest-alembic) keeps it: every revision then runs inside that transaction, which
this file never commits, and :mod:`pgsweep.revision_files` decides how the statements that
cannot run in a transaction are run (README, "Migrations with Alembic").
"""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig

import psycopg
from alembic import context
from sqlalchemy import Connection, Engine

from pgsweep.db import engine as psycopg_engine
from pgsweep.revision_files import CALLER_TRANSACTION_OPTION, MANAGED_BY_SETTING

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

sql_log = logging.getLogger("pgsweep.sql")


def database_url() -> str:
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("No database: set DATABASE_URL (postgresql://user@host/db).")
    return url


def run_offline() -> None:
    # Offline output needs only the dialect; the DSN is never connected to (nor parsed).
    context.configure(dialect_name="postgresql", literal_binds=True, transaction_per_migration=True)
    # The output is run with psql: tell the files that Alembic's statements keep the version.
    context.execute(f"SET {MANAGED_BY_SETTING} = 'alembic'")
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    driver.add_notice_handler(_log_notice)
    # Before anything here runs a statement: an open transaction now is the caller's.
    caller_transaction = connection.in_transaction()
    _set_managed_by(connection, "alembic")
    try:
        context.configure(
            connection=connection,
            transaction_per_migration=True,
            **{CALLER_TRANSACTION_OPTION: caller_transaction},  # type: ignore[arg-type]
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        # A connection lost mid-migration (server restart, pg_terminate_backend) is invalidated:
        # its session is gone, and touching it would raise an error that hides the real one.
        if not connection.invalidated:
            _set_managed_by(connection, "")
        driver.remove_notice_handler(_log_notice)


def _set_managed_by(connection: Connection, value: str) -> None:
    # Session-level, so it holds across the per-revision transactions. A caller's open
    # transaction is left for the caller to commit.
    owns_transaction = not connection.in_transaction()
    connection.exec_driver_sql(f"SELECT set_config('{MANAGED_BY_SETTING}', '{value}', false)")
    if owns_transaction:
        connection.commit()


# An IF NOT EXISTS that found its object says so in a NOTICE ("schema ... already exists,
# skipping"): expected of idempotent files that run again in a later revision, and nothing an
# operator acts on, so it is logged for debugging only (upgrade printed each of them once per
# revision that re-ran the statement). duplicate_schema, _table, _object, _column.
_SKIPPED_AS_EXISTING = frozenset({"42P06", "42P07", "42710", "42701"})


def _log_notice(diagnostic: psycopg.errors.Diagnostic) -> None:
    quiet = diagnostic.severity_nonlocalized == "NOTICE" and (
        diagnostic.sqlstate in _SKIPPED_AS_EXISTING
    )
    sql_log.log(
        logging.DEBUG if quiet else logging.INFO,
        "%s: %s",
        diagnostic.severity,
        diagnostic.message_primary,
    )


def run_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        run_on(given)
        return
    engine = given if isinstance(given, Engine) else psycopg_engine(database_url())
    try:
        with engine.connect() as connection:
            run_on(connection)
            if connection.in_transaction():
                connection.commit()  # our own connection: nothing of a caller's to keep open
    finally:
        if given is None:
            engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
