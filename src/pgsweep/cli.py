"""The ``pgsweep`` command: parses arguments, calls the library, prints the typed result.

Every command is a library function (deploy, verify, cleanup, status, cron, runner) returning a
dataclass; this module only turns arguments into a call and the result into human lines or,
with ``--json``, one JSON document (``pgsweep run --json``: one JSON object per line). Errors are
one line on stderr (``--json``: ``{"ok": false, "error": …, "exit_code": …}`` on stdout) with the
exit status of :mod:`pgsweep.errors`; a DSN is only ever printed redacted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import psycopg
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from pgsweep import __version__, cleanup, cron, db, deploy, engine, migrate, runner, status, verify
from pgsweep.errors import (
    EXIT_FAILED,
    EXIT_OK,
    PgsweepError,
    UnknownDatabaseRevision,
    UsageError,
)

Printer = Callable[[Any], None]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        help="libpq URL or keywords of the app's database"
        " (default: $DATABASE_URL, else the PG* variables)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgsweep",
        description="Install, verify, clean, schedule and watch the expiry engine of a"
        " PostgreSQL database (and migrate the reference app, Matcha Time).",
    )
    parser.add_argument("--version", action="version", version=f"pgsweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        return p

    for name, text in (
        ("upgrade", "apply revisions up to REV (default head)"),
        ("downgrade", "roll back to REV (a revision id, -1, or base)"),
    ):
        p = command(name, text)
        if name == "upgrade":
            p.add_argument("revision", nargs="?", default="head", metavar="REV")
        else:
            p.add_argument("revision", metavar="REV")
        p.add_argument(
            "--lock-timeout",
            type=int,
            default=migrate.DEFAULT_LOCK_POLICY.lock_timeout_ms,
            metavar="MS",
            help="wait at most MS ms for each lock (default %(default)s)",
        )
        p.add_argument(
            "--attempts",
            type=int,
            default=migrate.DEFAULT_LOCK_POLICY.attempts,
            help="tries when a lock is not granted (default %(default)s)",
        )
    command("install", "install the pgsweep engine (schema pgsweep), or upgrade it")
    p = command("uninstall", "remove the pgsweep engine (refuses while rules exist)")
    p.add_argument(
        "--force", action="store_true", help="remove it even though rules exist (they go too)"
    )
    command("current", "show the database's revision and the code's head")
    p = command("verify", "check the database against the code: pass/fail with evidence")
    p.add_argument(
        "--no-cron",
        action="store_true",
        help="do not check pg_cron (deployments that use `pgsweep run`)",
    )
    p.add_argument(
        "--job-name",
        default=None,
        metavar="NAME",
        help="the pg_cron job to check (default: the job that sweeps this database)",
    )
    p.add_argument(
        "--cron-dsn",
        help="connection to the cron database, when the app's credentials cannot read it",
    )
    p = command("cleanup", "delete the garbage of every rule, a short transaction per batch")
    p.add_argument("--dry-run", action="store_true", help="only count what it would delete")
    p.add_argument("--table", metavar="TABLE", help="only the rules of this table")
    p.add_argument(
        "--batch-size",
        type=int,
        default=runner.SWEEP_BATCH_SIZE,
        metavar="ROWS",
        help="rows per batch (default %(default)s)",
    )
    command("status", "per table under a rule: rows, active, garbage, ages, sizes")
    p = command("schedule", "register the sweep of every rule as a pg_cron job")
    p.add_argument(
        "--cron",
        default=cron.DEFAULT_SCHEDULE,
        metavar="EXPR",
        help="cron expression (default %(default)r, pg_cron runs in GMT)",
    )
    p.add_argument(
        "--database", metavar="NAME", help="database the job runs in (default: the DSN's database)"
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--command",
        dest="job_command",
        default=cron.SWEEP_COMMAND,
        metavar="SQL",
        help="the job's SQL (default %(default)r)",
    )
    what.add_argument(
        "--procedure",
        action="store_true",
        help=f"run {cron.SWEEP_COMMAND!r} (the default; kept for older scripts)",
    )
    p.add_argument(
        "--job-name",
        default=cron.DEFAULT_JOB,
        metavar="NAME",
        help="pg_cron job name (default %(default)s)",
    )
    p.add_argument(
        "--history-days",
        type=int,
        default=cron.DEFAULT_HISTORY_DAYS,
        help="keep cron.job_run_details this many days (0: no pruning job)",
    )
    p = command("unschedule", "remove the sweep's pg_cron job")
    p.add_argument("--database", metavar="NAME")
    p.add_argument(
        "--job-name",
        default=cron.DEFAULT_JOB,
        metavar="NAME",
        help="pg_cron job name (default %(default)s)",
    )
    p.add_argument(
        "--prune-job",
        action="store_true",
        help=f"also remove {cron.PRUNE_JOB} (it serves the whole cron database)",
    )
    p = command("run", "sweep every DURATION until SIGTERM/SIGINT (no pg_cron needed)")
    p.add_argument("--every", required=True, metavar="DURATION", help="e.g. 30s, 5m, 1h")
    p.add_argument("--batch-size", type=int, default=runner.SWEEP_BATCH_SIZE)
    p.add_argument("--max-runs", type=int, default=None, help="stop after N runs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dsn = db.resolve_dsn(args.dsn)
    try:
        return _dispatch(args, dsn)
    except PgsweepError as exc:
        return _fail(args, str(exc), exc.exit_code)
    except (psycopg.Error, SQLAlchemyError, CommandError, OSError) as exc:
        return _fail(args, f"{type(exc).__name__}: {db.one_line(str(exc))}", EXIT_FAILED)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    if args.json:
        _emit({"ok": False, "error": message, "exit_code": code})
    else:
        sys.stderr.write(f"pgsweep {args.command}: error: {message}\n")
    return code


def _emit(document: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(document, default=_json_default) + "\n")
    stream.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _dispatch(args: argparse.Namespace, dsn: str) -> int:
    handlers: dict[str, Callable[[argparse.Namespace, str], int]] = {
        "install": _install,
        "uninstall": _uninstall,
        "upgrade": _migrate,
        "downgrade": _migrate,
        "current": _current,
        "verify": _verify,
        "cleanup": _cleanup,
        "status": _status,
        "schedule": _schedule,
        "unschedule": _unschedule,
        "run": _run,
    }
    return handlers[args.command](args, dsn)


def _migrate(args: argparse.Namespace, dsn: str) -> int:
    policy = migrate.LockPolicy(lock_timeout_ms=args.lock_timeout, attempts=args.attempts)
    if policy.lock_timeout_ms < 1 or policy.attempts < 1:
        raise UsageError("--lock-timeout and --attempts must be positive")
    run = deploy.upgrade if args.command == "upgrade" else deploy.downgrade
    result = run(dsn, args.revision, policy)
    if args.json:
        _emit({"ok": True, "command": args.command, **dataclasses.asdict(result)})
        return EXIT_OK
    for notice in result.notices:
        print(f"  {notice}")
    before, after = result.before or "base", result.after or "base"
    moved = "unchanged at" if before == after else f"{before} ->"
    label = " (head)" if result.after == result.head else ""
    print(f"{db.describe(dsn)}: {moved} {after}{label}")
    return EXIT_OK


def _install(args: argparse.Namespace, dsn: str) -> int:
    result = engine.install(dsn)
    if args.json:
        _emit({"ok": True, "command": "install", **dataclasses.asdict(result)})
        return EXIT_OK
    for notice in result.notices:
        print(f"  {notice}")
    if result.changed:
        was = f"engine {result.before} ->" if result.before else "installed engine"
        print(f"{db.describe(dsn)}: {was} {result.after}")
    else:
        print(f"{db.describe(dsn)}: engine {result.after} already installed, nothing to do")
    return EXIT_OK


def _uninstall(args: argparse.Namespace, dsn: str) -> int:
    result = engine.uninstall(dsn, force=args.force)
    if args.json:
        _emit({"ok": True, "command": "uninstall", **dataclasses.asdict(result)})
        return EXIT_OK
    if result.version is None:
        print(f"{db.describe(dsn)}: no pgsweep engine installed, nothing to do")
    else:
        dropped = f" and its {result.rules_dropped} rules" if result.rules_dropped else ""
        print(f"{db.describe(dsn)}: removed engine {result.version}{dropped}")
    return EXIT_OK


def _current(args: argparse.Namespace, dsn: str) -> int:
    state = deploy.current(dsn)
    if args.json:
        _emit(dataclasses.asdict(state))
    else:
        text = {
            "head": f"{state.revision} (head)",
            "behind": f"{state.revision} (behind: the code's head is {state.head})",
            "empty": f"none (no revision applied; the code's head is {state.head})",
            "ahead": f"{state.revision} (unknown to this code, whose head is {state.head})",
        }[state.state]
        print(text)
    if state.state == "ahead":
        return UnknownDatabaseRevision.exit_code
    return EXIT_OK


def _verify(args: argparse.Namespace, dsn: str) -> int:
    report = verify.verify(
        dsn, check_cron=not args.no_cron, job_name=args.job_name, cron_dsn=args.cron_dsn
    )
    if args.json:
        _emit(
            {
                "ok": report.ok,
                "database": report.database,
                "checks": [
                    {"name": c.name, "status": c.status, "evidence": c.evidence}
                    for c in report.checks
                ],
            }
        )
    else:
        for check in report.checks:
            print(f"{check.status.upper():<5} {check.name}: {check.evidence}")
        failed = len(report.failures)
        verdict = "all checks pass" if report.ok else f"{failed} of {len(report.checks)} failed"
        print(f"verify {report.database}: {verdict}")
    return EXIT_OK if report.ok else EXIT_FAILED


def _cleanup(args: argparse.Namespace, dsn: str) -> int:
    if args.dry_run:
        result = cleanup.dry_run(dsn, table=args.table)
    else:
        result = cleanup.cleanup(
            dsn, table=args.table, batch_size=args.batch_size, on_batch=_batch_progress()
        )
    key = "would_delete" if result.dry_run else "deleted"
    if args.json:
        _emit(
            {
                "ok": True,
                "dry_run": result.dry_run,
                key: result.total,
                "tables": [
                    {
                        "table": t.table,
                        key: t.rows,
                        "rules": [{"column": r.column, key: r.rows} for r in t.rules],
                    }
                    for t in result.tables
                ],
                "skipped": [dataclasses.asdict(s) for s in result.skipped],
            }
        )
        return EXIT_OK
    verb = "would delete" if result.dry_run else "deleted"
    for table in result.tables:
        rules = ", ".join(f"{r.column} {r.rows}" for r in table.rules)
        print(f"{table.table:<28} {verb} {table.rows:>8}" + (f"   ({rules})" if rules else ""))
    print(f"{'total':<28} {verb} {result.total:>8}")
    _print_skipped(result.skipped)
    return EXIT_OK


def _batch_progress() -> Callable[[cleanup.Progress], None] | None:
    """A one-line progress report on a terminal's stderr (nothing when stderr is not one)."""
    if not sys.stderr.isatty():
        return None

    def report(p: cleanup.Progress) -> None:
        line = f"{p.table}.{p.column}: {p.rule_deleted} deleted ({p.total_deleted} in all)"
        sys.stderr.write(f"\r{line}\x1b[K")
        sys.stderr.flush()

    return report


def _print_skipped(skipped: list[runner.SkippedRule]) -> None:
    for rule in skipped:
        print(f"skipped rule {rule.table}.{rule.column}: {rule.problem}")


def _status(args: argparse.Namespace, dsn: str) -> int:
    report = status.status(dsn)
    if args.json:
        _emit(
            {
                "ok": True,
                "tables": [dataclasses.asdict(t) for t in report.tables],
                "skipped": [dataclasses.asdict(s) for s in report.skipped],
            }
        )
        return EXIT_OK
    for t in report.tables:
        print(
            f"{t.table}: {t.rows} rows, {t.active} active, {t.garbage} garbage"
            f" (not deleted yet); table {_size(t.table_bytes)}, indexes {_size(t.index_bytes)}"
        )
        for r in t.rules:
            ages = ""
            if r.rows:
                ages = (
                    f", oldest {verify.format_age(r.oldest_age_s or 0)} ago,"
                    f" newest {verify.format_age(r.newest_age_s or 0)} ago"
                )
            print(f"  {r.column:<22}{r.rows:>8}{ages}")
    if not report.tables and not report.skipped:
        print("no expiry rule registered (pgsweep.add_rule)")
    _print_skipped(report.skipped)
    return EXIT_OK


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.0f} {unit}"
        n //= 1024
    return f"{n} TB"


def _job_json(job: cron.Job | None) -> dict[str, Any] | None:
    return None if job is None else dataclasses.asdict(job)


def _schedule(args: argparse.Namespace, dsn: str) -> int:
    command = cron.SWEEP_COMMAND if args.procedure else args.job_command
    result = cron.schedule(
        dsn,
        cron=args.cron,
        database=args.database,
        command=command,
        job_name=args.job_name,
        history_days=args.history_days,
    )
    if args.json:
        _emit(
            {
                "ok": True,
                "cron_database": result.cron_database,
                "job": _job_json(result.job),
                "prune_job": _job_json(result.prune_job),
            }
        )
        return EXIT_OK
    for job in (result.job, result.prune_job):
        if job is not None:
            print(
                f"scheduled {job.name} (jobid {job.jobid}) in cron database"
                f" {result.cron_database!r}: '{job.schedule}' runs {job.command!r}"
                f" in {job.database!r}"
            )
    return EXIT_OK


def _unschedule(args: argparse.Namespace, dsn: str) -> int:
    result = cron.unschedule(
        dsn, database=args.database, job_name=args.job_name, prune_job=args.prune_job
    )
    if args.json:
        _emit(
            {
                "ok": True,
                "cron_database": result.cron_database,
                "removed": [_job_json(j) for j in result.removed],
            }
        )
        return EXIT_OK
    if not result.removed:
        print(f"no such job in cron database {result.cron_database!r}: nothing to remove")
    for job in result.removed:
        print(f"unscheduled {job.name} (jobid {job.jobid}) for {job.database!r}")
    return EXIT_OK


def _run(args: argparse.Namespace, dsn: str) -> int:
    every = runner.parse_duration(args.every)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        # Only record and wake the loop: printing here could re-enter a write in progress.
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        _log(
            args,
            {"event": "start", "every_s": every, "database": db.describe(dsn)},
            f"sweeping {db.describe(dsn)} every {args.every}",
        )
        runs = runner.run(
            dsn,
            every,
            stop=stop,
            on_run=lambda c: _log(args, _run_json(c), _run_text(c)),
            on_outage=lambda o: _log(
                args,
                {"event": "outage", "message": o.message, "retry_in_s": o.retry_in_s},
                f"database unavailable: {o.message}; retrying in {o.retry_in_s:.0f} s",
            ),
            batch_size=args.batch_size,
            max_runs=args.max_runs,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for name in received[:1]:
        _log(args, {"event": "signal", "signal": name}, f"{name} received")
    _log(args, {"event": "stopped", "runs": runs}, f"stopped after {runs} runs")
    return EXIT_OK


def _run_json(c: runner.RunCounts) -> dict[str, Any]:
    return {
        "event": "run",
        "run": c.number,
        "started_at": c.started_at.isoformat(),
        "seconds": round(c.seconds, 3),
        "deleted": c.deleted,
        "total": c.total,
        "skipped": [dataclasses.asdict(s) for s in c.skipped],
    }


def _run_text(c: runner.RunCounts) -> str:
    parts = ", ".join(f"{t} {n}" for t, n in c.deleted.items())
    text = f"run {c.number}: deleted {c.total} rows ({parts}) in {c.seconds:.2f} s"
    skipped = "; ".join(f"skipped rule {s.table}.{s.column}: {s.problem}" for s in c.skipped)
    return f"{text}; {skipped}" if skipped else text


def _log(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    if args.json:
        _emit(document)
    else:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sys.stdout.write(f"{now} {text}\n")
        sys.stdout.flush()
