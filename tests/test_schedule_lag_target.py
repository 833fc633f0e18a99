"""The default schedule (nightly) and the lag target agree: ``pgsweep schedule`` raises the
database's default lag target to what its schedule can keep, so health and verify stop going
red most of every day for a lag no run was due to prevent, and status's ETA counts from the
next sweep, never from now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from pgsweep import cron, engine, health, verify
from pgsweep_testing.localpg import LocalCluster
from tests.cli import pgsweep
from tests.cron_cluster import cron_cluster
from tests.pg import connect

APP_DB = "app"


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[LocalCluster, str]]:
    """A cluster with pg_cron; the app's database with the engine and a rule whose oldest
    garbage expired three hours ago: over the 1 h default, well within a nightly schedule."""
    with cron_cluster(APP_DB) as (cluster, dsn):
        engine.install(dsn)
        with connect(dsn) as conn:
            conn.execute(
                "CREATE TABLE sessions (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL);"
                "CREATE INDEX ON sessions (expires_at);"
                "SELECT pgsweep.add_rule('sessions', 'expires_at');"
                "INSERT INTO sessions SELECT i, now() - interval '3 hours' + i * interval '1 s'"
                " FROM generate_series(1, 100) i"
            )
        yield cluster, dsn


def lag_is_ok(dsn: str) -> bool:
    checks = {c.name: c for c in verify.verify(dsn, check_cron=False).checks}
    return bool(checks["lag sessions.expires_at"].ok)


def test_the_longest_gap_and_the_lag_each_schedule_can_keep() -> None:
    assert cron.longest_gap_s(cron.DEFAULT_SCHEDULE) == 86_400
    assert cron.keepable_lag_s(86_400) == 86_400 + 3_600
    assert cron.longest_gap_s("*/5 * * * *") == 300
    assert cron.keepable_lag_s(300) == 600  # a short gap: the run's margin is the gap itself
    assert cron.longest_gap_s("0 2 * * 1-5") == 3 * 86_400  # Friday to Monday
    assert cron.longest_gap_s("@hourly") == 3_600
    assert cron.longest_gap_s("@reboot") is None


def test_schedule_sets_the_default_lag_target_its_nightly_job_can_keep(
    app: tuple[LocalCluster, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dsn = app
    assert not lag_is_ok(dsn)  # the 1 h default against a 3 h lag
    assert health.health(dsn).status == health.CRITICAL

    dry = pgsweep(capsys, "schedule", "--dry-run", "--dsn", dsn)
    assert dry.code == 0, dry.err
    assert f"default lag target of '{APP_DB}' would be 1d 1h (was 1h 0m)" in dry.out, dry.out
    assert not lag_is_ok(dsn)  # a dry run changes nothing

    done = pgsweep(capsys, "schedule", "--json", "--dsn", dsn)
    assert done.code == 0, done.err
    lag = done.json()["lag_target"]
    assert lag["changed"] is True
    assert (lag["before_s"], lag["after_s"], lag["longest_gap_s"]) == (3600, 90000, 86400)
    # Every new session (health, verify, the exporter, the job) judges by the new default.
    assert lag_is_ok(dsn)
    rules = next(c for c in health.health(dsn).checks if c.name == "rules")
    assert "over its target" not in rules.summary, rules.summary

    again = pgsweep(capsys, "schedule", "--dsn", dsn)
    assert again.code == 0, again.err
    assert f"default lag target of '{APP_DB}': 1d 1h" in again.out, again.out


def test_a_rule_whose_own_target_the_schedule_cannot_keep_is_named(
    app: tuple[LocalCluster, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dsn = app
    with connect(dsn) as conn:
        conn.execute("SELECT pgsweep.set_lag_target('sessions', 'expires_at', '15 minutes')")
    try:
        done = pgsweep(capsys, "schedule", "--dsn", dsn)
        assert done.code == 0, done.err
        assert "rule sessions.expires_at has its own lag target 15m" in done.out, done.out
    finally:
        with connect(dsn) as conn:
            conn.execute("SELECT pgsweep.set_lag_target('sessions', 'expires_at', NULL)")


def test_status_counts_the_backlogs_eta_from_the_next_scheduled_sweep(
    app: tuple[LocalCluster, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dsn = app
    assert pgsweep(capsys, "schedule", "--dsn", dsn).code == 0
    with connect(dsn) as conn:
        # A delete rate measured: a run that deleted rows yesterday.
        conn.execute("SELECT pgsweep.sweep_table('sessions'::regclass)")
        conn.execute(
            "INSERT INTO sessions SELECT i, now() - interval '3 hours' + i * interval '1 s'"
            " FROM generate_series(1, 100) i"
        )
    shown = pgsweep(capsys, "status", "--json", "--dsn", dsn)
    assert shown.code == 0, shown.err
    next_at = dt.datetime.fromisoformat(shown.json()["next_sweep_at"])
    assert (next_at.hour, next_at.minute) == (2, 0)  # the nightly job, 02:00 GMT
    assert next_at > dt.datetime.now(dt.UTC)
    text = pgsweep(capsys, "status", "--dsn", dsn).out
    assert f"the next sweep at {next_at.astimezone(dt.UTC):%Y-%m-%d} 02:00 UTC" in text, text
    assert "gone in 0s" not in text
    cron_less = pgsweep(capsys, "unschedule", "--dsn", dsn)
    assert cron_less.code == 0
    text = pgsweep(capsys, "status", "--dsn", dsn).out
    assert "of sweeping once a sweep runs (no pg_cron job seen)" in text, text
