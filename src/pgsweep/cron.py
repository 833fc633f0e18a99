"""pg_cron from outside a migration: where its jobs live, schedule, unschedule, inspect.

pg_cron keeps its jobs in one database per server, ``cron.database_name``. A job that runs in
another database (the common production case: the app's database is not the cron database) is
registered from the cron database with ``cron.schedule_in_database``. Every function here takes
the DSN of the *app's* database, reads ``cron.database_name`` from the server, and connects to
the cron database with the same credentials.

``cron.schedule`` upserts by (job name, user). Scheduling the cleanup for a database under a name
that some other database's job already uses would silently move that job, so it is refused.
``cron.unschedule`` raises on a missing job, so it is only called for a job just found.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from croniter import croniter
from psycopg import sql

from pgsweep import db
from pgsweep.dsn import with_dbname
from pgsweep.errors import CronUnavailable, DatabaseBehind, PgsweepError, UsageError

DEFAULT_JOB = "pgsweep-sweep"
DEFAULT_SCHEDULE = "0 2 * * *"
# Every rule of the database, one short transaction per batch.
SWEEP_COMMAND = "CALL pgsweep.sweep();"
PRUNE_JOB = "pgsweep-prune-cron-history"
PRUNE_SCHEDULE = "30 3 * * *"
DEFAULT_HISTORY_DAYS = 14

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Job:
    jobid: int
    name: str
    schedule: str
    command: str
    database: str
    username: str
    active: bool


@dataclass(frozen=True)
class Run:
    status: str
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    message: str


Action = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class LagTarget:
    """The default lag target a schedule can keep, and what ``schedule`` did about it."""

    keepable_s: float  # the longest wait between two runs, plus the shorter of it and an hour
    longest_gap_s: float
    before_s: float  # the database's default lag target before (pgsweep.default_lag_target)
    after_s: float  # after (a dry run: would be)
    changed: bool
    # When not allowed to change it (not the database's owner): the statement to run.
    advice: str | None = None
    # Rules with their own target shorter than the schedule can keep: (table, column, target_s).
    tighter_rules: list[tuple[str, str, float]] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class ScheduleResult:
    cron_database: str
    job: Job
    prune_job: Job | None
    action: Action = "created"  # what happened to ``job`` (or, dry run: would happen)
    prune_action: Action | None = None
    dry_run: bool = False  # nothing was scheduled: ``job`` is what would be (jobid 0 when new)
    lag_target: LagTarget | None = None  # None: a schedule with no next run (@reboot)


@dataclass(frozen=True)
class UnscheduleResult:
    cron_database: str
    removed: list[Job]


def prune_command(days: int) -> str:
    """The pruning job's SQL (pg_cron takes a command string; ``days`` is an int)."""
    keep = f"interval '{int(days)} days'"
    return "DELETE FROM cron.job_run_details WHERE end_time < now() - " + keep  # noqa: S608 - int


def cron_database(conn: Connection) -> str:
    """``cron.database_name`` of the server behind ``conn``; an error when pg_cron is not loaded."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron'),"
        " current_setting('cron.database_name', true)"
    ).fetchone()
    assert row is not None
    if not row[0]:
        raise CronUnavailable("pg_cron is not installed on this server")
    if not row[1]:
        raise CronUnavailable("pg_cron is not loaded on this server (shared_preload_libraries)")
    return str(row[1])


@contextmanager
def cron_connection(
    dsn: str, app: Connection, *, autocommit: bool = True, cron_dsn: str | None = None
) -> Iterator[tuple[str, Connection]]:
    """(cron database name, a connection to it): ``app`` itself when it is the cron database,
    else ``cron_dsn`` (or ``dsn``'s credentials) pointed at it."""
    name = cron_database(app)
    here = _one(app, "SELECT current_database()")
    if name == here:
        yield name, app
        return
    with db.connect(with_dbname(cron_dsn or dsn, name), autocommit=autocommit) as conn:
        yield name, conn


# pg_cron 1.4 (the version Debian ships for PostgreSQL 15) has minute granularity: five fields,
# or one of these macros. Later versions also take "N seconds"; pg_cron itself still validates
# whatever passes this check, so a stricter check here only ever explains a refusal earlier.
_MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@reboot"}
)


def check_cron_expression(expression: str) -> None:
    """A usage error unless ``expression`` has pg_cron's shape (five fields or a @-macro)."""
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() in _MACROS:
            return
        raise UsageError(
            f"invalid cron expression {expression!r}: pg_cron's macros are"
            f" {', '.join(sorted(_MACROS))}"
        )
    fields = text.split()
    if len(fields) != 5:
        raise UsageError(
            f"invalid cron expression {expression!r}: pg_cron needs 5 fields (minute hour"
            " day-of-month month day-of-week) or a macro such as @daily; it runs a job at most"
            f" once a minute, so there is no seconds field ({len(fields)} fields given)"
        )


def check_job_name(name: str) -> None:
    if not name.strip():
        raise UsageError("the job name must not be empty")


# Statements PREPARE accepts: parsed and analysed (names resolved) without running anything.
_PREPARABLE = frozenset(
    {"select", "insert", "update", "delete", "with", "values", "merge", "table"}
)
_TAG = "$pgsweep_check$"


def check_command(conn: Connection, command: str) -> None:
    """A usage error unless ``command`` parses in the database behind ``conn`` (which must be
    the job's database). Nothing runs, and the transaction is rolled back.

    PostgreSQL has no parse-only call, so: a statement PREPARE accepts (SELECT, INSERT, …) is
    PREPAREd, which parses it and resolves every name (a misspelt function is caught too) but
    plans and executes nothing; psycopg sends it with the extended protocol, which refuses more
    than one statement. Anything else (CALL, VACUUM, several statements) is compiled as the body
    of a DO block after a RETURN: PL/pgSQL checks each statement's syntax when it compiles the
    block, and the RETURN means none of them runs."""
    text = command.strip()
    if not text.rstrip(";").strip():
        raise UsageError("the job's SQL (--command) is empty")
    first = text.split(None, 1)[0].lower()
    try:
        with conn.transaction(force_rollback=True):
            if first in _PREPARABLE:
                try:
                    with conn.transaction():
                        conn.execute(
                            sql.SQL("PREPARE pgsweep_check AS ") + sql.SQL(text.rstrip(";"))
                        )
                        conn.execute("DEALLOCATE pgsweep_check")
                    return
                except psycopg.errors.SyntaxError as exc:
                    if "multiple commands" not in str(exc):
                        raise
            if _TAG in text:
                raise UsageError(f"the job's SQL must not contain {_TAG}")
            body = text if text.endswith(";") else text + ";"
            conn.execute(sql.SQL(f"DO {_TAG} BEGIN RETURN; {{}} END {_TAG}").format(sql.SQL(body)))
    except psycopg.Error as exc:
        database = _one(conn, "SELECT current_database()")
        raise UsageError(
            f"the job's SQL {command!r} is not valid in database {database!r}:"
            f" {exc.diag.message_primary or db.one_line(str(exc))}"
        ) from None


def has_cron_tables(conn: Connection) -> bool:
    return bool(_one(conn, "SELECT to_regclass('cron.job') IS NOT NULL"))


def find_job(conn: Connection, name: str, database: str) -> Job | None:
    row = conn.execute(
        "SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job"
        " WHERE jobname = %s AND database = %s ORDER BY jobid LIMIT 1",
        (name, database),
    ).fetchone()
    return None if row is None else _job(row)


def sweeps_every_rule(command: str) -> bool:
    """Whether a job's SQL runs the sweep of every rule (``CALL pgsweep.sweep()`` with no table:
    its arguments, if any, start with the batch size or are named)."""
    text = " ".join(command.lower().split())
    return bool(re.search(r"\bcall\s+pgsweep\.sweep\s*\(\s*(\)|null\b|p_batch_size\b)", text))


def find_jobs_running(conn: Connection, database: str, fragment: str) -> list[Job]:
    """The jobs of ``database`` whose command mentions ``fragment`` (a routine's name)."""
    rows = conn.execute(
        "SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job"
        " WHERE database = %s AND strpos(lower(command), lower(%s)) > 0 ORDER BY jobid",
        (database, fragment),
    ).fetchall()
    return [_job(row) for row in rows]


def find_sweep_jobs(conn: Connection, database: str) -> list[Job]:
    """The jobs of ``database`` whose command calls ``pgsweep.sweep``, those that sweep every
    rule first."""
    jobs = find_jobs_running(conn, database, "pgsweep.sweep")
    return sorted(jobs, key=lambda job: not sweeps_every_rule(job.command))


def find_job_by_name(conn: Connection, name: str) -> Job | None:
    row = conn.execute(
        "SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job"
        " WHERE jobname = %s AND username = current_user ORDER BY jobid LIMIT 1",
        (name,),
    ).fetchone()
    return None if row is None else _job(row)


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), bool(row[6])
    )


def last_run(conn: Connection, jobid: int) -> Run | None:
    row = conn.execute(
        "SELECT status, start_time, end_time, coalesce(return_message, '')"
        " FROM cron.job_run_details WHERE jobid = %s"
        " ORDER BY start_time DESC NULLS LAST, runid DESC LIMIT 1",
        (jobid,),
    ).fetchone()
    return None if row is None else Run(str(row[0]), row[1], row[2], str(row[3]))


def schedule(
    dsn: str,
    *,
    cron: str | None = None,
    database: str | None = None,
    command: str | None = None,
    job_name: str = DEFAULT_JOB,
    history_days: int = DEFAULT_HISTORY_DAYS,
    cron_dsn: str | None = None,
    dry_run: bool = False,
) -> ScheduleResult:
    """Register (or update) the cleanup job for ``database`` (default: the DSN's database), and
    the history-pruning job of the cron database unless ``history_days`` is 0.

    ``cron`` and ``command`` left as None keep an existing job's values (a new job gets
    :data:`DEFAULT_SCHEDULE` and :data:`SWEEP_COMMAND`). Everything is checked before
    anything is scheduled: the name, the cron expression's shape, and that the SQL parses in
    the job's database."""
    check_job_name(job_name)
    if history_days < 0:
        raise UsageError("--history-days must be 0 (no pruning job) or more")
    if cron is not None:
        check_cron_expression(cron)
    with db.connect(dsn) as app:
        target = database or str(_one(app, "SELECT current_database()"))
        if not _one(app, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = %s)", (target,)):
            raise UsageError(f"database {target!r} does not exist on this server")
        with _in_database(dsn, app, target) as there:
            _require_cleanup(there, target)
            if command is not None:
                check_command(there, command)
        with cron_connection(dsn, app, cron_dsn=cron_dsn) as (cron_db, conn):
            if not has_cron_tables(conn):
                raise CronUnavailable(
                    f"the pg_cron extension is not created in the cron database {cron_db!r}"
                    " (CREATE EXTENSION pg_cron there, as a superuser)"
                )
            clash = find_job_by_name(conn, job_name)
            if clash is not None and clash.database != target:
                raise UsageError(
                    f"pg_cron job {job_name!r} already runs in database {clash.database!r};"
                    " choose another --job-name for this one"
                )
            before = find_job(conn, job_name, target)
            prune_before = find_job(conn, PRUNE_JOB, cron_db)
            wanted_cron = cron or (before.schedule if before else DEFAULT_SCHEDULE)
            wanted_command = command or (before.command if before else SWEEP_COMMAND)
            # Two jobs sweeping one database would run side by side (pg_cron only keeps a job
            # from overlapping itself).
            twin = next((j for j in find_sweep_jobs(conn, target) if j.name != job_name), None)
            if twin is not None and sweeps_every_rule(wanted_command):
                raise UsageError(
                    f"pg_cron job {twin.name!r} (jobid {twin.jobid}) already sweeps database"
                    f" {target!r}: change it with --job-name {twin.name}, or unschedule it first"
                )
            if dry_run:
                would = _would_be(before, job_name, wanted_cron, wanted_command, target)
                would_prune = None
                if history_days:
                    pruning = prune_command(history_days)
                    would_prune = _would_be(
                        prune_before, PRUNE_JOB, PRUNE_SCHEDULE, pruning, cron_db
                    )
                with _in_database(dsn, app, target) as there:
                    lag = keep_lag_target(there, target, wanted_cron, dry_run=True)
                return ScheduleResult(
                    cron_db,
                    would,
                    would_prune,
                    _action(before, would),
                    None if would_prune is None else _action(prune_before, would_prune),
                    dry_run=True,
                    lag_target=lag,
                )
            with conn.transaction():
                _schedule_one(conn, job_name, wanted_cron, wanted_command, target, cron_db)
                if history_days:
                    _schedule_one(
                        conn,
                        PRUNE_JOB,
                        PRUNE_SCHEDULE,
                        prune_command(history_days),
                        cron_db,
                        cron_db,
                    )
            job = find_job(conn, job_name, target)
            prune = find_job(conn, PRUNE_JOB, cron_db)
        assert job is not None
        with _in_database(dsn, app, target) as there:
            lag = keep_lag_target(there, target, job.schedule, dry_run=False)
    return ScheduleResult(
        cron_db,
        job,
        prune,
        _action(before, job),
        _action(prune_before, prune) if history_days and prune is not None else None,
        lag_target=lag,
    )


# --- what a schedule can keep -----------------------------------------------------------------

# How far ahead the runs of a schedule are walked to find its longest gap: a year covers every
# calendar pattern but leap days; at most this many runs (every minute: a week of them).
_HORIZON = dt.timedelta(days=366)
_MAX_RUNS = 10_080
_RUN_MARGIN_S = 3600.0  # the time a run itself may take, at most (or the gap, if shorter)


def next_runs(expression: str, after: dt.datetime) -> Iterator[dt.datetime]:
    """The run times of a pg_cron schedule after ``after``, in pg_cron's zone (GMT unless
    ``cron.timezone`` says otherwise: the caller passes ``after`` in that zone). Nothing for
    ``@reboot``."""
    if expression.strip().lower() == "@reboot":
        return
    times = croniter(expression.strip().lower(), after)
    while True:
        yield times.get_next(dt.datetime)


def longest_gap_s(expression: str, start: dt.datetime | None = None) -> float | None:
    """The longest wait between two consecutive runs of a schedule, over the next year (None:
    it has no next run)."""
    start = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    previous: dt.datetime | None = None
    longest = 0.0
    for count, moment in enumerate(next_runs(expression, start)):
        if previous is not None:
            longest = max(longest, (moment - previous).total_seconds())
        previous = moment
        if moment - start > _HORIZON or count >= _MAX_RUNS:
            break
    return longest if previous is not None else None


def keepable_lag_s(gap_s: float) -> float:
    """The expiry lag a sweep every ``gap_s`` at most can keep: a row that expires just after a
    run waits the whole gap, then the run's own time (up to an hour, or the gap if shorter)."""
    return gap_s + min(gap_s, _RUN_MARGIN_S)


def _interval_text(seconds: float) -> str:
    return f"{round(seconds)} seconds"


def keep_lag_target(
    conn: Connection, database: str, expression: str, *, dry_run: bool
) -> LagTarget | None:
    """Make the database's default lag target one the schedule can keep: raise it (never lower
    it) with ``ALTER DATABASE … SET pgsweep.default_lag_target``, so that health, verify and
    the alert rules stop reporting, most of every day, a lag no run was due to prevent. Without
    the right to alter the database: the statement to run, in ``advice``."""
    gap = longest_gap_s(expression)
    if gap is None:
        return None
    keepable = keepable_lag_s(gap)
    before = float(
        _one(
            conn,
            "SELECT extract(epoch FROM coalesce(nullif(("
            "   SELECT split_part(c, '=', 2) FROM pg_db_role_setting s, unnest(s.setconfig) c"
            "    WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = %s)"
            "      AND s.setrole = 0 AND c LIKE 'pgsweep.default_lag_target=%%'), '')::interval,"
            "   '1 hour'::interval))::float8",
            (database,),
        )
    )
    tighter = [
        (str(t), str(c), float(target))
        for t, c, target in conn.execute(
            "SELECT table_name::regclass::text, column_name::text,"
            " extract(epoch FROM lag_target)::float8 FROM pgsweep.expiry_rule"
            " WHERE lag_target IS NOT NULL AND lag_target < make_interval(secs => %s)"
            " ORDER BY 1, 2",
            (keepable,),
        ).fetchall()
    ]
    if before >= keepable:
        return LagTarget(keepable, gap, before, before, False, None, tighter)
    statement = sql.SQL("ALTER DATABASE {} SET pgsweep.default_lag_target = {}").format(
        sql.Identifier(database), sql.Literal(_interval_text(keepable))
    )
    if dry_run:
        return LagTarget(keepable, gap, before, keepable, True, None, tighter)
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return LagTarget(
            keepable, gap, before, before, False, statement.as_string(conn) + ";", tighter
        )
    return LagTarget(keepable, gap, before, keepable, True, None, tighter)


def next_sweep(dsn: str, app: Connection) -> dt.datetime | None:
    """When pg_cron next sweeps every rule of ``app``'s database (UTC), or None when that cannot
    be known here (no pg_cron, no job, no right to read its jobs, a schedule with no next run)."""
    try:
        target = str(_one(app, "SELECT current_database()"))
        zone = str(_one(app, "SELECT coalesce(current_setting('cron.timezone', true), 'GMT')"))
        with cron_connection(dsn, app) as (_name, conn):
            if not has_cron_tables(conn):
                return None
            jobs = [j for j in find_sweep_jobs(conn, target) if j.active]
    except (PgsweepError, psycopg.Error):
        return None
    if not jobs or not sweeps_every_rule(jobs[0].command):
        return None
    try:
        here = ZoneInfo("UTC" if zone.upper() in ("GMT", "UTC") else zone)
        start = dt.datetime.now(here)
        return next(iter(next_runs(jobs[0].schedule, start)), None)
    except (ValueError, KeyError, LookupError):  # a zone or schedule this host cannot read
        return None


def _would_be(before: Job | None, name: str, schedule: str, command: str, database: str) -> Job:
    """The job as scheduling would leave it (a dry run); a new one has jobid 0."""
    if before is not None:
        return dataclasses.replace(before, schedule=schedule, command=command)
    return Job(0, name, schedule, command, database, "", True)


def _action(before: Job | None, after: Job) -> Action:
    if before is None:
        return "created"
    return "unchanged" if before == after else "updated"


@contextmanager
def _in_database(dsn: str, app: Connection, target: str) -> Iterator[Connection]:
    """``app`` when it is connected to ``target``, else a connection to ``target``."""
    if target == str(_one(app, "SELECT current_database()")):
        yield app
        return
    with db.connect(with_dbname(dsn, target)) as conn:
        yield conn


def unschedule(
    dsn: str,
    *,
    database: str | None = None,
    job_name: str = DEFAULT_JOB,
    prune_job: bool = False,
    cron_dsn: str | None = None,
) -> UnscheduleResult:
    """Remove the cleanup job of ``database`` (and the pruning job with ``prune_job``); removing
    a job that is not there is not an error (the result lists nothing)."""
    check_job_name(job_name)
    removed: list[Job] = []
    with db.connect(dsn) as app:
        target = database or str(_one(app, "SELECT current_database()"))
        with cron_connection(dsn, app, cron_dsn=cron_dsn) as (cron_db, conn):
            if not has_cron_tables(conn):
                return UnscheduleResult(cron_db, [])
            with conn.transaction():
                wanted = [(job_name, target)] + ([(PRUNE_JOB, cron_db)] if prune_job else [])
                for name, where in wanted:
                    job = find_job(conn, name, where)
                    if job is not None:
                        conn.execute("SELECT cron.unschedule(%s::bigint)", (job.jobid,))
                        removed.append(job)
    return UnscheduleResult(cron_db, removed)


def _schedule_one(
    conn: Connection, name: str, cron: str, command: str, database: str, cron_db: str
) -> None:
    try:
        with conn.transaction():
            if database == cron_db:
                conn.execute("SELECT cron.schedule(%s, %s, %s)", (name, cron, command))
            else:
                conn.execute(
                    "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                    (name, cron, command, database),
                )
    except psycopg.errors.InsufficientPrivilege as exc:
        text = db.one_line(str(exc))
        raise CronUnavailable(f"not allowed to schedule pg_cron jobs: {text}") from None
    except psycopg.Error as exc:
        text = db.one_line(str(exc))
        if "invalid schedule" in text:
            raise UsageError(f"invalid cron expression {cron!r} (pg_cron: {text})") from None
        raise PgsweepError(f"pg_cron refused the job {name!r}: {text}") from None


def _require_cleanup(conn: Connection, target: str) -> None:
    """The job would fail every night in a database without the engine's sweep."""
    query = "SELECT to_regprocedure('pgsweep.sweep(regclass,integer,interval,bigint)') IS NOT NULL"
    if not _one(conn, query):
        raise DatabaseBehind(
            f"database {target!r} has no pgsweep.sweep(): run pgsweep install there first"
        )


def _one(conn: Connection, query: str, params: tuple[Any, ...] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]
