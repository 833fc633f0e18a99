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

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

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


@dataclass(frozen=True)
class ScheduleResult:
    cron_database: str
    job: Job
    prune_job: Job | None


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
    dsn: str, app: Connection, *, autocommit: bool = True
) -> Iterator[tuple[str, Connection]]:
    """(cron database name, a connection to it): ``app`` itself when it is the cron database."""
    name = cron_database(app)
    here = _one(app, "SELECT current_database()")
    if name == here:
        yield name, app
        return
    with db.connect(with_dbname(dsn, name), autocommit=autocommit) as conn:
        yield name, conn


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


def find_sweep_jobs(conn: Connection, database: str) -> list[Job]:
    """The jobs of ``database`` whose command calls ``pgsweep.sweep``, those that sweep every
    rule first."""
    rows = conn.execute(
        "SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job"
        " WHERE database = %s AND command ILIKE %s ORDER BY jobid",
        (database, "%pgsweep.sweep%"),
    ).fetchall()
    jobs = [_job(row) for row in rows]
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
    cron: str = DEFAULT_SCHEDULE,
    database: str | None = None,
    command: str = SWEEP_COMMAND,
    job_name: str = DEFAULT_JOB,
    history_days: int = DEFAULT_HISTORY_DAYS,
) -> ScheduleResult:
    """Register (or update) the cleanup job for ``database`` (default: the DSN's database), and
    the history-pruning job of the cron database unless ``history_days`` is 0."""
    if history_days < 0:
        raise UsageError("--history-days must be 0 (no pruning job) or more")
    with db.connect(dsn) as app:
        target = database or str(_one(app, "SELECT current_database()"))
        if not _one(app, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = %s)", (target,)):
            raise UsageError(f"database {target!r} does not exist on this server")
        _require_cleanup(dsn, app, target)
        with cron_connection(dsn, app) as (cron_db, conn):
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
            # Two jobs sweeping one database would run side by side (pg_cron only keeps a job
            # from overlapping itself).
            twin = next((j for j in find_sweep_jobs(conn, target) if j.name != job_name), None)
            if twin is not None and sweeps_every_rule(command):
                raise UsageError(
                    f"pg_cron job {twin.name!r} (jobid {twin.jobid}) already sweeps database"
                    f" {target!r}: change it with --job-name {twin.name}, or unschedule it first"
                )
            with conn.transaction():
                _schedule_one(conn, job_name, cron, command, target, cron_db)
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
    return ScheduleResult(cron_db, job, prune)


def unschedule(
    dsn: str,
    *,
    database: str | None = None,
    job_name: str = DEFAULT_JOB,
    prune_job: bool = False,
) -> UnscheduleResult:
    """Remove the cleanup job of ``database`` (and the pruning job with ``prune_job``); removing
    a job that is not there is not an error (the result lists nothing)."""
    removed: list[Job] = []
    with db.connect(dsn) as app:
        target = database or str(_one(app, "SELECT current_database()"))
        with cron_connection(dsn, app) as (cron_db, conn):
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


def _require_cleanup(dsn: str, app: Connection, target: str) -> None:
    """The job would fail every night in a database without the engine's sweep."""
    here = str(_one(app, "SELECT current_database()"))
    query = "SELECT to_regprocedure('pgsweep.sweep(regclass,integer,interval,bigint)') IS NOT NULL"
    if target == here:
        present = bool(_one(app, query))
    else:
        with db.connect(with_dbname(dsn, target)) as other:
            present = bool(_one(other, query))
    if not present:
        raise DatabaseBehind(
            f"database {target!r} has no pgsweep.sweep(): run pgsweep install there first"
        )


def _one(conn: Connection, query: str, params: tuple[Any, ...] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]
