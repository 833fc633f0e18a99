"""``matcha-time upgrade``, ``downgrade``, ``current``: the reference app's chain, with
operator errors.

:mod:`pgsweep.migrate` runs the chain (short lock_timeout, bounded retries); this module checks
what can be checked before anything runs (is the target a revision this code ships, is the
database at a revision this code knows) and turns every failure into a one-line
:class:`~pgsweep.errors.PgsweepError` with its own exit status. It also collects the NOTICEs the
SQL files raise (0007 says here why it scheduled nothing).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from pgsweep import db, engine, migrate
from pgsweep.errors import (
    DatabaseBehind,
    Interrupted,
    LockNotGranted,
    PgsweepError,
    UnknownDatabaseRevision,
    UsageError,
)

State = Literal["head", "behind", "ahead", "empty"]
_RELATIVE = re.compile(r"^[+-]\d+$")


@dataclass(frozen=True)
class RevisionState:
    """Where a database stands relative to the code: ``ahead`` means "a revision unknown here"."""

    revision: str | None
    head: str
    state: State


@dataclass(frozen=True)
class MigrationResult:
    before: str | None
    after: str | None
    head: str
    notices: list[str] = field(default_factory=list)


def state_of(revision: str | None) -> RevisionState:
    head = migrate.head()
    if revision is None:
        return RevisionState(None, head, "empty")
    if revision == head:
        return RevisionState(revision, head, "head")
    if revision in migrate.revisions():
        return RevisionState(revision, head, "behind")
    return RevisionState(revision, head, "ahead")


def recorded_revision(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    """The revision in alembic_version (read on a psycopg connection), or None."""
    row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return None
    version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if version is None else str(version[0])


def require_engine(
    conn: psycopg.Connection[tuple[object, ...]], minimum: str | None = None
) -> str:
    """The engine release installed; a DatabaseBehind error saying what to run when there is
    none: ``matcha-time upgrade`` in a database of the reference app's chain (which installs the
    engine since 0009), ``pgsweep install`` anywhere else."""
    try:
        return engine.require_engine(conn, minimum)
    except DatabaseBehind:
        at = recorded_revision(conn)
        if at is None or at not in migrate.revisions():
            raise
        if engine.installed_version(conn) is not None:  # older than minimum: the app's chain
            raise DatabaseBehind(
                f"this needs pgsweep engine {minimum} or newer; the database is at the app's"
                f" revision {at}, whose engine is older (run matcha-time upgrade)"
            ) from None
        raise DatabaseBehind(
            f"the pgsweep engine is missing: the database is at {at}, this needs"
            f" {migrate.head()} (run matcha-time upgrade)"
        ) from None


def current(dsn: str) -> RevisionState:
    with db.connect(dsn) as conn:
        return state_of(recorded_revision(conn))


def known_state(dsn: str) -> RevisionState:
    """The database's state; an error when it is at a revision this code does not know."""
    state = current(dsn)
    if state.state == "ahead":
        raise UnknownDatabaseRevision(
            f"the database is at revision {state.revision}, which this pgsweep does not know"
            f" (its newest is {state.head}): the database is ahead of this code,"
            " use the pgsweep that upgraded it"
        )
    return state


def check_target(target: str) -> None:
    """A usage error unless ``target`` names a revision (or head/base/+N/-N) of this chain."""
    if target in ("head", "heads", "base") or _RELATIVE.match(target):
        return
    script = ScriptDirectory.from_config(migrate.alembic_config())
    try:
        found = script.get_revision(target)
    except CommandError:
        found = None
    if found is None:
        known = ", ".join(migrate.revisions())
        raise UsageError(f"unknown revision {target!r} (this pgsweep ships {known}, head, base)")


@dataclass(frozen=True)
class DowngradeStep:
    """One revision a downgrade takes back: its down script and what that destroys."""

    revision: str
    down_sql: str  # relative to the folder holding migrations/, e.g. rollback/0005_…_down.sql
    destroys: str | None  # the revision's DESTROYS_DATA: None when it destroys nothing


@dataclass(frozen=True)
class DowngradePlan:
    before: str | None
    target: str | None  # None: base
    steps: list[DowngradeStep]  # in the order they run, newest first

    @property
    def destroying(self) -> list[DowngradeStep]:
        return [step for step in self.steps if step.destroys]


def downgrade_plan(dsn: str, target: str) -> DowngradePlan:
    """The revisions ``matcha-time downgrade target`` would take back from where the database is,
    each with what its down script destroys (the revision module's ``DESTROYS_DATA``).

    A declared marker rather than a scan of the down SQL: a scan cannot tell a dropped app
    table from a revision's own bookkeeping (0007 drops the record of the jobs it created), nor
    see a DROP inside dynamic SQL; tests/test_consent.py checks that every down script that
    drops a table or a column is marked or named there with the reason it is not."""
    check_target(target)
    before = known_state(dsn)
    chain = migrate.revisions()
    script = ScriptDirectory.from_config(migrate.alembic_config())
    at = chain.index(before.revision) if before.revision else -1
    if target == "base":
        to = -1
    elif target in ("head", "heads"):
        to = len(chain) - 1
    elif _RELATIVE.match(target):
        to = max(at + int(target), -1)
    else:
        found = script.get_revision(target)
        assert found is not None  # check_target passed
        to = chain.index(found.revision)
    steps = []
    for revision in reversed(chain[to + 1 : at + 1]):
        found = script.get_revision(revision)
        assert found is not None
        module = found.module
        steps.append(
            DowngradeStep(
                revision,
                str(getattr(module, "DOWN_SQL", "")),
                getattr(module, "DESTROYS_DATA", None),
            )
        )
    return DowngradePlan(before.revision, chain[to] if to >= 0 else None, steps)


def offline_sql(verb: Literal["upgrade", "downgrade"], revisions: str) -> str:
    """The SQL ``matcha-time upgrade|downgrade REV --sql`` prints: Alembic's offline mode, which
    never connects. ``revisions`` is ``FROM:TO``, or ``TO`` alone: from base for an upgrade,
    from the code's head for a downgrade (the database is not asked where it stands)."""
    parts = revisions.split(":")
    if len(parts) > 2 or not all(parts):
        raise UsageError(f"not a revision or a range FROM:TO: {revisions!r}")
    for part in parts:
        check_target(part)
    if len(parts) == 1 and verb == "downgrade":
        revisions = f"{migrate.head()}:{revisions}"
    buffer = io.StringIO()
    config = migrate.alembic_config()
    config.output_buffer = buffer
    try:
        run = command.upgrade if verb == "upgrade" else command.downgrade
        run(config, revisions, sql=True)
    except CommandError as exc:
        raise UsageError(db.one_line(str(exc))) from None
    return buffer.getvalue()


def upgrade(
    dsn: str, target: str = "head", policy: migrate.LockPolicy = migrate.DEFAULT_LOCK_POLICY
) -> MigrationResult:
    check_target(target)
    before = known_state(dsn)
    blockers: list[migrate.Blocker] = []
    with _failures_as_errors(dsn, policy, before, blockers), _notices() as notices:
        migrate.upgrade(dsn, target, policy, blockers)
    return MigrationResult(before.revision, current(dsn).revision, before.head, notices)


def downgrade(
    dsn: str, target: str, policy: migrate.LockPolicy = migrate.DEFAULT_LOCK_POLICY
) -> MigrationResult:
    check_target(target)
    before = known_state(dsn)
    blockers: list[migrate.Blocker] = []
    with _failures_as_errors(dsn, policy, before, blockers), _notices() as notices:
        migrate.downgrade(dsn, target, policy, blockers)
    return MigrationResult(before.revision, current(dsn).revision, before.head, notices)


def _where_it_stands(dsn: str, before: RevisionState) -> str:
    """Where the database stands now, read after a failure: each revision commits on
    its own, so a stopped run may have moved part of the way."""
    try:
        now = current(dsn).revision
    except PgsweepError:
        return "the revision it reached could not be read (the server is not answering)"
    was = before.revision or "base"
    moved = f"it was at {was}" if now != before.revision else "unchanged"
    return f"the database is at {now or 'base'} ({moved})"


@contextmanager
def _failures_as_errors(
    dsn: str,
    policy: migrate.LockPolicy,
    before: RevisionState,
    blockers: list[migrate.Blocker],
) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        # The revision in flight ran in its own transaction, which ended with its connection
        # (rolled back); the ones before it are committed. Say where that leaves the database.
        raise Interrupted(
            f"interrupted; {_where_it_stands(dsn, before)}. Revisions finished before the"
            " interruption stay applied, the one in progress was rolled back (an index build"
            " stopped half-way is left INVALID and rebuilt by the next upgrade)"
        ) from None
    except CommandError as exc:
        raise UsageError(db.one_line(str(exc))) from None
    except (DBAPIError, psycopg.Error) as exc:
        if migrate.is_lock_timeout(exc):
            who = (
                "blocked by " + "; ".join(b.describe() for b in blockers)
                if blockers
                else "the session holding the lock is unknown (it was not seen waiting)"
            )
            raise LockNotGranted(
                f"a lock was not granted within {policy.lock_timeout_ms} ms in"
                f" {policy.attempts} attempts; {_where_it_stands(dsn, before)}; {who}:"
                " retry later, or raise --lock-timeout / --attempts"
            ) from None
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(orig, psycopg.OperationalError) and getattr(orig, "sqlstate", None) is None:
            raise db.connection_error(orig, dsn) from None
        raise PgsweepError(f"the migration failed: {db.one_line(str(orig))}") from None
    except SQLAlchemyError as exc:
        raise PgsweepError(f"the migration failed: {db.one_line(str(exc))}") from None


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # Once each: a later revision that re-runs a statement says nothing new.
        if message.startswith(("NOTICE:", "WARNING:")) and message not in self.messages:
            self.messages.append(message)


@contextmanager
def _notices() -> Iterator[list[str]]:
    """NOTICEs and WARNINGs the SQL files raise (env.py logs them to ``pgsweep.sql``)."""
    logger = logging.getLogger("pgsweep.sql")
    handler = _Collect()
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
