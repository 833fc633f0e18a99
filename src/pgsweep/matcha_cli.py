"""``matcha-time``: the reference app's migration chain (Alembic over ``migrations/``), as the
app's users run it: ``matcha-time upgrade``, ``downgrade`` and ``current``.

Matcha Time is the reference app of the pgsweep engine; this command builds, moves and reports
its schema (the same chain ``alembic upgrade head`` runs), with the operator errors, lock
retries and consent of :mod:`pgsweep.deploy`. It is not the engine's tool: ``pgsweep`` never
touches an app's schema. On a database that is not the app's (tables of its own and no
revision of this chain) ``upgrade`` asks first, or refuses off a terminal without ``--yes``.
The parsing, output and errors are :mod:`pgsweep.cli`'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pgsweep.cli import Command, Context, Program, positive_int, run
from pgsweep.errors import EXIT_OK, UnknownDatabaseRevision
from pgsweep.output import Activity, Column

if TYPE_CHECKING:
    from pgsweep import consent, db, deploy, matcha, migrate
else:
    from pgsweep.cli import _Lazy

    consent, db, deploy = _Lazy("pgsweep.consent"), _Lazy("pgsweep.db"), _Lazy("pgsweep.deploy")
    matcha, migrate = _Lazy("pgsweep.matcha"), _Lazy("pgsweep.migrate")


def _require_the_apps_database(ctx: Context) -> None:
    """Consent before the chain builds the app's schema beside another app's tables."""
    if ctx.args.sql:
        return
    with db.connect(ctx.dsn) as conn:
        tables = matcha.foreign_tables(conn)
    if not tables:
        return
    more = len(tables) - 3
    shown = ", ".join(tables[:3]) + (f" and {more} more" if more > 0 else "")
    consent.confirm(
        f"{db.describe(ctx.dsn)} is not a Matcha Time database: it has tables of its own"
        f" ({shown}) and no revision of the app's chain, and this would create the app's"
        " tables there (to upgrade the pgsweep engine, run pgsweep upgrade)",
        yes=ctx.args.yes,
    )


def _lock_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lock-timeout",
        type=positive_int,
        default=migrate.DEFAULT_LOCK_POLICY.lock_timeout_ms,
        metavar="MS",
        help="wait at most MS ms for each lock (default %(default)s)",
    )
    p.add_argument(
        "--attempts",
        type=positive_int,
        default=migrate.DEFAULT_LOCK_POLICY.attempts,
        metavar="N",
        help="tries when a lock is not granted, with a growing pause (default %(default)s)",
    )


def _upgrade_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "revision",
        nargs="?",
        default="head",
        metavar="REV",
        help="target revision: an id such as 0006, +1, or head (default)",
    )
    _lock_options(p)
    _sql_option(p, "base")
    p.add_argument(
        "--yes",
        action="store_true",
        help="consent to building the app's schema in a database that is not the app's (one"
        " with tables of its own and no revision of this chain; asked for on a terminal,"
        " refused without it elsewhere)",
    )


def _downgrade_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "revision",
        metavar="REV",
        help="target revision: an id such as 0005, -1 (one step back), or base (everything)",
    )
    _lock_options(p)
    _sql_option(p, "head")
    p.add_argument(
        "--yes",
        action="store_true",
        help="consent to a downgrade that destroys data (asked for on a terminal,"
        " refused without it elsewhere)",
    )


def _sql_option(p: argparse.ArgumentParser, start: str) -> None:
    p.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL that would run and change nothing (no connection is made);"
        f" REV may be a range FROM:TO (default: from {start})",
    )



def _migrate(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    policy = migrate.LockPolicy(lock_timeout_ms=args.lock_timeout, attempts=args.attempts)
    if args.sql:
        text = deploy.offline_sql(args.command, args.revision)
        if out.json:
            out.result({"command": args.command, "sql": text})
        else:
            out.line(text.rstrip("\n"))
        return EXIT_OK
    if args.command == "downgrade":
        consent.require(deploy.downgrade_plan(ctx.dsn, args.revision), yes=args.yes)
    else:
        _require_the_apps_database(ctx)
    step = deploy.upgrade if args.command == "upgrade" else deploy.downgrade
    with out.busy(f"{args.command} to {args.revision}…") as activity, _sql_files(activity):
        result = step(ctx.dsn, args.revision, policy)
    if out.json:
        out.result({"command": args.command, **dataclasses.asdict(result)})
        return EXIT_OK
    for notice in result.notices:
        out.line(f"  {notice}", style="dim")
    before, after = result.before or "base", result.after or "base"
    moved = "unchanged at" if before == after else f"{before} ->"
    label = " (head)" if result.after == result.head else ""
    out.line(f"{db.describe(ctx.dsn)}: {moved} {after}{label}", style="bold")
    return EXIT_OK


@contextmanager
def _sql_files(activity: Activity) -> Iterator[None]:
    """Show each SQL file as the migration starts it: the revision files log "running
    NNNN_slug.sql" to ``pgsweep.sql`` (the logging call is the library's progress callback)."""

    class Show(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("running "):
                activity.show(message + "…")

    logger = logging.getLogger("pgsweep.sql")
    handler = Show(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


_CURRENT_TEXT = {
    "head": "{revision} (head)",
    "behind": "{revision} (behind: the code's head is {head})",
    "empty": "none (no revision applied; the code's head is {head})",
    "ahead": "{revision} (unknown to this code, whose head is {head})",
}
_CURRENT_STYLE = {"head": "green", "behind": "yellow", "empty": "yellow", "ahead": "bold red"}


def _current(ctx: Context) -> int:
    state = deploy.current(ctx.dsn)
    out = ctx.out
    if out.json:
        out.result({**dataclasses.asdict(state), "ok": state.state != "ahead"})
    else:
        text = _CURRENT_TEXT[state.state].format(revision=state.revision, head=state.head)
        out.table(
            [Column("database"), Column("revision"), Column("code's head"), Column("state")],
            [[db.describe(ctx.dsn), state.revision or "none", state.head, state.state]],
            plain=[text],
            styles=[_CURRENT_STYLE[state.state]],
        )
    if state.state == "ahead":
        return UnknownDatabaseRevision.exit_code
    return EXIT_OK


MATCHA_TIME = Program(
    "matcha-time",
    "Matcha Time, the pgsweep engine's reference app: build, move and report its schema\n"
    "with its Alembic chain (migrations/, sql/, rollback/). The engine's tool is pgsweep.",
    ("matcha-time upgrade --dsn postgresql://admin@db/matcha", "matcha-time current --json"),
    [
        Command(
            "upgrade",
            "apply the app's revisions up to REV (default head)",
            _upgrade_options,
            _migrate,
            ("matcha-time upgrade", "matcha-time upgrade 0006 --lock-timeout 500 --attempts 10"),
        ),
        Command(
            "downgrade",
            "roll the app's chain back to REV (a revision id, -1, or base)",
            _downgrade_options,
            _migrate,
            ("matcha-time downgrade -1", "matcha-time downgrade 0005 --json"),
        ),
        Command(
            "current",
            "show the database's revision of the app's chain and the code's head",
            lambda _p: None,
            _current,
            ("matcha-time current", "matcha-time current --json --dsn postgresql://app@db/matcha"),
        ),
    ],
)


def main(argv: Sequence[str] | None = None) -> int:
    return run(MATCHA_TIME, argv)


if __name__ == "__main__":
    sys.exit(main())
