"""Drive the Alembic chain from Python: upgrade, downgrade, stamp, and read the version.

Every call opens its own connection to ``dsn`` and hands it to env.py through
``config.attributes["connection"]``, so the same revisions run here, from the ``alembic``
command and from an installed wheel.
"""

from __future__ import annotations

import contextlib
import logging
import threading
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
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from pgsweep import db
from pgsweep.errors import PgsweepError
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


@dataclass(frozen=True)
class Blocker:
    """A session seen holding a lock the migration waited for (pg_blocking_pids)."""

    pid: int
    application_name: str
    state: str
    transaction_age_s: float | None  # how long its transaction has been open

    def describe(self) -> str:
        age = "" if self.transaction_age_s is None else f", transaction open {self.age()}"
        app = self.application_name or "(no application_name)"
        return f"pid {self.pid} ({app}, {self.state}{age})"

    def age(self) -> str:
        seconds = self.transaction_age_s or 0.0
        return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def upgrade(
    dsn: str,
    revision: str = "head",
    policy: LockPolicy = DEFAULT_LOCK_POLICY,
    blockers: list[Blocker] | None = None,
) -> None:
    """Upgrade to ``revision``; ``blockers`` (when given) receives the sessions last seen
    blocking the migration, for the error a lock timeout turns into."""
    _with_lock_retries(dsn, policy, lambda config: command.upgrade(config, revision), blockers)


def downgrade(
    dsn: str,
    revision: str,
    policy: LockPolicy = DEFAULT_LOCK_POLICY,
    blockers: list[Blocker] | None = None,
) -> None:
    _with_lock_retries(dsn, policy, lambda config: command.downgrade(config, revision), blockers)


def _with_lock_retries(
    dsn: str,
    policy: LockPolicy,
    run: Callable[[Config], None],
    blockers: list[Blocker] | None = None,
) -> None:
    def log_retry(state: RetryCallState) -> None:
        log.warning(
            "lock not granted within %d ms (attempt %d of %d); retrying in %.1f s",
            policy.lock_timeout_ms,
            state.attempt_number,
            policy.attempts,
            state.next_action.sleep if state.next_action else 0.0,
        )

    retrying = Retrying(
        retry=retry_if_exception(is_lock_timeout),
        stop=stop_after_attempt(policy.attempts),
        wait=lambda state: policy.pause(state.attempt_number),
        before_sleep=log_retry,
        reraise=True,  # the last lock error itself, not tenacity's RetryError
    )
    for attempt in retrying:
        with attempt, connect(dsn) as connection:
            # Session-level: the SQL files keep a caller's lock_timeout instead of theirs.
            connection.exec_driver_sql(f"SET lock_timeout = {int(policy.lock_timeout_ms)}")
            row = connection.exec_driver_sql("SELECT pg_backend_pid()").fetchone()
            connection.commit()
            with _watch_blockers(dsn, int(row[0]) if row else 0, policy, blockers):
                run(alembic_config(connection))


@contextmanager
def _watch_blockers(
    dsn: str, pid: int, policy: LockPolicy, seen: list[Blocker] | None
) -> Iterator[None]:
    """While the migration runs, note who blocks it: once its lock wait has timed out the
    evidence is gone (pg_blocking_pids is empty), so it is sampled during the wait, from a
    connection of its own, a few times per lock_timeout."""
    if seen is None:
        yield
        return
    stop = threading.Event()
    interval = min(max(policy.lock_timeout_ms / 4000, 0.02), 0.5)

    def sample() -> None:
        with contextlib.suppress(psycopg.Error, PgsweepError), db.connect(dsn) as conn:
            while not stop.wait(interval):
                rows = conn.execute(_BLOCKERS, (pid,)).fetchall()
                if rows:
                    seen[:] = [
                        Blocker(int(r[0]), str(r[1] or ""), str(r[2] or "?"), r[3])
                        for r in rows
                    ]

    watcher = threading.Thread(target=sample, name="pgsweep-lock-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=5)


_BLOCKERS = """
SELECT a.pid, a.application_name, a.state,
       extract(epoch FROM now() - a.xact_start)::float8
  FROM pg_stat_activity a
 WHERE a.pid = ANY (pg_blocking_pids(%s))
 ORDER BY a.xact_start
"""


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
