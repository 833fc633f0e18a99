"""``pgsweep verify``: is the database what this code says it should be, and is it being swept?

One :class:`Check` per fact, each pass or fail with its evidence:

* the engine release installed is this code's newest (not missing, behind or unknown);
* every engine routine is present with its signature, result type, language, volatility,
  security and ``SET`` options, and a body whose hash matches the shipped one
  (:mod:`pgsweep.manifest`); every engine index is present and valid; the event trigger that
  removes the rules of dropped tables is there (reported, not judged: it needs a superuser);
* every expiry rule can run (its table and column exist, the column can expire);
* every rule's expiry lag (how long ago its oldest garbage row crossed the cutoff) is within its
  target (``pgsweep.rule_status``: the backlog, the delete rate and the ETA as evidence);
* every cleanup path (each rule: the one-pass DELETE, a sweep batch's probe and its range) has
  an index that can serve it (EXPLAIN with sequential scans priced out, naming the index), and
  what the planner picks under the current statistics (plain EXPLAIN, reported, not judged: on
  a small table a sequential scan is the right choice);
* every rule on a partitioned table: whether the partition bounds select its garbage (range on
  the rule's column alone: partitions past the cutoff go whole, no index needed for them), and
  no partition left half-detached;
* in the reference app's database (:mod:`pgsweep.matcha`): its revision is the code's head, its
  routines, triggers and indexes are as shipped, and its hot lookups are index-driven;
* a pg_cron job sweeps this database (``CALL pgsweep.sweep()``), is active, its last run
  succeeded, and the job that prunes ``cron.job_run_details`` exists.

Verify changes nothing: it runs in READ ONLY transactions that are rolled back, and EXPLAIN
never executes the statement it plans.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgsweep import cron, db, deploy, engine, manifest, matcha, plans
from pgsweep.dsn import dbname_of, with_dbname
from pgsweep.errors import CronUnavailable, PgsweepError

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped on request
    evidence: str

    @property
    def status(self) -> str:
        return "skip" if self.ok is None else ("pass" if self.ok else "fail")


@dataclass(frozen=True)
class VerifyReport:
    database: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]


def verify(
    dsn: str,
    *,
    check_cron: bool = True,
    job_name: str | None = None,
    cron_dsn: str | None = None,
) -> VerifyReport:
    """Every check against the database behind ``dsn``. The pg_cron jobs are read in the cron
    database: through ``dsn`` when it is that database, else through ``cron_dsn``, else with
    ``dsn``'s credentials pointed at the cron database. ``job_name`` names the job to check;
    by default, any job of this database that runs ``pgsweep.sweep``."""
    with db.connect(dsn, autocommit=False) as conn:
        conn.read_only = True
        try:
            database = str(_one(conn, "SELECT current_database()"))
            checks: list[Check] = [engine_check(conn)]
            if checks[0].ok:
                checks += _engine_checks(conn)
            app = matcha.is_app_database(conn)
            if app:
                checks += _app_checks(conn)
            if check_cron:
                # In the app's database, the runbook's job (the contract function) is a sweep.
                also = matcha.CLEANUP_FUNCTION if app else None
                checks += _guarded(
                    conn, "pg_cron", lambda: cron_checks(cron_dsn or dsn, conn, job_name, also)
                )
            else:
                checks.append(Check("pg_cron job", None, "not checked (--no-cron)"))
        finally:
            conn.rollback()
    return VerifyReport(database, checks)


def _engine_checks(conn: Connection) -> list[Check]:
    expected = manifest.expected()
    schemas = manifest.ENGINE_SCHEMAS
    checks = _guarded(conn, "functions", lambda: routine_checks(conn, expected, schemas))
    checks += _guarded(conn, "indexes", lambda: index_checks(conn, expected, schemas))
    checks += _guarded(conn, "event trigger", lambda: [event_trigger_check(conn)])
    checks += _guarded(conn, "rules", lambda: rule_checks(conn))
    checks += _guarded(conn, "expiry lag", lambda: lag_checks(conn))
    checks += _guarded(conn, "plans", lambda: plan_checks(conn, plans.cleanup_paths(conn)))
    checks += _guarded(conn, "partitions", lambda: partition_checks(conn))
    return checks


def _app_checks(conn: Connection) -> list[Check]:
    expected = manifest.expected(matcha.MANIFEST_PATH)
    schemas = matcha.SCHEMAS
    checks = [revision_check(conn)]
    checks += _guarded(conn, "functions", lambda: routine_checks(conn, expected, schemas))
    checks += _guarded(conn, "triggers", lambda: trigger_checks(conn, expected, schemas))
    checks += _guarded(conn, "indexes", lambda: index_checks(conn, expected, schemas))
    checks += _guarded(conn, "plans", lambda: plan_checks(conn, list(matcha.HOT_LOOKUPS)))
    return checks


def _guarded(conn: Connection, what: str, run: Callable[[], list[Check]]) -> list[Check]:
    """A group of checks in a savepoint: an SQL error fails that group, not the others."""
    try:
        with conn.transaction():
            return run()
    except psycopg.Error as exc:
        return [Check(what, False, f"could not be checked: {db.one_line(str(exc))}")]


# --- engine and revision ---------------------------------------------------------------------


def engine_check(conn: Connection) -> Check:
    name = "engine"
    latest = engine.latest()
    try:
        version = engine.require_engine(conn)
    except PgsweepError as exc:
        return Check(name, False, str(exc))
    if version == latest:
        return Check(name, True, f"pgsweep engine {version}, this code's newest")
    if version in engine.releases():
        return Check(name, False, f"engine {version}, behind this code's {latest}: pgsweep install")
    return Check(name, False, f"engine {version}, unknown to this code (newest {latest})")


def event_trigger_check(conn: Connection) -> Check:
    row = conn.execute(
        "SELECT evtenabled::text FROM pg_event_trigger"
        " WHERE evtname = 'pgsweep_forget_dropped_rules'"
    ).fetchone()
    name = "event trigger pgsweep_forget_dropped_rules"
    if row is None:
        return Check(
            name,
            None,
            "absent (installed without a superuser): rules of dropped tables are not removed"
            " at once; the rule checks report them",
        )
    if row[0] == "D":
        return Check(name, False, "disabled: rules of dropped tables stay behind")
    return Check(name, True, "enabled: a dropped table or column takes its rules with it")


def rule_checks(conn: Connection) -> list[Check]:
    rows = conn.execute(
        "SELECT table_name, column_name, keep_for::text, value_zone, column_type::text, problem,"
        " kind, epoch_unit, condition, parent_table, parent_key, child_key"
        " FROM pgsweep.rules ORDER BY 1, 2"
    ).fetchall()
    if not rows:
        return [Check("rules", True, "no expiry rule registered yet (pgsweep.add_rule)")]
    checks = []
    for table, column, keep_for, zone, type_name, problem, *kind in rows:
        name = f"rule {table}.{column}"
        if problem is not None:
            checks.append(Check(name, False, f"{problem}: skipped by every cleanup"))
            continue
        checks.append(Check(name, True, _rule_evidence(keep_for, zone, type_name, *kind)))
    return checks


def lag_checks(conn: Connection) -> list[Check]:
    """Per rule that can run: its expiry lag against its target, with the backlog, the delete
    rate the run history measured and when the backlog will be gone (pgsweep.rule_status)."""
    rows = conn.execute(
        "SELECT coalesce(to_regclass(table_name)::text, table_name), column_name::text, lag_ok,"
        " extract(epoch FROM expiry_lag), extract(epoch FROM lag_target), garbage, delete_rate,"
        " extract(epoch FROM backlog_eta)"
        " FROM pgsweep.rule_status WHERE problem IS NULL ORDER BY 1, 2"
    ).fetchall()
    checks = []
    for table, column, ok, lag, target, garbage, rate, eta in rows:
        speed = f"{float(rate):,.0f} rows/s" if rate is not None else "no delete rate measured yet"
        # The sweeping time alone: when it starts depends on the schedule (pgsweep status).
        gone = f", {format_age(float(eta))} of sweeping" if eta is not None and garbage else ""
        evidence = (
            f"lag {format_age(float(lag))} of target {format_age(float(target))};"
            f" backlog {int(garbage):,} rows, {speed}{gone}"
        )
        if not ok:
            evidence = f"OVER TARGET: {evidence} (pgsweep cleanup, or pgsweep.set_lag_target)"
        checks.append(Check(f"lag {table}.{column}", bool(ok), evidence))
    return checks


def _rule_evidence(
    keep_for: str,
    zone: str | None,
    type_name: str,
    kind: str,
    unit: str | None,
    condition: str | None,
    parent: str | None,
    parent_key: str | None,
    child_key: str | None,
) -> str:
    """What a rule deletes, in a line: its kind, and for an age rule its type, unit and zone."""
    where = f", where {condition}" if condition else ""
    if kind == "condition":
        return f"condition {condition}, batches walk this {type_name} column"
    if kind == "orphan":
        key = child_key or "this column"
        return f"orphans: no {parent} row has {parent_key} = {key}{where}"
    in_zone = f", values in {zone}" if zone else ""
    in_unit = f", epoch {unit}" if unit == "milliseconds" else ""
    return f"{type_name}{in_unit}, kept {keep_for} past expiry{in_zone}{where}"


def revision_check(conn: Connection) -> Check:
    state = deploy.state_of(deploy.recorded_revision(conn))
    name = "revision"
    if state.state == "head":
        return Check(name, True, f"database at {state.revision}, the code's head")
    if state.state == "empty":
        return Check(name, False, "no alembic_version: never migrated (run matcha-time upgrade)")
    if state.state == "behind":
        return Check(
            name,
            False,
            f"database at {state.revision}, behind the code's head {state.head}"
            " (run matcha-time upgrade)",
        )
    return Check(
        name,
        False,
        f"database at {state.revision}, unknown to this code (head {state.head}):"
        " the database is ahead of this code",
    )


# --- routines, triggers, indexes -------------------------------------------------------------


def routine_checks(
    conn: Connection, expected: manifest.Manifest, schemas: tuple[str, ...]
) -> list[Check]:
    found = manifest.read_routines(conn, schemas)
    checks = []
    for signature, want in sorted(expected.routines.items()):
        name = f"{want.kind} {signature}"
        have = found.get(signature)
        if have is None:
            checks.append(Check(name, False, "missing"))
            continue
        problems = []
        if have.body_sha256 != want.body_sha256:
            problems.append(
                f"body differs from the shipped one (sha256 {have.body_sha256[:12]},"
                f" shipped {want.body_sha256[:12]})"
            )
        for attribute in ("result", "language", "volatility", "security_definer", "config"):
            got, wanted = getattr(have, attribute), getattr(want, attribute)
            if got != wanted:
                problems.append(f"{attribute} is {got!r}, shipped {wanted!r}")
        if problems:
            checks.append(Check(name, False, "; ".join(problems)))
        else:
            security = "security definer" if want.security_definer else "security invoker"
            result = f"returns {want.result}, " if want.kind == "function" else ""
            checks.append(
                Check(
                    name,
                    True,
                    f"{result}{want.language} {want.volatility} {security},"
                    f" body as shipped (sha256 {want.body_sha256[:12]})",
                )
            )
    return checks


def trigger_checks(
    conn: Connection, expected: manifest.Manifest, schemas: tuple[str, ...]
) -> list[Check]:
    rows = conn.execute(
        "SELECT c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text"
        " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ANY (%s) AND NOT t.tgisinternal",
        (list(schemas),),
    ).fetchall()
    found = {str(r[0]): (str(r[1]), str(r[2])) for r in rows}
    checks = []
    for key, want in sorted(expected.triggers.items()):
        name = f"trigger {key}"
        if key not in found:
            checks.append(Check(name, False, "missing"))
            continue
        definition, enabled = found[key]
        if definition != want.definition:
            checks.append(Check(name, False, f"differs from the shipped definition: {definition}"))
        elif enabled not in ("O", "A"):
            states = {"D": "disabled", "R": "enabled for replica sessions only"}
            state = states.get(enabled, enabled)
            checks.append(Check(name, False, f"{state} (ALTER TABLE … ENABLE TRIGGER to repair)"))
        else:
            checks.append(Check(name, True, f"enabled: {_after_table(definition)}"))
    return checks


def _after_table(definition: str) -> str:
    # "CREATE TRIGGER t AFTER INSERT ON public.x FOR EACH STATEMENT EXECUTE FUNCTION f(...)"
    head, _, tail = definition.partition(" FOR EACH ")
    when = head.split(" ", 3)[3] if head.count(" ") >= 3 else head
    return f"{when} FOR EACH {tail}" if tail else definition


def index_checks(
    conn: Connection, expected: manifest.Manifest, schemas: tuple[str, ...]
) -> list[Check]:
    rows = conn.execute(
        "SELECT n.nspname || '.' || ic.relname, pg_get_indexdef(i.indexrelid),"
        " i.indisvalid AND i.indisready"
        " FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
        " JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ANY (%s) AND c.relname <> 'alembic_version'",
        (list(schemas),),
    ).fetchall()
    found = {str(r[0]): (str(r[1]), bool(r[2])) for r in rows}
    checks = []
    for key, want in sorted(expected.indexes.items()):
        name = f"index {key}"
        if key not in found:
            checks.append(Check(name, False, f"missing (on {want.table})"))
            continue
        definition, valid = found[key]
        if not valid:
            checks.append(Check(name, False, "INVALID (a failed concurrent build): rebuild it"))
        elif definition != want.definition:
            checks.append(Check(name, False, f"differs from the shipped definition: {definition}"))
        else:
            checks.append(Check(name, True, "valid, " + definition.split(" USING ", 1)[-1]))
    others = sorted(k for k, (_, valid) in found.items() if not valid and k not in expected.indexes)
    checks.append(
        Check(
            f"other indexes in {', '.join(schemas)}",
            not others,
            f"invalid: {', '.join(others)}" if others else "no other index is invalid",
        )
    )
    return checks


# --- plans -----------------------------------------------------------------------------------


def plan_checks(conn: Connection, paths: list[plans.Path]) -> list[Check]:
    checks = []
    for path in paths:
        _set(conn, "enable_seqscan", "off")
        served_by = _serving_index(plans.explain(conn, path.statement))
        _set(conn, "enable_seqscan", "on")
        chosen = plans.scans(plans.explain(conn, path.statement))
        # A scan of neither an index nor a table (Subquery Scan, Values Scan…) is named alone.
        picks = (
            ", ".join(" ".join(filter(None, (s.node_type, s.index or s.relation))) for s in chosen)
            or "no scan"
        )
        name = f"plan {path.name}"
        if served_by is None:
            checks.append(Check(name, False, f"no index can serve it; planner picks {picks}"))
        else:
            evidence = f"index {served_by} can serve it; planner picks {picks}"
            checks.append(Check(name, True, evidence))
    return checks


def _set(conn: Connection, setting: str, value: str) -> None:
    conn.execute("SELECT set_config(%s, %s, true)", (setting, value))


def _serving_index(plan: dict[str, Any]) -> str | None:
    """The first index scan that applies a condition of the statement (not just an order)."""
    for node in _nodes(plan):
        if node.get("Node Type") in plans.INDEX_SCANS and node.get("Index Cond"):
            return str(node.get("Index Name"))
    return None


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _recorded_detaches(conn: Connection) -> dict[str, dict[str, str]]:
    """Per table, the concurrent detaches a cleanup recorded and did not finish
    (pgsweep.partition_detach): each partition's name now, and where it is ("pending" or
    "standalone"; one attached again is not listed). Empty for a role that may not read it."""
    readable = conn.execute(
        "SELECT CASE WHEN to_regclass('pgsweep.partition_detach') IS NULL THEN false"
        " ELSE has_table_privilege('pgsweep.partition_detach', 'SELECT') END"
    ).fetchone()
    if not (readable and readable[0]):
        return {}
    rows = conn.execute(
        "SELECT d.parent::text, coalesce(to_regclass(d.partition)::text, d.partition),"
        "       CASE WHEN i.inhrelid IS NULL THEN 'standalone' ELSE 'pending' END"
        " FROM pgsweep.partition_detach d"
        " LEFT JOIN pg_inherits i ON i.inhrelid = to_regclass(d.partition)"
        " WHERE to_regclass(d.partition) IS NOT NULL"
        "   AND (i.inhrelid IS NULL OR i.inhdetachpending)"
    ).fetchall()
    found: dict[str, dict[str, str]] = {}
    for parent, partition, state in rows:
        found.setdefault(str(parent), {})[str(partition)] = str(state)
    return found


def _detach_evidence(pending: str | None, recorded: dict[str, str] | None) -> str:
    """What a check says of a table's half-done detaches: a cleanup's own (recorded; the next
    cleanup finishes them) and another session's (left to it)."""
    recorded = recorded or {}
    said = []
    ours = [p for p, state in recorded.items() if state == "pending"]
    if ours:
        said.append(
            f"half-detached by a cleanup's DETACH CONCURRENTLY: {', '.join(ours)}"
            " (its rows hidden from the table); pgsweep cleanup finishes it"
        )
    alone = [p for p, state in recorded.items() if state == "standalone"]
    if alone:
        said.append(
            f"detached by a cleanup, neither dropped nor attached again: {', '.join(alone)};"
            " pgsweep cleanup finishes it"
        )
    theirs = [p for p in (pending or "").split(", ") if p and p not in recorded]
    if theirs:
        said.append(
            f"half-detached by another session's DETACH CONCURRENTLY: {', '.join(theirs)}"
            " (its rows hidden from the table); that session's FINALIZE finishes it"
        )
    return "; ".join(said)


def partition_checks(conn: Connection) -> list[Check]:
    """Per rule on a partitioned table: whether its partitions' bounds select the garbage (range
    on the rule's column alone), which partitions past the cutoff a cleanup removes whole (no
    index involved: the bounds are the check), and any partition a concurrent detach left
    half-done (the next cleanup finishes it)."""
    rules = conn.execute(
        "SELECT r.table_name::text, r.column_name::text, pg_get_partkeydef(r.table_name),"
        " (SELECT string_agg(e.partition::text, ', ' ORDER BY e.partition::text)"
        "    FROM pgsweep.expired_partitions(r) e),"
        " (SELECT string_agg(i.inhrelid::regclass::text, ', ') FROM pg_inherits i"
        "   WHERE i.inhparent = r.table_name AND i.inhdetachpending),"
        " (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = r.table_name)"
        " FROM pgsweep.expiry_rule r JOIN pg_class c ON c.oid = r.table_name"
        " WHERE c.relkind = 'p' AND pgsweep.rule_problem(r) IS NULL ORDER BY 1, 2"
    ).fetchall()
    recorded = _recorded_detaches(conn)
    checks = []
    for table, column, key, expired, pending, count in rules:
        name = f"partitions {table}.{column}"
        ranged = conn.execute(
            "SELECT EXISTS (SELECT FROM pg_partitioned_table p JOIN pg_attribute a"
            " ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
            " WHERE p.partrelid = %s::regclass AND p.partstrat = 'r' AND p.partnatts = 1"
            " AND a.attname = %s)",
            (table, column),
        ).fetchone()
        if not (ranged and ranged[0]):
            evidence = f"{key}: not by range of {column} alone, so every partition is row-deleted"
            checks.append(Check(name, True, evidence))
        elif pending or recorded.get(str(table)):
            checks.append(Check(name, False, _detach_evidence(pending, recorded.get(str(table)))))
        else:
            whole = (
                f"past the cutoff, removed whole by the bounds: {expired}"
                if expired
                else ("none past the cutoff now")
            )
            checks.append(Check(name, True, f"{key}, {count} partitions; {whole}"))
    return checks


# --- pg_cron ---------------------------------------------------------------------------------


def cron_checks(
    dsn: str, conn: Connection, job_name: str | None, also_sweeping: str | None = None
) -> list[Check]:
    """The job that sweeps this database; ``also_sweeping`` names an app's own cleanup routine
    that counts as one (the reference app's runbook job)."""
    title = f"pg_cron job {job_name}" if job_name else "pg_cron job"
    try:
        cron_db = cron.cron_database(conn)
    except CronUnavailable as exc:
        return [
            Check(
                title,
                False,
                f"{exc}: nothing schedules the cleanup (run `pgsweep run`, or verify --no-cron)",
            )
        ]
    database = str(_one(conn, "SELECT current_database()"))
    try:
        with _read_only(dsn, conn, cron_db, database) as cconn:
            return _job_checks(cconn, title, job_name, database, cron_db, also_sweeping)
    except PgsweepError as exc:
        return [Check(title, False, f"cannot read the cron database {cron_db!r}: {exc}")]


@contextmanager
def _read_only(dsn: str, conn: Connection, cron_db: str, database: str) -> Iterator[Connection]:
    if cron_db == database:
        yield conn
        return
    target = dsn if dbname_of(dsn) == cron_db else with_dbname(dsn, cron_db)
    with db.connect(target, autocommit=False) as other:
        other.read_only = True
        try:
            yield other
        finally:
            other.rollback()


def _job_checks(
    conn: Connection,
    title: str,
    job_name: str | None,
    database: str,
    cron_db: str,
    also_sweeping: str | None = None,
) -> list[Check]:
    if not cron.has_cron_tables(conn):
        return [Check(title, False, f"the pg_cron extension is not created in {cron_db!r}")]
    if job_name:
        job = cron.find_job(conn, job_name, database)
        wanted = f"no job {job_name!r} for database {database!r}"
    else:
        sweeping = cron.find_sweep_jobs(conn, database)
        if not sweeping and also_sweeping:
            sweeping = cron.find_jobs_running(conn, database, also_sweeping)
        job = sweeping[0] if sweeping else None
        wanted = f"no job sweeps database {database!r}"
    if job is None:
        where = f"in cron database {cron_db!r}"
        return [Check(title, False, f"missing: {wanted} {where} (pgsweep schedule)")]
    title = f"pg_cron job {job.name}"
    runs_app_cleanup = also_sweeping is not None and also_sweeping in job.command.lower()
    runs_cleanup = cron.sweeps_every_rule(job.command) or runs_app_cleanup
    where = f"jobid {job.jobid} in {cron_db!r}"
    evidence = f"{where}, schedule '{job.schedule}', command {job.command!r}, as {job.username}"
    if not job.active:
        checks = [Check(title, False, f"INACTIVE: {evidence}")]
    elif not runs_cleanup:
        checks = [Check(title, False, f"its command does not sweep every rule: {evidence}")]
    elif runs_app_cleanup:
        checks = [Check(title, True, f"active, {evidence}: the app's cleanup (its own rules)")]
    else:
        checks = [Check(title, True, f"active, {evidence}")]
    checks.append(_last_run_check(conn, job))
    prune = cron.find_job(conn, cron.PRUNE_JOB, cron_db)
    prune_title = f"pg_cron job {cron.PRUNE_JOB}"
    if prune is None or not prune.active:
        state = "missing" if prune is None else "INACTIVE"
        checks.append(
            Check(
                prune_title,
                False,
                f"{state}: cron.job_run_details in {cron_db!r} grows without bound"
                " (pgsweep schedule registers it)",
            )
        )
    else:
        checks.append(
            Check(prune_title, True, f"active, schedule '{prune.schedule}', {prune.command!r}")
        )
    return checks


def _last_run_check(conn: Connection, job: cron.Job) -> Check:
    title = f"pg_cron last run of {job.name}"
    run = cron.last_run(conn, job.jobid)
    if run is None:
        return Check(title, True, "no run recorded yet")
    when = _when(run.start_time)
    if run.status == "succeeded":
        took = ""
        if run.start_time and run.end_time:
            took = f", took {(run.end_time - run.start_time).total_seconds():.1f} s"
        return Check(title, True, f"succeeded, started {when}{took}: {run.message}")
    if run.status in ("starting", "running"):
        return Check(title, True, f"{run.status} since {when}")
    return Check(title, False, f"{run.status} at {when}: {run.message}")


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "(unknown time)"
    utc = moment.astimezone(dt.UTC)
    ago = dt.datetime.now(dt.UTC) - utc
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC ({format_age(ago.total_seconds())} ago)"


def format_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def _one(conn: Connection, query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]
