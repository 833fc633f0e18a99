"""The engine on its own: its releases, building the newest from its sources, install, uninstall.

``engine/src/`` holds the current definition of every engine object, one file each (as
pg_partman keeps ``sql/functions/``). ``engine/releases/<version>/`` holds what a release runs,
each file runnable with ``psql -f``:

* ``install.sql``: installs that release into any database (or re-runs as a no-op). The newest
  release's is *generated* from ``engine/src`` by :func:`render_install` (``make engine``);
  ``tests/test_engine_release.py`` fails when the two disagree.
* ``upgrade.sql`` (from the release before it) and ``downgrade.sql`` (back to it), for every
  release after the first: hand-written deltas, as pg_partman's ``updates/``.
* ``uninstall.sql``: removes the engine; refuses while rules exist unless
  ``pgsweep.force_uninstall`` is on.
* ``install.embed.sql``, ``uninstall.embed.sql``: the same statements without psql's
  ``\\set`` and without BEGIN/COMMIT, for migration tools that run a file inside a transaction of
  their own (Flyway, sqlx, golang-migrate, Django's RunSQL); generated from the psql files by
  :func:`embed`.

A released file never changes: ``engine/releases/SHA256SUMS`` records them, and the tests fail
when one no longer matches. The engine records its own version in ``pgsweep.release``, apart
from any application's migration history.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from pgsweep import db
from pgsweep.errors import DatabaseBehind, PgsweepError, UnknownDatabaseRevision, UsageError
from pgsweep.paths import engine_dir
from pgsweep.sqlfile import load, without_psql_only

Connection = psycopg.Connection[tuple[Any, ...]]

# The order install.sql creates things in: a table before the routines whose signatures name
# its row type, routines before the view and the event trigger that call them, grants last.
SOURCE_ORDER = (
    "preflight.sql",
    "schema.sql",
    "retired.sql",
    "tables",
    "functions",
    "procedures",
    "views",
    "event_triggers",
    "grants.sql",
)
CHECKSUMS = "SHA256SUMS"
FORCE_UNINSTALL_SETTING = "pgsweep.force_uninstall"


class RulesExist(UsageError):
    """Uninstalling would silently stop the cleanup of tables that still have rules."""


@dataclass(frozen=True)
class InstallResult:
    before: str | None  # the release installed before (None: none)
    after: str
    notices: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class UninstallResult:
    version: str | None  # what was installed (None: nothing was)
    rules_dropped: int


# --- releases --------------------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def releases() -> list[str]:
    """Every engine release this code ships, oldest first."""
    found = [p.name for p in (engine_dir() / "releases").iterdir() if p.is_dir()]
    return sorted(found, key=_version_key)


def latest() -> str:
    """The newest engine release: the one ``pgsweep install`` installs."""
    return releases()[-1]


def release_file(version: str, name: str) -> Path:
    return engine_dir() / "releases" / version / name


def source_files() -> list[Path]:
    """Every file of ``engine/src``, in the order install.sql runs them."""
    root = engine_dir() / "src"
    files: list[Path] = []
    for entry in SOURCE_ORDER:
        path = root / entry
        files += sorted(path.glob("*.sql")) if path.is_dir() else [path]
    return files


def render_install(version: str) -> str:
    """install.sql for ``version``, built from ``engine/src``."""
    root = engine_dir() / "src"
    parts = [_INSTALL_HEADER.format(version=version, major_minor=_array_literal(version))]
    for path in source_files():
        parts.append(f"-- ---- {path.relative_to(root)} " + "-" * 40 + "\n")
        parts.append(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n")
    parts.append(_INSTALL_FOOTER.format(version=version))
    return "".join(parts)


def _array_literal(version: str) -> str:
    return "{" + ",".join(str(n) for n in _version_key(version)) + "}"


_INSTALL_HEADER = """\
-- pgsweep engine {version}: installs the expiry engine (schema pgsweep) into any PostgreSQL 15
-- database. Running it again changes nothing. (An engine an application's migrations embedded,
-- as Matcha Time's revisions 0006-0008 did, is upgraded by that application's chain, which runs
-- this file once its own objects are out of the schema: engine/src/preflight.sql.)
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/{version}/install.sql
-- GENERATED from engine/src by `make engine`: edit the sources, never this file. Once released
-- it never changes (engine/releases/SHA256SUMS); a change is a new release.
\\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF;
END $$;
-- Two installs at once (two deploy pods) take turns; the second finds the work done.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('pgsweep.install')); END $$;
-- An upgrade in place re-runs every CREATE ... IF NOT EXISTS, and each would say "already
-- exists, skipping": only warnings are shown until the end (the caller's level is put back there,
-- also when a migration tool runs this file inside a transaction of its own).
DO $$
BEGIN
    PERFORM set_config('pgsweep.install_client_min_messages',
                       current_setting('client_min_messages'), true);
    PERFORM set_config('client_min_messages', 'warning', true);
END $$;
-- Never step an engine back: a newer release is undone only by its own downgrade.sql.
DO $$
BEGIN
    IF to_regclass('pgsweep.release') IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pgsweep.release
                WHERE string_to_array(version, '.')::integer[] > '{major_minor}'::integer[]) THEN
        RAISE EXCEPTION 'a newer pgsweep engine than {version} is installed'
            USING HINT = 'Use the pgsweep that installed it, or its downgrade.sql.';
    END IF;
END $$;

"""

_INSTALL_FOOTER = """\
INSERT INTO pgsweep.release (version) VALUES ('{version}') ON CONFLICT (version) DO NOTHING;
DO $$
BEGIN
    PERFORM set_config('client_min_messages',
                       current_setting('pgsweep.install_client_min_messages'), true);
END $$;

COMMIT;
"""


EMBEDDED = {"install.sql": "install.embed.sql", "uninstall.sql": "uninstall.embed.sql"}
# The releases whose install.embed.sql and uninstall.embed.sql were sealed as the psql file
# without every line reading BEGIN;, COMMIT; or \set ON_ERROR_STOP on: that also dropped the
# procedure's own "    COMMIT;" lines between batches, so their pgsweep.sweep() runs as one
# transaction (docs/migration-tools.md). Sealed files never change; later releases keep the
# procedure's COMMITs (sqlfile.without_psql_only, as the extension scripts do).
_LINE_MATCHED_EMBEDS = frozenset({"1.0", "1.1", "1.2", "1.3"})
_PSQL_ONLY_LINES = ("\\set ON_ERROR_STOP on", "BEGIN;", "COMMIT;")


def embed(psql_text: str, version: str | None = None) -> str:
    """A release file for a migration tool that runs it in a transaction of its own: the psql
    file without its meta-command and its own top-level BEGIN/COMMIT (the statements are the
    same, the procedure's body included). ``version`` up to 1.3: as those releases were sealed."""
    header = (
        "-- For a migration tool that runs this file inside its own transaction (Flyway, sqlx,\n"
        "-- golang-migrate, Django RunSQL): GENERATED from the psql file of the same name.\n"
    )
    if version in _LINE_MATCHED_EMBEDS:
        kept = [line for line in psql_text.splitlines() if line.strip() not in _PSQL_ONLY_LINES]
    else:
        kept = without_psql_only(psql_text)
    return header + "\n".join(kept) + "\n"


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_checksums() -> dict[str, str]:
    """``engine/releases/SHA256SUMS``: relative path -> sha256 of every released file."""
    path = engine_dir() / "releases" / CHECKSUMS
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {name.strip(): digest for digest, name in pairs}


# --- the database ----------------------------------------------------------------------------


def installed_version(conn: Connection) -> str | None:
    """The engine release in the database, or None when there is no standalone engine."""
    row = conn.execute("SELECT to_regprocedure('pgsweep.version()') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute("SELECT pgsweep.version()").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def has_embedded_engine(conn: Connection) -> bool:
    """The engine Matcha Time's revisions 0006-0008 embedded: rules, but no release record."""
    row = conn.execute(
        "SELECT to_regclass('pgsweep.expiry_rule') IS NOT NULL"
        " AND to_regclass('pgsweep.release') IS NULL"
    ).fetchone()
    return bool(row and row[0])


def require_engine(conn: Connection, minimum: str | None = None) -> str:
    """The installed release; a DatabaseBehind error saying what to run when there is none, or
    when it is older than ``minimum`` (the first release with what the caller reads)."""
    version = installed_version(conn)
    if version is not None:
        if minimum is not None and _version_key(version) < _version_key(minimum):
            raise DatabaseBehind(
                f"this needs pgsweep engine {minimum} or newer; the database has {version}"
                " (run pgsweep upgrade)"
            )
        return version
    if has_embedded_engine(conn):
        raise DatabaseBehind(
            "this database has the engine Matcha Time's revisions 0006-0008 embedded:"
            " upgrade it with the app's chain (matcha-time upgrade, or alembic upgrade head)"
        )
    raise DatabaseBehind("the pgsweep engine is not installed here (run pgsweep install)")


def install(dsn: str) -> InstallResult:
    """Install the newest engine release, or upgrade an older one release by release."""
    target = latest()
    with db.connect(dsn) as conn:
        before = installed_version(conn)
        if before is None and has_embedded_engine(conn):
            require_engine(conn)  # raises: the app's chain owns this engine's upgrade
        if before is not None and before not in releases():
            raise UnknownDatabaseRevision(
                f"the database has pgsweep engine {before}, which this pgsweep does not know"
                f" (its newest is {target}): use the pgsweep that installed it"
            )
        if before is not None and _version_key(before) > _version_key(target):
            raise UnknownDatabaseRevision(
                f"the database has pgsweep engine {before}, newer than this pgsweep's {target}"
            )
        with _notices(conn) as notices:
            for path in _install_path(before):
                _run_file(conn, path)
        after = installed_version(conn)
    assert after is not None
    return InstallResult(before, after, notices)


@dataclass(frozen=True)
class EngineState:
    """The engine in a database against this code's releases (``pgsweep current``)."""

    version: str | None  # None: no standalone engine installed
    newest: str
    state: str  # "newest", "behind", "none", "embedded" (the app's 0006-0008) or "ahead"


def state_of(dsn: str) -> EngineState:
    with db.connect(dsn) as conn:
        version = installed_version(conn)
        embedded = version is None and has_embedded_engine(conn)
    newest = latest()
    if version is None:
        return EngineState(None, newest, "embedded" if embedded else "none")
    if version == newest:
        return EngineState(version, newest, "newest")
    if version in releases() and _version_key(version) < _version_key(newest):
        return EngineState(version, newest, "behind")
    return EngineState(version, newest, "ahead")


def upgrade(dsn: str) -> InstallResult:
    """Upgrade an installed engine to the newest release, release by release (each release's
    upgrade.sql); a DatabaseBehind error when there is none to upgrade (run ``pgsweep
    install``). Nothing but the engine's own schema changes."""
    with db.connect(dsn) as conn:
        require_engine(conn)
    return install(dsn)


def downgrade(
    dsn: str, target: str | None = None, *, confirm: Callable[[str, str], None] | None = None
) -> InstallResult:
    """Step the engine back to ``target`` (default: the release before the installed one),
    newest release first, each with its own downgrade.sql. ``confirm(before, target)`` runs
    before anything changes and raises to stop it."""
    with db.connect(dsn) as conn:
        before = require_engine(conn)
        if before not in releases():
            raise UnknownDatabaseRevision(
                f"the database has pgsweep engine {before}, which this pgsweep does not know"
            )
        older = [v for v in releases() if _version_key(v) < _version_key(before)]
        if target is None:
            if not older:
                raise UsageError(f"engine {before} is the first release: nothing to step back to")
            target = older[-1]
        if target == before:
            return InstallResult(before, before)
        if target not in older:
            known = ", ".join(older) or "none"
            raise UsageError(
                f"cannot downgrade engine {before} to {target!r}: not an older release"
                f" (older releases: {known})"
            )
        if confirm is not None:
            confirm(before, target)
        steps = [v for v in releases() if _version_key(target) < _version_key(v)]
        steps = [v for v in steps if _version_key(v) <= _version_key(before)]
        with _notices(conn) as notices:
            for version in reversed(steps):
                _run_file(conn, release_file(version, "downgrade.sql"))
        after = installed_version(conn)
    assert after is not None
    return InstallResult(before, after, notices)


def _install_path(before: str | None) -> list[Path]:
    """The files that take the database from ``before`` to the newest release."""
    if before is None:
        return [release_file(latest(), "install.sql")]
    later = [v for v in releases() if _version_key(v) > _version_key(before)]
    return [release_file(v, "upgrade.sql") for v in later]


def uninstall(
    dsn: str, *, force: bool = False, confirm: Callable[[str, int], None] | None = None
) -> UninstallResult:
    """Remove the engine; refuse while rules exist unless ``force``. ``confirm(version, rules)``
    is called once the removal is known to be allowed and before anything changes: it raises
    to stop it (the command line asks for consent there)."""
    with db.connect(dsn) as conn:
        version = installed_version(conn)
        if version is None:
            if has_embedded_engine(conn):
                require_engine(conn)
            return UninstallResult(None, 0)
        row = conn.execute("SELECT count(*) FROM pgsweep.expiry_rule").fetchone()
        rules = int(row[0]) if row else 0
        if rules and not force:
            raise RulesExist(
                f"{rules} expiry rule{'s' if rules != 1 else ''} still registered: their tables"
                " would no longer be cleaned. Remove them (pgsweep.remove_rule) or pass --force"
            )
        if confirm is not None:
            confirm(version, rules)
        conn.execute("SELECT set_config(%s, %s, false)", (FORCE_UNINSTALL_SETTING, "on"))
        _run_file(conn, release_file(version, "uninstall.sql"))
    return UninstallResult(version, rules)


def _run_file(conn: Connection, path: Path) -> None:
    """Run a release file as psql runs it: its BEGIN/COMMIT blocks as transactions."""
    for segment in load(path):
        if segment.in_transaction:
            with conn.transaction():
                for statement in segment.statements:
                    conn.execute(statement.sql)
        else:
            for statement in segment.statements:
                conn.execute(statement.sql)


@contextmanager
def _notices(conn: Connection) -> Iterator[list[str]]:
    messages: list[str] = []

    def collect(diagnostic: psycopg.errors.Diagnostic) -> None:
        messages.append(f"{diagnostic.severity}: {diagnostic.message_primary}")

    conn.add_notice_handler(collect)
    try:
        yield messages
    except psycopg.errors.LockNotAvailable as exc:
        raise PgsweepError(f"a lock was not granted: {db.one_line(str(exc))}") from None
    finally:
        conn.remove_notice_handler(collect)


# --- make engine -----------------------------------------------------------------------------


def released_files() -> list[Path]:
    """Every file under ``engine/releases`` but the checksum list itself."""
    root = engine_dir() / "releases"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def seal() -> list[str]:
    """Record the checksum of every release file not recorded yet (cutting a release)."""
    root = engine_dir() / "releases"
    recorded = recorded_checksums()
    names = [str(p.relative_to(root)) for p in released_files()]
    added = [name for name in names if name not in recorded]
    lines = [f"{checksum(root / name)}  {name}" for name in added]
    if lines:
        with (root / CHECKSUMS).open("a", encoding="utf-8") as sums:
            sums.write("\n".join(lines) + "\n")
    return added


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pgsweep.engine",
        description="Write (or --check) the newest release's install.sql from engine/src;"
        " --seal records the checksums of a release's files when it is cut.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 when it is not current")
    action.add_argument("--seal", action="store_true", help="record unrecorded release files")
    args = parser.parse_args(argv)
    if args.seal:
        for name in seal():
            out(f"sealed {name}")
        return 0
    version = latest()
    install = render_install(version)
    uninstall = release_file(version, "uninstall.sql").read_text(encoding="utf-8")
    wanted = {
        release_file(version, "install.sql"): install,
        release_file(version, EMBEDDED["install.sql"]): embed(install, version),
        release_file(version, EMBEDDED["uninstall.sql"]): embed(uninstall, version),
    }
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text("utf-8") != text]
    if args.check:
        for path in stale:
            out(f"{path}: out of date (run make engine)")
        return 1 if stale else 0
    sealed = recorded_checksums()
    for path in stale:
        if str(path.relative_to(engine_dir() / "releases")) in sealed:
            out(
                f"refusing to rewrite {path}: release {version} is sealed (SHA256SUMS)."
                " Add a new release directory for the change."
            )
            return 1
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        out(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
