"""Drive the Alembic chain from Python: upgrade, downgrade, stamp, and read the version.

Every call opens its own connection to ``dsn`` and hands it to env.py through
``config.attributes["connection"]``, so the same revisions run here, from the ``alembic``
command and from an installed wheel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from pgsweep import db
from pgsweep.paths import alembic_ini, data_root

log = logging.getLogger("pgsweep.migrate")


@dataclass(frozen=True)
class LockPolicy:
    """How a migration waits for locks: briefly, then gives way and tries again.

    A DDL statement queued behind a long app transaction blocks every later statement on that
    table; a short lock_timeout turns that queue into a quick failure, and the retry (after a
    growing pause) finds a quieter moment. Revisions already applied stay applied: each runs in
    its own transaction, and 0006's index builds repair what an interrupted build left.
    """

    lock_timeout_ms: int = 2000
    attempts: int = 5
    first_pause_s: float = 1.0
    max_pause_s: float = 30.0

    def pause(self, attempt: int) -> float:
        return float(min(self.first_pause_s * 2 ** (attempt - 1), self.max_pause_s))


DEFAULT_LOCK_POLICY = LockPolicy()


def alembic_config(connection: Connection | None = None) -> Config:
    """The chain's Alembic config, found in the checkout or the installed wheel."""
    config = Config(str(alembic_ini()))
    config.set_main_option("script_location", str(data_root() / "migrations"))
    # The caller owns logging; alembic.ini's logging section is for the alembic command.
    config.attributes["configure_logger"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def connect(dsn: str) -> Iterator[Connection]:
    """A SQLAlchemy connection for Alembic, opened by psycopg from libpq's conninfo."""
    engine = db.engine(dsn)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def upgrade(dsn: str, revision: str = "head", policy: LockPolicy = DEFAULT_LOCK_POLICY) -> None:
    _with_lock_retries(dsn, policy, lambda config: command.upgrade(config, revision))


def downgrade(dsn: str, revision: str, policy: LockPolicy = DEFAULT_LOCK_POLICY) -> None:
    _with_lock_retries(dsn, policy, lambda config: command.downgrade(config, revision))


def _with_lock_retries(dsn: str, policy: LockPolicy, run: Callable[[Config], None]) -> None:
    for attempt in range(1, policy.attempts + 1):
        try:
            with connect(dsn) as connection:
                # Session-level: the SQL files keep a caller's lock_timeout instead of theirs.
                connection.exec_driver_sql(f"SET lock_timeout = {int(policy.lock_timeout_ms)}")
                connection.commit()
                run(alembic_config(connection))
            return
        except (DBAPIError, psycopg.Error) as exc:
            if not is_lock_timeout(exc) or attempt == policy.attempts:
                raise
            pause = policy.pause(attempt)
            log.warning(
                "lock not granted within %d ms (attempt %d of %d); retrying in %.1f s",
                policy.lock_timeout_ms,
                attempt,
                policy.attempts,
                pause,
            )
            time.sleep(pause)


def is_lock_timeout(exc: BaseException) -> bool:
    """A lock not granted within lock_timeout, whether raised by the SQL files (run on the
    driver connection) or by Alembic's own statements (wrapped by SQLAlchemy)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return isinstance(orig, psycopg.errors.LockNotAvailable)


def stamp(dsn: str, revision: str) -> None:
    with connect(dsn) as connection:
        command.stamp(alembic_config(connection), revision)
        connection.commit()


def current(dsn: str) -> str | None:
    """The revision recorded in the database, or None when it has none."""
    with connect(dsn) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest revision this code ships."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migration chain must have exactly one head, has {heads}")
    return heads[0]


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
