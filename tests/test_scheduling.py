"""pg_cron: what 0007 registers (and 0009 points at every rule), what their rollbacks do,
``pgsweep schedule``/``unschedule`` for a database that is not the cron database, and verify's
pg_cron faults.

The session's server names ``postgres`` as its cron database, so this module starts its own
cluster whose cron database is ``matcha``: there the app's database IS the cron database.
``other`` on the same server is the common production case (schedule_in_database).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgsweep import cron, errors, migrate, verify
from pgsweep_testing.localpg import LocalCluster
from tests.cli import matcha_time, pgsweep
from tests.pg import PgServer, connect
from tests.sqlrun import down_file, psql_file, psql_ok, up_file

CRON_DB = "matcha"
OTHER_DB = "other"
RUNBOOK = ("cleanup-expired-tokens", "0 2 * * *", "SELECT cleanup_all_expired_tokens();")
SWEEPING = (RUNBOOK[0], RUNBOOK[1], cron.SWEEP_COMMAND)  # the same job from 0009 on


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    probe = LocalCluster(cron_database=CRON_DB)
    with probe as started:
        if not started.has_pg_cron:
            pytest.skip("pg_cron is not installed (postgresql-15-cron)")
        with connect(started.dsn()) as admin:
            admin.execute(f"CREATE DATABASE {CRON_DB}")
            admin.execute(f"CREATE DATABASE {OTHER_DB}")
        with connect(started.dsn(CRON_DB)) as conn:
            conn.execute("CREATE EXTENSION pg_cron")
        yield started


@pytest.fixture
def matcha(cluster: LocalCluster) -> Iterator[str]:
    """The cron database, empty of pgsweep objects and of cron jobs, before and after."""
    dsn = cluster.dsn(CRON_DB)
    reset(dsn)
    yield dsn
    reset(dsn)


@pytest.fixture
def other(cluster: LocalCluster) -> Iterator[str]:
    dsn = cluster.dsn(OTHER_DB)
    migrate.upgrade(dsn, "head")
    yield dsn
    migrate.downgrade(dsn, "base")


def reset(dsn: str) -> None:
    if migrate.current(dsn) is not None:
        migrate.downgrade(dsn, "base")
    with connect(dsn) as conn:
        conn.execute("SELECT cron.unschedule(jobid) FROM cron.job")
        conn.execute("DELETE FROM cron.job_run_details")


def jobs(dsn: str) -> dict[str, tuple[Any, ...]]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT jobname, schedule, command, database, active, jobid FROM cron.job"
        ).fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


def tracked(dsn: str) -> dict[str, int]:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT jobname, jobid FROM pgsweep.scheduled_job").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def cron_failures(dsn: str, job_name: str | None = None) -> dict[str, str]:
    report = verify.verify(dsn, job_name=job_name)
    return {c.name: c.evidence for c in report.failures}


def test_0007_schedules_the_runbook_job_and_the_pruning_job_in_the_cron_database(
    matcha: str,
) -> None:
    migrate.upgrade(matcha, "0007")
    found = jobs(matcha)
    name, schedule, command = RUNBOOK
    assert found[name][:4] == (schedule, command, CRON_DB, True)
    prune = found[cron.PRUNE_JOB]
    assert prune[:4] == ("30 3 * * *", cron.prune_command(14), CRON_DB, True)
    assert tracked(matcha) == {name: found[name][4], cron.PRUNE_JOB: prune[4]}


def test_0009_points_the_runbook_job_at_every_rule_and_its_rollback_points_it_back(
    matcha: str,
) -> None:
    migrate.upgrade(matcha, "0007")
    before = jobs(matcha)
    migrate.upgrade(matcha, "0009")
    after = jobs(matcha)
    name, schedule, command = SWEEPING
    assert after[name] == (schedule, command, CRON_DB, True, before[name][4])  # same job
    assert after[cron.PRUNE_JOB] == before[cron.PRUNE_JOB]
    # 0009 is behind the head now (its engine too): the job checks are what this is about.
    behind = {"engine", "revision"}
    assert {k: v for k, v in cron_failures(matcha).items() if k not in behind} == {}
    psql_ok(matcha, down_file("0009"))
    assert jobs(matcha) == before
    psql_ok(matcha, up_file("0009"))
    assert jobs(matcha) == after


def test_rerunning_0007_is_idempotent(matcha: str) -> None:
    migrate.upgrade(matcha, "0007")
    first = jobs(matcha)
    done = psql_file(matcha, up_file("0007"))
    assert done.returncode == 0, done.stderr
    assert "already scheduled" in done.stderr
    assert jobs(matcha) == first


def test_0007_leaves_a_job_it_did_not_create_and_its_rollback_keeps_it(matcha: str) -> None:
    migrate.upgrade(matcha, "0006")
    with connect(matcha) as conn:
        conn.execute(
            "SELECT cron.schedule('cleanup-expired-tokens', '0 4 * * *',"
            " 'SELECT cleanup_all_expired_tokens();')"
        )
        conn.execute("SELECT cron.schedule('someone-elses', '0 5 * * *', 'SELECT 1')")
    by_hand = jobs(matcha)
    migrate.upgrade(matcha, "head")
    after = jobs(matcha)
    assert after["cleanup-expired-tokens"] == by_hand["cleanup-expired-tokens"]  # untouched
    # The runbook's job, made by hand, still counts as the app's nightly cleanup for verify.
    evidence = {c.name: c for c in verify.verify(matcha).checks}
    assert evidence["pg_cron job cleanup-expired-tokens"].ok is True
    assert "the app's cleanup" in evidence["pg_cron job cleanup-expired-tokens"].evidence
    assert set(tracked(matcha)) == {cron.PRUNE_JOB}
    migrate.downgrade(matcha, "0006")
    assert jobs(matcha) == by_hand  # only the pruning job, 0007's own, is gone


def test_the_rollback_removes_exactly_its_jobs_and_up_again_restores_them(matcha: str) -> None:
    migrate.upgrade(matcha, "0007")
    with connect(matcha) as conn:
        conn.execute("SELECT cron.schedule('someone-elses', '0 5 * * *', 'SELECT 1')")
    psql_ok(matcha, down_file("0007"))
    assert set(jobs(matcha)) == {"someone-elses"}
    assert migrate.current(matcha) == "0006"
    psql_ok(matcha, down_file("0007"))  # again: nothing to remove, no error
    migrate.upgrade(matcha, "head")
    assert set(jobs(matcha)) == {"someone-elses", *(RUNBOOK[:1]), cron.PRUNE_JOB}


def test_0007_registers_nothing_and_says_why_outside_the_cron_database(
    matcha: str, cluster: LocalCluster
) -> None:
    dsn = cluster.dsn(OTHER_DB)
    migrate.upgrade(dsn, "0006")
    try:
        done = psql_file(dsn, up_file("0007"))
        assert done.returncode == 0, done.stderr
        assert "no pg_cron job registered: this database (other) is not cron.database_name" in (
            done.stderr
        )
        assert jobs(matcha) == {}
        psql_ok(dsn, down_file("0007"))  # nothing was added: the rollback still succeeds
        assert migrate.current(dsn) == "0006"
    finally:
        migrate.downgrade(dsn, "base")


def test_schedule_from_outside_registers_the_job_in_the_cron_database(
    matcha: str, other: str, capsys: pytest.CaptureFixture[str]
) -> None:
    failures = cron_failures(other)
    assert list(failures) == ["pg_cron job"]
    assert failures["pg_cron job"].startswith("missing: no job sweeps database 'other'")

    done = pgsweep(capsys, "schedule", "--dsn", other, "--json")
    assert done.code == 0, done.err
    document = done.json()
    assert document["cron_database"] == CRON_DB
    assert document["job"]["database"] == OTHER_DB
    assert document["job"]["command"] == cron.SWEEP_COMMAND
    assert document["prune_job"]["database"] == CRON_DB
    assert cron_failures(other) == {}
    # The cron database read through its own connection string (other credentials, in life).
    assert verify.verify(other, cron_dsn=matcha).ok

    # From the cron database, naming the app's database, and as the short-transaction variant
    # (a schedule that cannot come due while the test runs: a run would change the verdict).
    done = pgsweep(
        capsys,
        "schedule",
        "--dsn",
        matcha,
        "--database",
        OTHER_DB,
        "--cron",
        "7 4 1 1 *",
        "--procedure",
    )
    assert done.code == 0, done.err
    assert jobs(matcha)[cron.DEFAULT_JOB][:3] == ("7 4 1 1 *", cron.SWEEP_COMMAND, OTHER_DB)
    assert cron_failures(other) == {}

    removed = pgsweep(capsys, "unschedule", "--dsn", other)
    assert removed.code == 0
    assert f"unscheduled {cron.DEFAULT_JOB}" in removed.out
    assert set(jobs(matcha)) == {cron.PRUNE_JOB}
    again = pgsweep(capsys, "unschedule", "--dsn", other)
    assert (again.code, "nothing to remove" in again.out) == (0, True)


def test_schedule_refuses_what_would_not_work(
    matcha: str, other: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = pgsweep(capsys, "schedule", "--dsn", other, "--cron", "every night")
    assert bad.code == errors.EXIT_USAGE
    assert "invalid cron expression 'every night'" in bad.err
    assert "Traceback" not in bad.err
    missing = pgsweep(capsys, "schedule", "--dsn", other, "--database", "nope")
    assert missing.code == errors.EXIT_USAGE
    assert "database 'nope' does not exist" in missing.err
    behind = pgsweep(capsys, "schedule", "--dsn", matcha)  # matcha is at no revision at all
    assert behind.code == errors.EXIT_BEHIND
    # One name, two databases: pg_cron would silently move the first job to the second.
    migrate.upgrade(matcha, "head")
    clash = pgsweep(capsys, "schedule", "--dsn", other, "--job-name", RUNBOOK[0])
    assert clash.code == errors.EXIT_USAGE
    assert "already runs in database 'matcha'" in clash.err
    # A second job sweeping one database would run beside the first.
    twin = pgsweep(capsys, "schedule", "--dsn", matcha)
    assert twin.code == errors.EXIT_USAGE
    assert f"pg_cron job {RUNBOOK[0]!r}" in twin.err
    assert "already sweeps database 'matcha'" in twin.err
    named = pgsweep(capsys, "schedule", "--dsn", other, "--job-name", "cleanup-other")
    assert named.code == 0
    assert cron_failures(other, "cleanup-other") == {}
    assert jobs(matcha)[RUNBOOK[0]][2] == CRON_DB
    unnamed = pgsweep(capsys, "unschedule", "--dsn", other, "--job-name", "cleanup-other")
    assert unnamed.code == 0
    assert "cleanup-other" not in jobs(matcha)


def test_verify_is_red_for_each_pg_cron_fault_and_green_once_repaired(
    matcha: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(matcha, "head")
    assert cron_failures(matcha) == {}

    # A missing job.
    gone = pgsweep(capsys, "unschedule", "--dsn", matcha, "--job-name", RUNBOOK[0])
    assert gone.code == 0
    assert cron_failures(matcha)["pg_cron job"].startswith("missing")
    assert pgsweep(capsys, "schedule", "--dsn", matcha).code == 0
    assert cron_failures(matcha) == {}
    jobid = jobs(matcha)[cron.DEFAULT_JOB][4]
    job = f"pg_cron job {cron.DEFAULT_JOB}"

    # A job that sweeps one table only.
    with connect(matcha) as conn:
        conn.execute(
            "SELECT cron.alter_job(%s, command => 'CALL pgsweep.sweep(''refresh_tokens'')')",
            (jobid,),
        )
    assert cron_failures(matcha)[job].startswith("its command does not sweep every rule")
    with connect(matcha) as conn:
        conn.execute("SELECT cron.alter_job(%s, command => %s)", (jobid, cron.SWEEP_COMMAND))

    # An inactive job.
    with connect(matcha) as conn:
        conn.execute("SELECT cron.alter_job(%s, active => false)", (jobid,))
    assert cron_failures(matcha)[job].startswith("INACTIVE")
    with connect(matcha) as conn:
        conn.execute("SELECT cron.alter_job(%s, active => true)", (jobid,))
    assert cron_failures(matcha) == {}

    # A failed last run (what pg_cron records when the command raises).
    record_run(
        matcha,
        jobid,
        "failed",
        "ERROR:  function cleanup_all_expired_tokens() does not exist",
        "2 hours",
    )
    failures = cron_failures(matcha)
    last_run = f"pg_cron last run of {cron.DEFAULT_JOB}"
    assert list(failures) == [last_run]
    assert failures[last_run].startswith("failed at ")
    assert "does not exist" in failures[last_run]
    record_run(matcha, jobid, "succeeded", "1 row", "1 hour")
    assert cron_failures(matcha) == {}
    shown = pgsweep(capsys, "verify", "--dsn", matcha)
    assert f"PASS  {last_run}: succeeded, started" in shown.out

    # No pruning job: cron.job_run_details would grow forever.
    with connect(matcha) as conn:
        conn.execute("SELECT cron.unschedule(%s)", (cron.PRUNE_JOB,))
    assert cron_failures(matcha)["pg_cron job pgsweep-prune-cron-history"].startswith("missing")
    assert pgsweep(capsys, "schedule", "--dsn", matcha).code == 0
    assert cron_failures(matcha) == {}


def record_run(dsn: str, jobid: int, status: str, message: str, ago: str) -> None:
    with connect(dsn) as conn:
        conn.execute(
            "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username,"
            " command, status, return_message, start_time, end_time)"
            " VALUES (%s, nextval('cron.runid_seq'), 0, %s, current_user, %s, %s, %s,"
            " now() - %s::interval, now() - %s::interval + interval '1 second')",
            (jobid, CRON_DB, RUNBOOK[2], status, message, ago, ago),
        )


def test_without_pg_cron_the_upgrade_succeeds_and_scheduling_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with LocalCluster(preload_cron=False) as bare:
        with connect(bare.dsn()) as admin:
            admin.execute("CREATE DATABASE matcha")
        dsn = bare.dsn("matcha")
        up = matcha_time(capsys, "upgrade", "--dsn", dsn)
        assert up.code == 0, up.err
        assert "no pg_cron job registered: pg_cron is not" in up.out
        scheduled = pgsweep(capsys, "schedule", "--dsn", dsn)
        assert scheduled.code == errors.EXIT_CRON_UNAVAILABLE
        assert "pg_cron is not" in scheduled.err
        red = pgsweep(capsys, "verify", "--dsn", dsn)
        assert red.code == errors.EXIT_FAILED
        assert "FAIL  pg_cron job: pg_cron is not" in red.out
        assert pgsweep(capsys, "verify", "--no-cron", "--dsn", dsn).code == 0
        down = matcha_time(capsys, "downgrade", "0006", "--yes", "--dsn", dsn)
        assert down.code == 0


def test_schedule_needs_the_extension_in_the_cron_database(
    fresh_db: str, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "head")
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT current_setting('cron.database_name', true) = current_database(),"
            " EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron')"
        ).fetchone()
    assert row is not None
    if row[0] and row[1]:
        pytest.skip("the session server's cron database already has pg_cron")
    done = pgsweep(capsys, "schedule", "--dsn", fresh_db)
    assert done.code == errors.EXIT_CRON_UNAVAILABLE
    assert "pg_cron" in done.err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--job-name", ""], "the job name must not be empty"),
        (["--cron", "0 0 2 * * *"], "pg_cron needs 5 fields"),
        (["--cron", "@fortnightly"], "pg_cron's macros are"),
        (["--command", "SELEC 1"], 'syntax error at or near "SELEC"'),
        (["--command", "SELECT cleanup_all_expired_token()"], "does not exist"),
        (["--command", "CALL pgsweep.sweep("], "mismatched parentheses"),
        (["--command", "SELECT 1; SELEC 2"], 'syntax error at or near "SELEC"'),
        (["--command", "  ;"], "must not be empty"),
    ],
)
def test_schedule_refuses_bad_input_before_it_schedules_anything(
    matcha: str, other: str, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    before = jobs(matcha)
    done = pgsweep(capsys, "schedule", "--dsn", other, *argv)
    assert done.code == errors.EXIT_USAGE, done.err
    assert says in done.err
    assert "Traceback" not in done.err
    assert jobs(matcha) == before
    as_json = pgsweep(capsys, "schedule", "--dsn", other, "--json", *argv)
    assert as_json.json()["exit_code"] == errors.EXIT_USAGE
    assert as_json.json()["ok"] is False


def test_schedule_changes_only_what_it_is_given_and_says_created_updated_unchanged(
    matcha: str, other: str, capsys: pytest.CaptureFixture[str]
) -> None:
    created = pgsweep(capsys, "schedule", "--dsn", other, "--cron", "7 4 1 1 *", "--json")
    assert created.code == 0, created.out
    assert (created.json()["ok"], created.json()["action"]) == (True, "created")

    # --command alone keeps the schedule; --cron alone keeps the command.
    command = "SELECT count(*) FROM refresh_tokens;"
    changed = pgsweep(capsys, "schedule", "--dsn", other, "--command", command)
    assert changed.code == 0, changed.err
    assert changed.out.startswith(f"updated {cron.DEFAULT_JOB}")
    assert jobs(matcha)[cron.DEFAULT_JOB][:3] == ("7 4 1 1 *", command, OTHER_DB)
    again = pgsweep(capsys, "schedule", "--dsn", other, "--json")
    assert again.json()["action"] == "unchanged"
    assert again.json()["prune_action"] == "unchanged"
    assert jobs(matcha)[cron.DEFAULT_JOB][:3] == ("7 4 1 1 *", command, OTHER_DB)
    moved = pgsweep(capsys, "schedule", "--dsn", other, "--cron", "@daily", "--json")
    assert moved.json()["action"] == "updated"
    assert jobs(matcha)[cron.DEFAULT_JOB][:2] == ("@daily", command)

    # A new job (another name) gets the defaults, and the human output says "scheduled".
    fresh = pgsweep(capsys, "schedule", "--dsn", other, "--job-name", "cleanup-two")
    assert fresh.out.startswith("scheduled cleanup-two")
    assert jobs(matcha)["cleanup-two"][:2] == (cron.DEFAULT_SCHEDULE, cron.SWEEP_COMMAND)


def test_schedule_and_unschedule_reach_the_cron_database_through_cron_dsn(
    matcha: str, other: str, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/matcha"
    for command in ("schedule", "unschedule"):
        refused = pgsweep(capsys, command, "--dsn", other, "--cron-dsn", unreachable)
        assert refused.code == errors.EXIT_CANNOT_CONNECT, refused.err
        assert "cannot connect to" in refused.err
        assert "nobody" in refused.err
    assert cron.DEFAULT_JOB not in jobs(matcha)
    done = pgsweep(capsys, "schedule", "--dsn", other, "--cron-dsn", matcha, "--json")
    assert done.code == 0, done.out
    assert done.json()["job"]["database"] == OTHER_DB
    removed = pgsweep(capsys, "unschedule", "--dsn", other, "--cron-dsn", matcha, "--json")
    assert removed.json()["ok"] is True
    assert [j["name"] for j in removed.json()["removed"]] == [cron.DEFAULT_JOB]


def test_a_dry_run_of_schedule_checks_and_shows_the_job_and_schedules_nothing(
    matcha: str, other: str, capsys: pytest.CaptureFixture[str]
) -> None:
    preview = pgsweep(capsys, "schedule", "--dsn", other, "--cron", "7 4 1 1 *", "--dry-run")
    assert preview.code == 0, preview.err
    assert preview.out.startswith(f"would be scheduled: {cron.DEFAULT_JOB} (a new job)")
    assert "'7 4 1 1 *' runs 'CALL pgsweep.sweep();'" in preview.out
    assert jobs(matcha) == {}
    bad = pgsweep(capsys, "schedule", "--dsn", other, "--command", "SELEC 1", "--dry-run")
    assert bad.code == errors.EXIT_USAGE  # checked as a real schedule would be
    assert pgsweep(capsys, "schedule", "--dsn", other).code == 0
    before = jobs(matcha)
    change = pgsweep(capsys, "schedule", "--dsn", other, "--cron", "@daily", "--dry-run", "--json")
    document = change.json()
    assert (document["dry_run"], document["action"]) == (True, "updated")
    assert document["job"]["schedule"] == "@daily"
    assert jobs(matcha) == before
