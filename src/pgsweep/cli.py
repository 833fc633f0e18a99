"""The ``pgsweep`` command: the expiry engine's tool for any app's PostgreSQL tables.

It installs, upgrades and removes the engine, manages rules, cleans, reports and schedules;
it never creates or changes an app's schema (the reference app's chain has its own command,
``matcha-time``: :mod:`pgsweep.matcha_cli`, which reuses this module's machinery).

Every command is a library function (deploy, verify, cleanup, status, cron, runner) returning a
dataclass; this module only turns arguments into a call and the result into rows for
:mod:`pgsweep.output`, which prints them as JSON (``--json``), plain lines (a pipe) or rich
tables (a terminal). A command is one entry in :data:`COMMANDS`: a function that adds its
options and a handler that takes a :class:`Context` and returns the exit status.

Everything the command line says is validated by argparse before anything is printed or any
connection is opened (option types reject a zero batch size, a duration too long to wait, an
empty job name). Errors are one line on stderr (``--json``: ``{"ok": false, "error": …,
"exit_code": …}`` on stdout, argparse's own errors included) with the exit status of
:mod:`pgsweep.errors`; a DSN is only ever printed redacted. Ctrl-C is "interrupted", exit 130;
a reader that goes away (``| head``) ends the output quietly.

Start-up stays fast (``pgsweep --version``, ``pgsweep status --help``): the library modules,
psycopg, Alembic and SQLAlchemy are imported when a handler first uses them, and only the
options of the command being run are built (:func:`_build`'s ``only``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from pgsweep import __version__
from pgsweep import config as settings
from pgsweep.errors import (
    EXIT_AUTHENTICATION,
    EXIT_BEHIND,
    EXIT_CANNOT_CONNECT,
    EXIT_CRON_UNAVAILABLE,
    EXIT_FAILED,
    EXIT_LOCK_TIMEOUT,
    EXIT_OK,
    EXIT_UNKNOWN_REVISION,
    EXIT_USAGE,
    PgsweepError,
    UsageError,
)
from pgsweep.output import (
    STATUS_STYLE,
    Column,
    Output,
    format_bytes,
    iso_now,
    plural,
)


class _Lazy:
    """A module imported on its first attribute access (the type checker sees the module)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


if TYPE_CHECKING:
    import psycopg
    import shtab

    from pgsweep import (
        cleanup,
        consent,
        cron,
        db,
        engine,
        health,
        matcha,
        metrics,
        partitions,
        policy,
        runner,
        status,
        verify,
    )
else:
    psycopg, shtab = _Lazy("psycopg"), _Lazy("shtab")
    cleanup, consent = _Lazy("pgsweep.cleanup"), _Lazy("pgsweep.consent")
    cron = _Lazy("pgsweep.cron")
    db, engine, health = _Lazy("pgsweep.db"), _Lazy("pgsweep.engine"), _Lazy("pgsweep.health")
    matcha, metrics = _Lazy("pgsweep.matcha"), _Lazy("pgsweep.metrics")
    policy, runner = _Lazy("pgsweep.policy"), _Lazy("pgsweep.runner")
    partitions = _Lazy("pgsweep.partitions")
    status, verify = _Lazy("pgsweep.status"), _Lazy("pgsweep.verify")

EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention for Ctrl-C

EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_FAILED, "the command found a problem (verify is red) or the database raised an error"),
    (EXIT_USAGE, "usage: bad option or value, unknown revision, invalid cron expression"),
    (EXIT_CANNOT_CONNECT, "cannot connect (server unreachable, database missing)"),
    (EXIT_AUTHENTICATION, "authentication failed"),
    (EXIT_BEHIND, "the engine is missing or too old: pgsweep install, pgsweep upgrade"),
    (EXIT_UNKNOWN_REVISION, "the database is at a revision this code does not know"),
    (EXIT_LOCK_TIMEOUT, "a lock was not granted after every attempt"),
    (EXIT_CRON_UNAVAILABLE, "pg_cron is not usable for the requested scheduling"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)

ENVIRONMENT_HELP = (
    ("PGSWEEP_DSN", "connection (after --dsn, before DATABASE_URL)"),
    ("DATABASE_URL", "connection (after PGSWEEP_DSN, before the config file)"),
    ("PGHOST, PGPORT…", "libpq's PG* variables, when nothing else is given"),
    ("PGSWEEP_JSON", "1/true: as --json"),
    ("PGSWEEP_BATCH_SIZE", "as --batch-size (cleanup, run)"),
    ("PGSWEEP_LOCK_TIMEOUT", "as --lock-timeout (matcha-time upgrade, downgrade)"),
    ("PGSWEEP_ATTEMPTS", "as --attempts (matcha-time upgrade, downgrade)"),
    ("PGSWEEP_CRON_DSN", "as --cron-dsn (verify, schedule, unschedule)"),
    ("PGSWEEP_JOB_NAME", "as --job-name (verify, schedule, unschedule)"),
    ("PGSWEEP_CONFIG", "config file (default ./pgsweep.toml when present)"),
    ("NO_COLOR", "no colour on a terminal"),
)


@dataclass
class Context:
    """What a command handler gets: its arguments, the connection string, the printer."""

    args: argparse.Namespace
    dsn: str
    out: Output
    parser: argparse.ArgumentParser


Handler = Callable[[Context], int]


class CommandLineError(UsageError):
    """argparse's complaint about the command line, with the parser that made it."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandLineError(message, self)


# --- argument types: reject bad values while parsing, before any output ------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def duration(text: str) -> str:
    try:
        runner.parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def seconds(text: str) -> float:
    """A duration (``90s``, ``5m``, ``1h``, ``7d``) as seconds."""
    try:
        return runner.parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def ratio(text: str) -> float:
    """A share from 0 to 1 (``0.2``) or a percentage (``20%``)."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a ratio: {text!r} (e.g. 0.2 or 20%)") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (or 0% and 100%), not {text!r}")
    return value


def factor(text: str) -> float:
    """A multiple greater than 1 (``4``, ``2.5``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"must be more than 1, not {text!r}")
    return value


_SIZE_UNITS = {"": 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def size(text: str) -> int:
    """A size in bytes, or with PostgreSQL's 1024-based units: ``512MB``, ``1GB``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?[bB])?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1GB, 512MB, 1048576)")
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").upper()])


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {text!r}")
    return value


def job_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the job name must not be empty")
    return text


def cron_expression(text: str) -> str:
    try:
        cron.check_cron_expression(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def sql_text(text: str) -> str:
    if not text.strip().rstrip(";").strip():
        raise argparse.ArgumentTypeError("the job's SQL must not be empty")
    return text


# --- the parser ------------------------------------------------------------------------------


def _epilog(examples: Sequence[str]) -> str:
    lines = ["examples:", *(f"  {e}" for e in examples), "", "environment:"]
    lines += [f"  {name:<22} {text}" for name, text in ENVIRONMENT_HELP]
    lines += ["", "precedence: command line > environment > config file > defaults", ""]
    lines += ["exit status:", *(f"  {code:<3} {text}" for code, text in EXIT_CODES)]
    return "\n".join(lines)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        help="libpq URL or keywords of the app's database (default: $PGSWEEP_DSN, else"
        " $DATABASE_URL, else the config file's dsn, else the PG* variables)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout (errors too); default $PGSWEEP_JSON",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of option defaults (default: $PGSWEEP_CONFIG, else ./pgsweep.toml"
        " unless it is a policy file)",
    )


def _job_name_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--job-name",
        type=job_name,
        default=cron.DEFAULT_JOB,
        metavar="NAME",
        help="pg_cron job name (default %(default)s)",
    )


def _cron_dsn_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cron-dsn",
        metavar="DSN",
        help="connection to the cron database, when the app's credentials cannot use it"
        " (default: the DSN's credentials pointed at cron.database_name)",
    )


def _engine_downgrade_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "release",
        nargs="?",
        default=None,
        metavar="RELEASE",
        help="the engine release to step back to (default: the one before the installed one)",
    )
    _yes_option(
        p,
        "to stepping the engine back, which drops what the newer releases added (asked for"
        " on a terminal, refused without it elsewhere)",
    )


def _verify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-cron",
        action="store_true",
        help="do not check pg_cron (deployments that use `pgsweep run`)",
    )
    p.add_argument(
        "--failed-only",
        action="store_true",
        help="show only the checks that fail (and the verdict)",
    )
    p.add_argument(
        "--job-name",
        type=job_name,
        default=None,
        metavar="NAME",
        help="the pg_cron job to check (default: the job whose command sweeps this database)",
    )
    _cron_dsn_option(p)


def _cleanup_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only count what it would delete, per table and rule (deletes nothing)",
    )
    p.add_argument(
        "--estimate",
        action="store_true",
        help="with --dry-run: run one sample batch per rule under EXPLAIN (ANALYZE, WAL,"
        " BUFFERS), roll it back, and project rows, WAL, time and locks for the whole run",
    )
    p.add_argument(
        "--table",
        metavar="TABLE",
        help="only the rules of this table (default: every rule of every table)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=runner.SWEEP_BATCH_SIZE,
        metavar="N",
        help="rows per batch, each its own short transaction (default %(default)s)",
    )
    p.add_argument(
        "--max-share",
        type=ratio,
        default=None,
        metavar="RATIO",
        help=(
            "ask before deleting more than this share of a table's rows, the sign of a wrong"
            f" rule (default {consent.CONSENT_SHARE:.0%}; tables with fewer than"
            f" {consent.CONSENT_MIN_ROWS:,} rows due never ask)"
        ).replace("%", "%%"),
    )
    _yes_option(
        p,
        "to deleting more than --max-share of a table (asked for on a terminal, refused"
        " without it elsewhere; a large backlog that is a small share needs no consent)",
    )
    _log_format_option(p)


def _log_format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: also one JSON event per line on stderr (run_start, batch, pause, rule_done,"
        " rule_failed, partition, run_end …; docs/observability.md); text (default): none",
    )


def _event_sink(ctx: Context) -> Callable[[Any], None] | None:
    """The sweep's event log of --log-format json, on stderr (stdout keeps its output)."""
    if ctx.args.log_format != "json":
        return None
    from pgsweep import events  # only a sweep that logs needs it

    ctx.out.logs_on_stderr = True
    return events.JsonLines(ctx.out.stderr)


def _apply_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the policy file (TOML: [[rule]], [[remove]])")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only print how the database differs from the file (changes nothing)",
    )
    _yes_option(
        p,
        "to removing the rules the file's [[remove]] names (asked for on a terminal,"
        " refused without it elsewhere)",
    )


def _uninstall_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="remove the engine even though expiry rules exist (they go with it)",
    )
    _yes_option(p, "to removing the engine (asked for on a terminal, refused without it elsewhere)")


def _yes_option(p: argparse.ArgumentParser, to_what: str) -> None:
    p.add_argument("--yes", action="store_true", help=f"consent {to_what}")


def _schedule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cron",
        type=cron_expression,
        metavar="EXPR",
        help="cron expression, 5 fields or a @-macro, in GMT (a new job: "
        f"{cron.DEFAULT_SCHEDULE!r}; an existing job keeps its own)",
    )
    p.add_argument(
        "--database",
        metavar="NAME",
        help="database the job runs in (default: the DSN's database)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--command",
        dest="job_command",
        type=sql_text,
        metavar="SQL",
        help="the job's SQL, checked to parse in that database first (a new job: "
        f"{cron.SWEEP_COMMAND!r}; an existing job keeps its own)",
    )
    what.add_argument(
        "--procedure",
        action="store_true",
        help=f"run {cron.SWEEP_COMMAND!r} (what a new job runs anyway; kept for older scripts)",
    )
    _job_name_option(p)
    p.add_argument(
        "--history-days",
        type=non_negative_int,
        default=cron.DEFAULT_HISTORY_DAYS,
        metavar="N",
        help="keep cron.job_run_details N days (default %(default)s; 0: no pruning job)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check everything and show the job as it would be; schedule nothing",
    )
    _cron_dsn_option(p)


def _unschedule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database",
        metavar="NAME",
        help="database whose job to remove (default: the DSN's database)",
    )
    _job_name_option(p)
    p.add_argument(
        "--prune-job",
        action="store_true",
        help=f"also remove {cron.PRUNE_JOB} (it serves the whole cron database)",
    )
    _cron_dsn_option(p)


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--every",
        required=True,
        type=duration,
        metavar="DURATION",
        help="pause between runs: 30s, 5m, 1h30m, 1d, 250ms",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=runner.SWEEP_BATCH_SIZE,
        metavar="N",
        help="rows per batch, each its own short transaction (default %(default)s)",
    )
    p.add_argument(
        "--max-runs",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop after N runs (default: run until SIGTERM/SIGINT)",
    )
    _log_format_option(p)


_METAVAR: dict[Callable[[str], Any], str] = {
    seconds: "DURATION",
    ratio: "RATIO",
    size: "SIZE",
    positive_int: "N",
}


def _health_options(p: argparse.ArgumentParser) -> None:
    age = verify.format_age

    def pair(
        name: str,
        kind: Callable[[str], Any],
        warn: Any,
        crit: Any,
        what: str,
        show: Callable[[Any], str],
    ) -> None:
        p.add_argument(
            f"--{name}-warning",
            type=kind,
            default=warn,
            metavar=_METAVAR.get(kind, "X"),
            help=f"WARNING at {what} (default {show(warn)})".replace("%", "%%"),
        )
        p.add_argument(
            f"--{name}-critical",
            type=kind,
            default=crit,
            metavar=_METAVAR.get(kind, "X"),
            help=f"CRITICAL at {what} (default {show(crit)})".replace("%", "%%"),
        )

    pair(
        "long-query",
        seconds,
        health.LONG_QUERY_WARNING_S,
        health.LONG_QUERY_CRITICAL_S,
        "a statement or transaction running this long",
        age,
    )
    pair(
        "blocked",
        seconds,
        health.BLOCKED_WARNING_S,
        health.BLOCKED_CRITICAL_S,
        "a session waiting this long on another's lock",
        age,
    )
    pair(
        "dead-ratio",
        ratio,
        health.DEAD_RATIO_WARNING,
        health.DEAD_RATIO_CRITICAL,
        "this share of a table's tuples dead",
        lambda v: f"{v:.0%}",
    )
    p.add_argument(
        "--dead-min-rows",
        type=non_negative_int,
        default=health.DEAD_MIN_ROWS,
        metavar="N",
        help="never flag a table with fewer dead (or modified) tuples (default %(default)s)",
    )
    p.add_argument(
        "--maintenance-age-warning",
        type=seconds,
        default=health.MAINTENANCE_AGE_WARNING_S,
        metavar="DURATION",
        help="WARNING when a table with that much work waiting was not vacuumed"
        f" or analyzed for this long (default {age(health.MAINTENANCE_AGE_WARNING_S)})",
    )
    pair(
        "xid-age",
        positive_int,
        health.XID_AGE_WARNING,
        health.XID_AGE_CRITICAL,
        "this transaction ID age (age(datfrozenxid))",
        lambda v: f"{v:,}",
    )
    pair(
        "slot-wal",
        size,
        health.SLOT_WAL_WARNING_BYTES,
        health.SLOT_WAL_CRITICAL_BYTES,
        "this much WAL retained by a replication slot",
        format_bytes,
    )
    pair(
        "standby-lag",
        seconds,
        health.STANDBY_LAG_WARNING_S,
        health.STANDBY_LAG_CRITICAL_S,
        "a standby this far behind",
        age,
    )
    p.add_argument(
        "--index-bloat-factor",
        type=factor,
        default=health.INDEX_BLOAT_FACTOR,
        metavar="X",
        help="WARNING when an index of a table under a rule is X times the size its rows need"
        f" (default {health.INDEX_BLOAT_FACTOR:g})",
    )
    p.add_argument(
        "--index-bloat-min-size",
        dest="index_bloat_min_bytes",
        type=size,
        default=health.INDEX_BLOAT_MIN_BYTES,
        metavar="SIZE",
        help="never flag a smaller index for bloat"
        f" (default {format_bytes(health.INDEX_BLOAT_MIN_BYTES)})",
    )
    p.add_argument(
        "--no-success-warning",
        type=seconds,
        default=health.NO_SUCCESS_WARNING_S,
        metavar="DURATION",
        help="WARNING when a rule had no successful run for this long"
        f" (default {age(health.NO_SUCCESS_WARNING_S)})",
    )
    p.add_argument(
        "--top",
        type=positive_int,
        default=health.TOP,
        metavar="N",
        help="tables, indexes and sessions listed per check (default %(default)s)",
    )
    p.add_argument(
        "--statement-timeout",
        type=positive_int,
        default=health.STATEMENT_TIMEOUT_MS,
        metavar="MS",
        help="each check's query is cancelled after MS ms (default %(default)s)",
    )
    p.add_argument(
        "--details",
        action="store_true",
        help="list the evidence of every check, not only of those that are not OK",
    )


def _metrics_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--statement-timeout",
        type=positive_int,
        default=metrics.STATEMENT_TIMEOUT_MS,
        metavar="MS",
        help="cancel a scrape's queries after MS ms (default %(default)s)",
    )


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port",
        type=port_number,
        default=metrics.DEFAULT_PORT,
        metavar="PORT",
        help="HTTP port of /metrics (default %(default)s; 0: any free port, printed)",
    )
    p.add_argument(
        "--address",
        default=metrics.DEFAULT_ADDRESS,
        metavar="ADDR",
        help="address to listen on (default %(default)s; 0.0.0.0 or :: for every interface)",
    )
    _metrics_options(p)


def _completion_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete in")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: Callable[[argparse.ArgumentParser], None]
    handler: Handler
    examples: tuple[str, str]
    connects: bool = True  # takes --dsn, --json, --config
    # A monitoring plugin: every failure to check (a bad option, no connection, no password)
    # is UNKNOWN, exit 3, as Nagios reads it; 1 and 2 mean WARNING and CRITICAL.
    nagios: bool = False


@dataclass(frozen=True)
class Program:
    """A command-line program built on this module: ``pgsweep``, or the app's ``matcha-time``."""

    name: str
    description: str
    examples: tuple[str, str]
    commands: list[Command] = field(default_factory=list)


# The commands are filled in below, once the handlers exist; their order is --help's order.
PGSWEEP = Program(
    "pgsweep",
    "The pgsweep expiry engine for any app's PostgreSQL tables: install and upgrade the\n"
    "engine, register rules, clean, report, check and schedule. The reference app's\n"
    "migration chain (Matcha Time) has its own command, matcha-time.",
    ("pgsweep install --dsn postgresql://admin@db/app", "pgsweep status --json"),
)
COMMANDS = PGSWEEP.commands
# The programs that share the config file (./pgsweep.toml): a key is checked against the
# options of all of them, and applies to the command that has it.
_CONFIG_PROGRAMS = (("pgsweep.cli", "PGSWEEP"), ("pgsweep.matcha_cli", "MATCHA_TIME"))


def _config_options() -> dict[str, set[str]]:
    """Every option key of every command of the programs sharing the config file."""
    known: dict[str, set[str]] = {}
    for module, name in _CONFIG_PROGRAMS:
        program: Program = getattr(importlib.import_module(module), name)
        for command, parser in _build(program)[1].items():
            known.setdefault(command, set()).update(settings.option_keys(parser))
    return known


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build(
    program: Program = PGSWEEP, only: str | None = None, *, every: bool = True
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and each command's subparser. ``every=False`` gives only the command ``only``
    its options (the others are names and help lines): what one run needs, and quick to make."""
    parser = _Parser(
        prog=program.name,
        description=program.description,
        epilog=_epilog(program.examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{program.name} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subparsers: dict[str, argparse.ArgumentParser] = {}
    for command in program.commands:
        p = sub.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            epilog=_epilog(command.examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if every or command.name == only:
            if command.connects:
                _common(p)
            command.options(p)
        subparsers[command.name] = p
    return parser, subparsers


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    return run(PGSWEEP, argv)


def run(program: Program, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's) for ``program``, run the command, return its exit
    status; every error is a line on stderr (or a JSON document), never a traceback."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in arguments or _json_from_environment()
    out = Output(json_mode=json_mode)
    command = _command_of(program, arguments)
    prog = program.name + (f" {command}" if command else "")
    try:
        return _main(program, arguments, out)
    except KeyboardInterrupt as stopped:
        # A sweep's interrupt says what had committed. (Asked only here: naming
        # cleanup.SweepInterrupted in an except clause would import the cleanup, and with it
        # psycopg and Alembic, for every exception that passes, --version's exit included.)
        if isinstance(stopped, cleanup.SweepInterrupted):
            return out.error(prog, _interrupted_sweep(stopped), EXIT_INTERRUPTED)
        return out.error(prog, "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # a write outside the printing layer met a closed pipe
        out.reader_gone()
        return EXIT_OK


def _json_from_environment() -> bool:
    value = os.environ.get(settings.ENVIRONMENT["json"], "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def _interrupted_sweep(stopped: cleanup.SweepInterrupted) -> str:
    """What a Ctrl-C'd sweep leaves: every batch before it committed, the run closed."""
    return (
        f"interrupted: {plural(stopped.rows, 'row')} deleted in"
        f" {plural(stopped.batches, 'batch', 'batches')} committed before the interrupt"
        f" (run {stopped.run_id}, recorded as interrupted); the rest is still there, and"
        " running the cleanup again is safe: it goes on where this one stopped"
    )


def _command_of(program: Program, arguments: Sequence[str]) -> str | None:
    names = {c.name for c in program.commands}
    for arg in arguments:
        if not arg.startswith("-"):
            return arg if arg in names else None
    return None


def _main(program: Program, arguments: list[str], out: Output) -> int:
    command = _command_of(program, arguments)
    prog = f"{program.name} {command}" if command else program.name
    try:
        config = settings.load(arguments, os.environ)
        if config.path is not None:
            settings.check(config, _config_options())
        parser, subparsers = _build(program, command, every=False)
        if command and not out.json and settings.ENVIRONMENT["json"] not in os.environ:
            out.json = config.value(command, "json") in (True, "true", "1", "yes", "on")
        settings.apply(subparsers, config, os.environ, command)
        args = parser.parse_args(arguments)
    except CommandLineError as exc:
        # argparse reports unknown options after a command from the top-level parser; name the
        # command and show its usage instead.
        culprit = subparsers.get(command or "", exc.parser) if exc.parser is parser else exc.parser
        code = _failure(program, command, exc.exit_code)
        return out.error(culprit.prog, str(exc), code, usage=culprit.format_usage())
    except UsageError as exc:
        return out.error(prog, str(exc), _failure(program, command, exc.exit_code))
    out.json = bool(getattr(args, "json", False))
    handler = next(c.handler for c in program.commands if c.name == args.command)
    try:
        dsn = settings.dsn(getattr(args, "dsn", None), config, args.command, None)
        with _application_name(f"{program.name} {args.command}"):
            return handler(Context(args, dsn, out, parser))
    except PgsweepError as exc:
        return out.error(prog, str(exc), _failure(program, command, exc.exit_code))
    except _expected_errors() as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        return out.error(prog, describe_error(exc), _failure(program, command, EXIT_FAILED))


def _expected_errors() -> tuple[type[BaseException], ...]:
    """The database and system errors a command reports in words: psycopg's, and Alembic's and
    SQLAlchemy's when the app's chain ran (not imported here when nothing loaded them)."""
    kinds: list[type[BaseException]] = [OSError, psycopg.Error]
    if "sqlalchemy.exc" in sys.modules:
        kinds.append(sys.modules["sqlalchemy.exc"].SQLAlchemyError)
    if "alembic.util" in sys.modules:
        kinds.append(sys.modules["alembic.util"].CommandError)
    return tuple(kinds)


def _failure(program: Program, command: str | None, code: int) -> int:
    """The exit status of a command that failed: a monitoring plugin's is UNKNOWN (3)."""
    if any(c.nagios and c.name == command for c in program.commands):
        return health.EXIT_CODES[health.UNKNOWN]
    return code


@contextmanager
def _application_name(name: str) -> Iterator[None]:
    """``application_name = 'pgsweep <command>'`` on every connection this command opens, so
    pg_stat_activity tells pgsweep's sessions apart. Set through libpq's PGAPPNAME, which
    reaches every connection (psycopg's and Alembic's SQLAlchemy engine alike) and which an
    ``application_name`` in the DSN overrides; a PGAPPNAME the caller set is kept."""
    if "PGAPPNAME" in os.environ:
        yield
        return
    os.environ["PGAPPNAME"] = name
    try:
        yield
    finally:
        os.environ.pop("PGAPPNAME", None)


def describe_error(exc: BaseException) -> str:
    """An unexpected database or system error in words (no Python class names)."""
    orig: BaseException = exc
    if "sqlalchemy.exc" in sys.modules:  # an error of the app's chain, run through SQLAlchemy
        wrapped = getattr(exc, "orig", None)
        if isinstance(exc, sys.modules["sqlalchemy.exc"].DBAPIError) and wrapped is not None:
            orig = wrapped
    if isinstance(orig, psycopg.Error):
        text = db.one_line(orig.diag.message_primary or str(orig))
        state = orig.sqlstate
        if state == "42501":
            if not text.lower().startswith("permission denied"):
                text = f"permission denied: {text}"
            return f"{text} (the role lacks a privilege; see docs/engine.md, SQL reference)"
        return f"the database refused it: {text}" + (f" (SQLSTATE {state})" if state else "")
    if isinstance(orig, OSError):
        return db.one_line(orig.strerror or str(orig))
    return db.one_line(str(orig))


# --- handlers --------------------------------------------------------------------------------


def _install(ctx: Context) -> int:
    out = ctx.out
    with out.busy("installing the engine…"):
        result = engine.install(ctx.dsn)
    if out.json:
        out.result({"command": "install", **dataclasses.asdict(result)})
        return EXIT_OK
    for notice in result.notices:
        out.note(notice)
    where = db.describe(ctx.dsn)
    if not result.changed:
        out.line(f"{where}: engine {result.after} already installed, nothing to do")
    elif result.before is None:
        out.line(f"{where}: installed engine {result.after}", style="green")
    else:
        out.line(f"{where}: engine {result.before} -> {result.after}", style="green")
    return EXIT_OK


def _uninstall(ctx: Context) -> int:
    out = ctx.out
    with db.connect(ctx.dsn) as conn:
        if matcha.is_app_database(conn):
            raise UsageError(
                "this engine belongs to the reference app's migration chain: remove it with"
                " matcha-time downgrade 0008 (which restores the engine the app had embedded)"
            )

    def ask(version: str, rules: int) -> None:
        consent.confirm(
            f"this removes pgsweep engine {version} from {db.describe(ctx.dsn)}, with"
            f" {plural(rules, 'expiry rule')} and every trigger attached to it",
            yes=ctx.args.yes,
        )

    result = engine.uninstall(ctx.dsn, force=ctx.args.force, confirm=ask)
    if out.json:
        out.result({"command": "uninstall", **dataclasses.asdict(result)})
        return EXIT_OK
    where = db.describe(ctx.dsn)
    if result.version is None:
        out.line(f"{where}: no pgsweep engine installed, nothing to do")
    else:
        gone = f" and {plural(result.rules_dropped, 'expiry rule')}" if result.rules_dropped else ""
        out.line(f"{where}: removed engine {result.version}{gone}")
    return EXIT_OK


_ENGINE_TEXT = {
    "newest": "engine {version} (the newest release)",
    "behind": "engine {version} (behind: the newest release is {newest}; run pgsweep upgrade)",
    "none": "no engine installed (the newest release is {newest}; run pgsweep install)",
    "embedded": "the engine Matcha Time's revisions 0006-0008 embedded (matcha-time upgrade)",
    "ahead": "engine {version} (unknown to this pgsweep, whose newest release is {newest})",
}
_ENGINE_STYLE = {
    "newest": "green",
    "behind": "yellow",
    "none": "yellow",
    "embedded": "yellow",
    "ahead": "bold red",
}


def _current(ctx: Context) -> int:
    state = engine.state_of(ctx.dsn)
    out = ctx.out
    if out.json:
        out.result({**dataclasses.asdict(state), "ok": state.state != "ahead"})
    else:
        text = _ENGINE_TEXT[state.state].format(version=state.version, newest=state.newest)
        out.table(
            [Column("database"), Column("engine"), Column("newest release"), Column("state")],
            [[db.describe(ctx.dsn), state.version or "none", state.newest, state.state]],
            plain=[text],
            styles=[_ENGINE_STYLE[state.state]],
        )
    return EXIT_UNKNOWN_REVISION if state.state == "ahead" else EXIT_OK


def _engine_changed(ctx: Context, command: str, result: engine.InstallResult) -> int:
    out = ctx.out
    if out.json:
        out.result({"command": command, **dataclasses.asdict(result)})
        return EXIT_OK
    for notice in result.notices:
        out.note(notice)
    where = db.describe(ctx.dsn)
    if not result.changed:
        out.line(f"{where}: engine {result.after}, nothing to do")
    else:
        out.line(f"{where}: engine {result.before} -> {result.after}", style="green")
    return EXIT_OK


def _refuse_the_apps_engine(ctx: Context, command: str) -> None:
    """The engine of a Matcha Time database moves with the app's chain, revision by revision."""
    with db.connect(ctx.dsn) as conn:
        if matcha.is_app_database(conn):
            raise UsageError(
                "this engine belongs to the reference app's migration chain, which records it:"
                f" {command} it with matcha-time {command} (or alembic {command})"
            )


def _upgrade(ctx: Context) -> int:
    _refuse_the_apps_engine(ctx, "upgrade")
    with ctx.out.busy("upgrading the engine…"):
        result = engine.upgrade(ctx.dsn)
    return _engine_changed(ctx, "upgrade", result)


def _downgrade(ctx: Context) -> int:
    _refuse_the_apps_engine(ctx, "downgrade")

    def ask(before: str, target: str) -> None:
        consent.confirm(
            f"this steps pgsweep engine {before} back to {target} in {db.describe(ctx.dsn)},"
            " dropping what the newer releases added (their run history columns and routines)",
            yes=ctx.args.yes,
        )

    result = engine.downgrade(ctx.dsn, ctx.args.release, confirm=ask)
    return _engine_changed(ctx, "downgrade", result)


def _verify(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    with out.busy("verifying…"):
        report = verify.verify(
            ctx.dsn, check_cron=not args.no_cron, job_name=args.job_name, cron_dsn=args.cron_dsn
        )
    shown = report.failures if args.failed_only else report.checks
    if out.json:
        out.emit(
            {
                "ok": report.ok,
                "database": report.database,
                "checks": [
                    {"name": c.name, "status": c.status, "evidence": c.evidence} for c in shown
                ],
            }
        )
        return EXIT_OK if report.ok else EXIT_FAILED
    failed = len(report.failures)
    verdict = (
        "all checks pass"
        if report.ok
        else f"{failed} of {plural(len(report.checks), 'check')} failed"
    )
    out.table(
        [Column("status"), Column("check"), Column("evidence")],
        [[c.status.upper(), c.name, c.evidence] for c in shown],
        plain=[f"{c.status.upper():<5} {c.name}: {c.evidence}" for c in shown],
        styles=[STATUS_STYLE[c.status] for c in shown],
    )
    out.line(
        f"verify {report.database}: {verdict}", style="bold green" if report.ok else "bold red"
    )
    return EXIT_OK if report.ok else EXIT_FAILED


def _cleanup(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    if args.estimate:
        if not args.dry_run:
            raise UsageError("--estimate needs --dry-run (it deletes nothing)")
        return _estimate(ctx)
    sink = _event_sink(ctx)  # a dry run deletes nothing: no events
    if args.dry_run:
        with out.busy("counting…"):
            result = cleanup.dry_run(ctx.dsn, table=args.table)
    else:
        due: int | None = None
        if not args.yes:
            with out.busy("counting…"):
                due_run = cleanup.dry_run(ctx.dsn, table=args.table)
                due = due_run.total
                with db.connect(ctx.dsn) as conn:
                    found = consent.shares(
                        conn, {t.table: t.rows for t in due_run.tables if t.rows}
                    )
            max_share = consent.CONSENT_SHARE if args.max_share is None else args.max_share
            consent.require_share(found, max_share, yes=False)
        # The progress bar's total: the count the consent just took, or (with --yes, on a
        # terminal) one taken for it; through the rules' indexes, so it costs the garbage.
        if due is None and out.live:
            with out.busy("counting…"):
                due = cleanup.dry_run(ctx.dsn, table=args.table).total
        with out.progress("deleting garbage", total=due) as advance:
            deleted = [0]

            def on_batch(p: cleanup.Progress) -> None:
                advance(p.total_deleted - deleted[0], f"deleting from {p.table}")
                deleted[0] = p.total_deleted

            result = cleanup.cleanup(
                ctx.dsn,
                table=args.table,
                batch_size=args.batch_size,
                on_batch=on_batch,
                on_event=sink,
            )
    key = "would_delete" if result.dry_run else "deleted"
    if out.json:
        out.result(
            {
                "dry_run": result.dry_run,
                key: result.total,
                "tables": [
                    {
                        "table": t.table,
                        key: t.rows,
                        "rules": [
                            {
                                "column": r.column,
                                key: r.rows,
                                "partitions": [dataclasses.asdict(p) for p in r.partitions],
                                "partitions_left": r.partitions_left,
                            }
                            for r in t.rules
                        ],
                    }
                    for t in result.tables
                ],
                "skipped": [dataclasses.asdict(r) for r in result.skipped],
                "pauses": [dataclasses.asdict(p) for p in result.pauses],
                "failed": [dataclasses.asdict(f) for f in result.failed],
                "left": [dataclasses.asdict(r) for r in result.left],
            }
        )
        return EXIT_FAILED if result.failed else EXIT_OK
    verb = "would delete" if result.dry_run else "deleted"
    plain, rows = [], []
    for table in result.tables:
        rules = ", ".join(f"{r.column} {r.rows:,}" for r in table.rules)
        plain.append(
            f"{table.table:<28} {verb} {table.rows:>8,}" + (f"   ({rules})" if rules else "")
        )
        rows.append([table.table, f"{table.rows:,}", rules])
    plain.append(f"{'total':<28} {verb} {result.total:>8,}")
    rows.append(["total", f"{result.total:,}", ""])
    caption = "a row past two rules is counted once, under the first" if result.dry_run else None
    out.table(
        [Column("table"), Column(verb, numeric=True), Column("per rule")],
        rows,
        plain=plain,
        caption=caption,
        styles=[None] * (len(rows) - 1) + ["bold"],
    )
    _partitions(out, result)
    _skipped(out, result.skipped)
    for pause in result.pauses:
        out.line(_pause_text(pause), style="yellow")
    for rule in result.left:
        out.line(f"left rule {rule.table}.{rule.column}: {rule.problem}", style="yellow")
    for failure in result.failed:
        out.line(_failed_text(failure), style="red")
    return EXIT_FAILED if result.failed else EXIT_OK


def _failed_text(f: runner.FailedRule) -> str:
    return f"failed rule {f.table}.{f.column}: {f.error} (undone; the other rules were swept)"


def _estimate(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    with out.busy("running one sample batch per rule (rolled back)…"):
        result = cleanup.estimate(ctx.dsn, table=args.table, batch_size=args.batch_size)
    # A sample that failed (a restricting foreign key, a missing privilege): the run would fail
    # at that batch, a problem found (exit 1), as verify's red.
    failed = sum(r.error is not None for r in result.rules)
    status = EXIT_FAILED if failed else EXIT_OK
    if out.json:
        out.emit(
            {
                "ok": failed == 0,
                "dry_run": True,
                "estimate": True,
                "batch_size": result.batch_size,
                "would_delete": result.rows,
                "projected_seconds": round(result.seconds, 6),
                "projected_wal_bytes": result.wal_bytes,
                "rules": [dataclasses.asdict(r) for r in result.rules],
                "skipped": [dataclasses.asdict(r) for r in result.skipped],
            }
        )
        return status
    for r in result.rules:
        name = f"{r.table}.{r.column}"
        out.line(
            f"{name}: would delete {plural(r.rows, 'row')} in"
            f" {plural(r.batches, 'batch', 'batches')} of {args.batch_size:,}",
            style="bold",
        )
        if r.error is not None:
            out.line(f"  the sample batch failed, as the run would: {r.error}", style="bold red")
        elif r.rows == 0:
            out.line("  nothing to delete now")
        else:
            held = (
                " (rows were held: the SKIP LOCKED pass, as the engine takes)"
                if r.skip_locked
                else ""
            )
            out.line(
                f"  sample batch{held}: {plural(r.sample_rows, 'row')} in"
                f" {r.sample_seconds * 1000:.1f} ms, {format_bytes(r.sample_wal_bytes)} of WAL"
                f" ({r.sample_wal_records:,} records, {r.sample_wal_fpi:,} full pages),"
                f" {r.sample_buffers_dirtied:,} buffers dirtied, {r.sample_buffers_read:,} read;"
                f" {r.plan}"
            )
            out.line(
                f"  projected: {r.projected_seconds:.2f} s, {format_bytes(r.projected_wal_bytes)}"
                " of WAL"
            )
            out.line(f"  locks per batch: {', '.join(r.locks) or 'none'}; and each deleted row")
        for key in r.foreign_keys:
            out.line(
                f"  foreign key {key.name} of {key.table} (ON DELETE {key.action.upper()}):"
                f" {key.effect}",
                style="yellow",
            )
    out.line(
        f"whole run: {plural(result.rows, 'row')}, about {result.seconds:.2f} s and"
        f" {format_bytes(result.wal_bytes)} of WAL without pauses; every sample was rolled back",
        style="bold",
    )
    if failed:
        out.line(
            f"{plural(failed, 'sample')} failed: the cleanup would fail there too", style="bold red"
        )
    _skipped(out, result.skipped)
    return status


def _apply(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    document = policy.load(args.file)
    result = policy.apply(ctx.dsn, document, dry_run=True)
    if not args.dry_run:
        if result.removals:
            consent.confirm(
                "applying "
                + args.file
                + " removes "
                + plural(len(result.removals), "rule")
                + ": "
                + ", ".join(f"{c.table}.{c.column}" for c in result.removals),
                yes=args.yes,
            )
        result = policy.apply(ctx.dsn, document, dry_run=False)
    if out.json:
        out.result(
            {
                "dry_run": result.dry_run,
                "changed": result.changed,
                "rules": [
                    {
                        "action": c.action,
                        "table": c.table,
                        "column": c.column,
                        "fields": {k: {"before": b, "after": a} for k, (b, a) in c.fields.items()},
                    }
                    for c in result.changes
                ],
                "views": result.views,
            }
        )
        return EXIT_OK
    marks = {"add": "+", "change": "~", "remove": "-", "same": "=", "kept": " "}
    for c in result.changes:
        what = "; ".join(f"{k}: {b} -> {a}" for k, (b, a) in c.fields.items())
        note = " (not in the file: kept)" if c.action == "kept" else ""
        out.line(
            f"{marks[c.action]} {c.action:<6} {c.table}.{c.column}{note}"
            + (f"  {what}" if what else "")
        )
    for view in result.views:
        out.line(f"  view   {view} hides what the rules of its table mark as garbage")
    verdict = "would change" if result.dry_run else "changed"
    out.line(
        f"{args.file}: {verdict} the rules" if result.changed else f"{args.file}: rules match",
        style="bold",
    )
    return EXIT_OK


def _partitions(out: Output, result: cleanup.CleanupResult) -> None:
    """Partitions past the cutoff that went whole (or would), and those left for the next run."""
    for table in result.tables:
        for rule in table.rules:
            for p in rule.partitions:
                verb = "would go whole" if result.dry_run else f"removed whole ({p.how})"
                out.line(
                    f"partition {p.partition} of {table.table}: {verb}, {plural(p.rows, 'row')}"
                )
            for left in rule.partitions_left:
                if partitions.row_deleted(left):
                    out.line(
                        f"partition {left}; row-deleted instead, tried again next run",
                        style="yellow",
                    )
                else:
                    out.line(f"partition {left}", style="red")


def _skipped(out: Output, skipped: list[runner.SkippedRule]) -> None:
    """Rules that cannot run (their table or column is gone): said, never an error."""
    for rule in skipped:
        out.line(f"skipped rule {rule.table}.{rule.column}: {rule.problem}", style="yellow")


def _status_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sample",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="list up to N garbage rows per rule by primary key, oldest first (default 0)",
    )


def _ago(moment: dt.datetime | None) -> str:
    if moment is None:
        return "never"
    return verify.format_age((dt.datetime.now(dt.UTC) - moment).total_seconds()) + " ago"


def _rule_history(r: status.RuleStatus, next_sweep: dt.datetime | None) -> str:
    """The run history and lag of one rule, in words."""
    lag = verify.format_age(r.oldest_age_s or 0)
    target = verify.format_age(r.lag_target_s or 0)
    verdict = "ok" if r.lag_ok else "OVER TARGET"
    rate = f"{r.delete_rate:,.0f} rows/s" if r.delete_rate is not None else "no rate yet"
    last = f"last run {_ago(r.last_run_at)}"
    if r.last_run_status:
        last += f" ({r.last_run_status})"
    error = f"; last error: {r.last_error}" if r.last_error else ""
    return (
        f"lag {lag} of target {target} ({verdict}); {last}, last success"
        f" {_ago(r.last_success_at)}; {r.deleted_24h:,} deleted in 24 h, {rate},"
        f" {_backlog_eta(r, next_sweep)}{error}"
    )


def _backlog_eta(r: status.RuleStatus, next_sweep: dt.datetime | None) -> str:
    """When the backlog will be gone: never sooner than the next sweep that is due."""
    if not r.rows:
        return "no backlog"
    if r.backlog_eta_s is None:
        return "backlog gone: unknown (no delete rate yet)"
    sweeping = verify.format_age(r.backlog_eta_s)
    if next_sweep is None:
        return f"backlog: {sweeping} of sweeping once a sweep runs (no pg_cron job seen)"
    wait = max((next_sweep - dt.datetime.now(dt.UTC)).total_seconds(), 0)
    at = next_sweep.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"backlog gone in {verify.format_age(wait + r.backlog_eta_s)}"
        f" (the next sweep at {at}, then {sweeping} of sweeping)"
    )


def _status(ctx: Context) -> int:
    out = ctx.out
    with out.busy("reading the tables under a rule…"):
        report = status.status(ctx.dsn, sample=ctx.args.sample)
    tables = report.tables
    if out.json:
        out.result(
            {
                "tables": [dataclasses.asdict(t) for t in tables],
                "skipped": [dataclasses.asdict(r) for r in report.skipped],
                "next_sweep_at": report.next_sweep_at,
            }
        )
        return EXIT_OK
    if not tables and not report.skipped:
        out.line("no expiry rule registered yet (pgsweep.add_rule)")
        return EXIT_OK
    plain: list[str] = []
    rows: list[list[str]] = []
    styles: list[str | None] = []
    notes: list[tuple[str, str | None]] = []  # on a terminal: wrapped sentences under the table
    for t in tables:
        about = "~" if t.estimated else ""
        count = "unknown" if t.rows is None else f"{about}{plural(t.rows, 'row')}"
        active = "?" if t.active is None else f"{about}{t.active:,}"
        upkeep = (
            f"table {format_bytes(t.table_bytes)}, indexes {format_bytes(t.index_bytes)};"
            f" {t.dead_tuples or 0:,} dead tuples,"
            f" vacuumed {_ago(_latest(t.last_vacuum, t.last_autovacuum))},"
            f" analyzed {_ago(_latest(t.last_analyze, t.last_autoanalyze))}"
        )
        plain.append(
            f"{t.table}: {count}, {active} active, {t.garbage:,} garbage (not deleted yet);"
            f" {upkeep}"
        )
        rows.append(
            [
                t.table,
                "?" if t.rows is None else f"{about}{t.rows:,}",
                active,
                f"{t.garbage:,}",
                "",
                "",
            ]
        )
        styles.append("bold")
        notes.append((f"{t.table}: {upkeep}", None))
        for r in t.rules:
            oldest = verify.format_age(r.oldest_age_s or 0) + " ago" if r.rows else ""
            newest = verify.format_age(r.newest_age_s or 0) + " ago" if r.rows else ""
            ages = f", oldest {oldest}, newest {newest}" if r.rows else ""
            never = f", {r.rows_never_expire:,} never expire" if r.rows_never_expire else ""
            alive = "" if r.rows_alive is None else f", {about}{r.rows_alive:,} alive"
            plain.append(f"  {r.column:<22}{r.rows:>8,}{ages}{alive}{never}")
            plain.append(f"    {_rule_history(r, report.next_sweep_at)}")
            if r.sample:
                plain.append(f"    garbage keys: {', '.join(map(str, r.sample))}")
            lag = verify.format_age(r.oldest_age_s or 0)
            lag += " / " + verify.format_age(r.lag_target_s or 0)
            rows.append([f"  {r.column}", "", "", f"{r.rows:,}", oldest, lag])
            style = None if r.lag_ok is not False else "red"
            styles.append(style)
            counts = f"{about}{r.rows_alive or 0:,} alive{never}" + (
                f", newest garbage {newest}" if r.rows else ""
            )
            notes.append(
                (
                    f"  {t.table}.{r.column}: {counts}; {_rule_history(r, report.next_sweep_at)}",
                    style,
                )
            )
            if r.sample:
                notes.append(
                    (f"  {t.table}.{r.column} garbage keys: {', '.join(map(str, r.sample))}", None)
                )
    out.table(
        [
            Column("table / rule"),
            Column("rows", numeric=True),
            Column("active", numeric=True),
            Column("garbage", numeric=True),
            Column("oldest past cutoff"),
            Column("lag / target"),
        ],
        rows,
        plain=plain,
        styles=styles,
        whole=[True, True, True, True, False, False],
        caption="garbage: marked by a rule, not deleted yet (a row past two rules counts once in"
        " the table's garbage and under each of its rules); ~: the planner's estimate",
    )
    if out.terminal:
        for text, style in notes:
            out.paragraph(text, indent=4, style=style)
    for t in tables:
        if t.partitions_due:
            out.line(
                f"{t.table}: partitions past the cutoff, removed whole by the next cleanup:"
                f" {', '.join(t.partitions_due)}"
            )
    _skipped(out, report.skipped)
    return EXIT_OK


def _latest(*moments: dt.datetime | None) -> dt.datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


# health's OK, WARNING, CRITICAL, UNKNOWN (literals: the health module loads when it is used)
_HEALTH_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "unknown": "magenta"}


def _health(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    thresholds = health.Thresholds(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(health.Thresholds)}
    )
    with out.busy("checking…"):
        report = health.health(ctx.dsn, thresholds)
    status = report.status
    if out.json:
        out.emit(
            {
                "ok": status == health.OK,
                "status": status,
                "exit_code": report.exit_code,
                "database": report.database,
                "checks": [
                    {"name": c.name, "status": c.status, "summary": c.summary, "details": c.details}
                    for c in report.checks
                ],
            }
        )
        return report.exit_code
    # The first line is the verdict: what a Nagios-style monitor shows.
    bad = [c for c in report.checks if c.status != health.OK]
    verdict = f"PGSWEEP HEALTH {status.upper()}: " + (
        "; ".join(f"{c.name}: {c.summary}" for c in bad)
        if bad
        else f"{plural(len(report.checks), 'check')} OK"
    )
    out.line(verdict, style=_HEALTH_STYLE[status])
    plain: list[str] = []
    rows: list[list[str]] = []
    styles: list[str | None] = []
    for c in report.checks:
        plain.append(f"{c.status.upper():<8} {c.name}: {c.summary}")
        rows.append([c.status.upper(), c.name, c.summary])
        styles.append(_HEALTH_STYLE[c.status])
        if args.details or c.status != health.OK:
            for line in c.lines[: max(args.top, 1) * 4]:
                plain.append(f"           {line}")
                rows.append(["", "", f"  {line}"])
                styles.append(None)
    out.table(
        [Column("status"), Column("check"), Column("evidence")],
        rows,
        plain=plain,
        styles=styles,
    )
    return report.exit_code


def _job_json(job: cron.Job | None) -> dict[str, Any] | None:
    return None if job is None else dataclasses.asdict(job)


_ACTION_WORD = {"created": "scheduled", "updated": "updated", "unchanged": "updated"}


def _schedule(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    command = cron.SWEEP_COMMAND if args.procedure else args.job_command
    result = cron.schedule(
        ctx.dsn,
        cron=args.cron,
        database=args.database,
        command=command,
        job_name=args.job_name,
        history_days=args.history_days,
        cron_dsn=args.cron_dsn,
        dry_run=args.dry_run,
    )
    if out.json:
        out.result(
            {
                "dry_run": result.dry_run,
                "action": result.action,
                "cron_database": result.cron_database,
                "job": _job_json(result.job),
                "prune_job": _job_json(result.prune_job),
                "prune_action": result.prune_action,
                "lag_target": None
                if result.lag_target is None
                else dataclasses.asdict(result.lag_target),
            }
        )
        return EXIT_OK
    for job, action in ((result.job, result.action), (result.prune_job, result.prune_action)):
        if job is None or action is None:
            continue
        same = " (nothing changed)" if action == "unchanged" else ""
        word = f"would be {_ACTION_WORD[action]}:" if result.dry_run else _ACTION_WORD[action]
        jobid = f"jobid {job.jobid}" if job.jobid else "a new job"
        out.line(
            f"{word} {job.name} ({jobid}){same} in cron database"
            f" {result.cron_database!r}: '{job.schedule}' runs {job.command!r}"
            f" in {job.database!r}",
            style="green",
        )
    if result.lag_target is not None:
        _lag_target_lines(out, result.lag_target, result.job.database, dry_run=result.dry_run)
    return EXIT_OK


def _lag_target_lines(out: Output, lag: cron.LagTarget, database: str, *, dry_run: bool) -> None:
    """What the schedule means for the lag targets health, verify and the alerts judge by."""
    age = verify.format_age
    runs = (
        f"the job runs up to {age(lag.longest_gap_s)} apart, so a rule may lag"
        f" {age(lag.keepable_s)}"
    )
    if lag.changed:
        verb = "would be" if dry_run else "is now"
        out.line(
            f"default lag target of {database!r} {verb} {age(lag.after_s)}"
            f" (was {age(lag.before_s)}): {runs}",
            style="green",
        )
    elif lag.advice:
        out.line(
            f"default lag target of {database!r} stays {age(lag.before_s)}, shorter than the"
            f" schedule can keep ({runs}); health and verify will report a lag no run was due to"
            f" prevent. As the database's owner: {lag.advice}",
            style="yellow",
        )
    else:
        out.line(f"default lag target of {database!r}: {age(lag.before_s)} ({runs})")
    for table, column, target in lag.tighter_rules:
        out.line(
            f"rule {table}.{column} has its own lag target {age(target)}, shorter than the"
            f" schedule can keep: schedule sweeps more often (--cron), or"
            f" SELECT pgsweep.set_lag_target('{table}', '{column}', NULL);",
            style="yellow",
        )


def _unschedule(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    result = cron.unschedule(
        ctx.dsn,
        database=args.database,
        job_name=args.job_name,
        prune_job=args.prune_job,
        cron_dsn=args.cron_dsn,
    )
    if out.json:
        out.result(
            {
                "cron_database": result.cron_database,
                "removed": [_job_json(j) for j in result.removed],
            }
        )
        return EXIT_OK
    if not result.removed:
        out.line(f"no such job in cron database {result.cron_database!r}: nothing to remove")
    for job in result.removed:
        out.line(f"unscheduled {job.name} (jobid {job.jobid}) for {job.database!r}")
    return EXIT_OK


def _run(ctx: Context) -> int:
    args, out, dsn = ctx.args, ctx.out, ctx.dsn
    every = runner.parse_duration(args.every)
    sink = _event_sink(ctx)
    stop = threading.Event()
    out.on_closed = stop.set  # `pgsweep run … | head -2`: stop once the reader is gone
    received: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        # Only record and wake the loop: printing here could re-enter a write in progress.
        received.append(signal.Signals(signum).name)
        stop.set()

    activity = out.activity()  # on a terminal: "run 3: sweeping refresh_tokens (3/3)…"

    def on_table(number: int, table: str, position: int, total: int) -> None:
        activity.show(f"run {number}: sweeping {table} ({position}/{total})…")

    def on_run(counts: runner.RunCounts) -> None:
        activity.hide()
        _log(out, _run_json(counts), _run_text(counts))

    def on_outage(outage: runner.Outage) -> None:
        activity.hide()
        _log(
            out,
            {"event": "outage", "message": outage.message, "retry_in_s": outage.retry_in_s},
            f"database unavailable: {outage.message}; retrying in {outage.retry_in_s:.0f} s",
        )

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        runs = runner.run(
            dsn,
            every,
            stop=stop,
            on_start=lambda: _log(
                out,
                {"event": "start", "every_s": every, "database": db.describe(dsn)},
                f"sweeping {db.describe(dsn)} every {args.every}",
            ),
            on_run=on_run,
            on_outage=on_outage,
            on_table=on_table,
            on_event=sink,
            batch_size=args.batch_size,
            max_runs=args.max_runs,
        )
    finally:
        activity.hide()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for name in received[:1]:
        _log(
            out,
            {"event": "signal", "signal": name},
            f"{name} received: every batch before it committed (each is its own transaction);"
            " starting pgsweep run again is safe, it goes on where this one stopped",
        )
    _log(
        out, {"event": "stopped", "ok": True, "runs": runs}, f"stopped after {plural(runs, 'run')}"
    )
    return EXIT_OK


def _run_json(c: runner.RunCounts) -> dict[str, Any]:
    return {
        "event": "run",
        "run": c.number,
        "started_at": c.started_at.isoformat(),
        "seconds": round(c.seconds, 3),
        "deleted": c.deleted,
        "total": c.total,
        "partitions_removed": c.partitions,
        "skipped": [dataclasses.asdict(s) for s in c.skipped],
        "pauses": [dataclasses.asdict(p) for p in c.pauses],
        "failed": [dataclasses.asdict(f) for f in c.failed],
        "left": [dataclasses.asdict(r) for r in c.left],
    }


def _run_text(c: runner.RunCounts) -> str:
    parts = ", ".join(f"{t} {n:,}" for t, n in c.deleted.items())
    text = f"run {c.number}: deleted {plural(c.total, 'row')} ({parts}) in {c.seconds:.2f} s"
    if c.partitions:
        whole = ", ".join(f"{t} {n:,}" for t, n in c.partitions.items())
        text += f"; partitions removed whole: {whole}"
    notes = [f"skipped rule {s.table}.{s.column}: {s.problem}" for s in c.skipped]
    notes += [_pause_text(p) for p in c.pauses]
    notes += [f"left rule {r.table}.{r.column}: {r.problem}" for r in c.left]
    notes += [_failed_text(f) for f in c.failed]
    return "; ".join([text, *notes])


def _pause_text(p: runner.Pause) -> str:
    verb = "stopped" if p.stopped else "paused"
    return f"{verb} {p.table}.{p.column}: {p.reason}"


def _log(out: Output, document: dict[str, Any], text: str) -> None:
    """One event of ``run``: a JSON line with its ISO-8601 UTC time, or a timestamped line."""
    at = iso_now()
    if out.json:
        out.emit({"event": document["event"], "at": at, **document})
    else:
        out.line(f"{at[:19]}Z {text}")


def _metrics(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    if not out.json:
        out.line(metrics.exposition(ctx.dsn, args.statement_timeout).rstrip("\n"))
        return EXIT_OK
    reading = metrics.scrape(ctx.dsn, args.statement_timeout)
    out.emit(
        {
            "ok": reading.error is None,
            "error": reading.error,
            "metrics": [
                {
                    "name": family.name,
                    "type": family.type,
                    "help": family.documentation,
                    "samples": [
                        {"name": s.name, "labels": s.labels, "value": s.value}
                        for s in family.samples
                    ],
                }
                for family in metrics.families(reading)
            ],
        }
    )
    return EXIT_OK


def _serve(ctx: Context) -> int:
    args, out = ctx.args, ctx.out
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = metrics.serve(ctx.dsn, args.address, args.port, args.statement_timeout)
        try:
            host, port = str(server.server_address[0]), int(server.server_address[1])
            url = f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"
            _log(
                out,
                {"event": "start", "url": url, "port": port, "database": db.describe(ctx.dsn)},
                f"serving the metrics of {db.describe(ctx.dsn)} on {url}",
            )
            stop.wait()
        finally:
            server.shutdown()
            server.server_close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for name in received[:1]:
        _log(out, {"event": "signal", "signal": name}, f"{name} received")
    _log(out, {"event": "stopped", "ok": True}, "stopped")
    return EXIT_OK


def _completion(ctx: Context) -> int:
    # shtab generates the script from this very parser, so completion cannot drift from it.
    parser, subparsers = _build(every=True)
    for p in subparsers.values():
        for action in p._actions:
            if action.dest == "config":
                action.complete = shtab.FILE  # type: ignore[attr-defined]
    ctx.out.line(shtab.complete(parser, shell=ctx.args.shell).rstrip("\n"))
    return EXIT_OK


COMMANDS.extend(
    [
        Command(
            "install",
            "install the pgsweep engine (schema pgsweep), or upgrade it to this release",
            lambda _p: None,
            _install,
            ("pgsweep install", "pgsweep install --json --dsn postgresql://app@db/app"),
        ),
        Command(
            "uninstall",
            "remove the pgsweep engine (refuses while expiry rules exist)",
            _uninstall_options,
            _uninstall,
            ("pgsweep uninstall --yes", "pgsweep uninstall --force --yes --json"),
        ),
        Command(
            "upgrade",
            "upgrade the installed engine to the newest release, release by release (only the"
            " engine's schema changes)",
            lambda _p: None,
            _upgrade,
            ("pgsweep upgrade", "pgsweep upgrade --json --dsn postgresql://admin@db/app"),
        ),
        Command(
            "downgrade",
            "step the engine back to an older release (each release's downgrade.sql)",
            _engine_downgrade_options,
            _downgrade,
            ("pgsweep downgrade --yes", "pgsweep downgrade 1.2 --yes --json"),
        ),
        Command(
            "current",
            "show the engine release installed and the newest this pgsweep ships",
            lambda _p: None,
            _current,
            ("pgsweep current", "pgsweep current --json --dsn postgresql://app@db/app"),
        ),
        Command(
            "verify",
            "check the database against the code: pass/fail with evidence",
            _verify_options,
            _verify,
            ("pgsweep verify --failed-only", "pgsweep verify --no-cron --json"),
        ),
        Command(
            "cleanup",
            "delete the garbage of every rule, a transaction per batch (or count it)",
            _cleanup_options,
            _cleanup,
            ("pgsweep cleanup --dry-run", "pgsweep cleanup --table sessions --json"),
        ),
        Command(
            "apply",
            "make the database's expiry rules match a policy file (TOML)",
            _apply_options,
            _apply,
            ("pgsweep apply pgsweep.toml --dry-run", "pgsweep apply pgsweep.toml --yes --json"),
        ),
        Command(
            "status",
            "per table under a rule: rows, garbage, expiry lag against its target, run history,"
            " sizes",
            _status_options,
            _status,
            ("pgsweep status", "pgsweep status --sample 5 --json | jq '.tables[].garbage'"),
        ),
        Command(
            "health",
            "check the database and its cleanup: OK/WARNING/CRITICAL/UNKNOWN (exit 0-3)",
            _health_options,
            _health,
            ("pgsweep health", "pgsweep health --long-query-warning 1m --json"),
            nagios=True,
        ),
        Command(
            "metrics",
            "print the cleanup's metrics in Prometheus' text format (one scrape)",
            _metrics_options,
            _metrics,
            ("pgsweep metrics", "pgsweep metrics | grep pgsweep_expiry_lag_seconds"),
        ),
        Command(
            "serve",
            "expose the metrics on HTTP for Prometheus until SIGTERM/SIGINT",
            _serve_options,
            _serve,
            ("pgsweep serve --port 9745", "pgsweep serve --address 0.0.0.0 --json"),
        ),
        Command(
            "schedule",
            "register (or update) the sweep of every rule as a pg_cron job",
            _schedule_options,
            _schedule,
            (
                "pgsweep schedule --cron '15 3 * * *'",
                "pgsweep schedule --dsn postgresql://admin@db/postgres --database app",
            ),
        ),
        Command(
            "unschedule",
            "remove the sweep's pg_cron job",
            _unschedule_options,
            _unschedule,
            ("pgsweep unschedule", "pgsweep unschedule --job-name cleanup-other --prune-job"),
        ),
        Command(
            "run",
            "sweep every DURATION until SIGTERM/SIGINT (no pg_cron needed)",
            _run_options,
            _run,
            ("pgsweep run --every 1h", "pgsweep run --every 30s --batch-size 1000 --json"),
        ),
        Command(
            "completion",
            "print a shell completion script (bash, zsh or tcsh)",
            _completion_options,
            _completion,
            (
                "pgsweep completion bash > /etc/bash_completion.d/pgsweep",
                'pgsweep completion zsh > "${fpath[1]}/_pgsweep"',
            ),
            connects=False,
        ),
    ]
)
