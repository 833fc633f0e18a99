"""Time zones are explicit: a rule on a ``timestamp without time zone`` column reads its values
in the rule's zone (UTC unless it says otherwise), never in the sweeping session's TimeZone nor
the server's. Sessions ahead of UTC (Asia/Kolkata +5:30, Pacific/Kiritimati +14) and behind it
(America/Los_Angeles, Pacific/Pago_Pago -11), in several DateStyles, count and delete exactly the
rows that expired a second ago and keep those expiring in a minute (a second would flip on a
slow machine); the rows an hour to thirteen hours either side are the ones a cutoff taken in
the session's zone would misjudge. pg_cron, whose sessions take the server's TimeZone,
likewise (a soak test: it waits for a cron minute).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgsweep import cleanup, cron, engine, verify
from pgsweep.dsn import conninfo
from tests import own_tables
from tests.cli import pgsweep
from tests.cron_cluster import cron_cluster
from tests.own_tables import ATTRIBUTES, SESSIONS
from tests.pg import connect

ZONES = ("Asia/Kolkata", "Pacific/Kiritimati", "America/Los_Angeles", "Pacific/Pago_Pago")
DATE_STYLES = ("ISO, MDY", "SQL, DMY", "Postgres, DMY", "German")
# Whole hours either side of now: rows a cutoff in any session zone from -13 h to +14 h would
# put on the wrong side.
HOURS = [h for h in range(-13, 14) if h != 0]
EXPECTED_GARBAGE = sum(1 for h in HOURS if h < 0) + 1  # + the one expired a second ago
EXPECTED_LEFT = Counter({"live": sum(1 for h in HOURS if h > 0), "soon": 1})


@pytest.fixture(scope="module")
def tz_db(module_db: str) -> str:
    """The engine, and ``wall`` holding UTC (the default zone) and ``ny`` holding New York
    wall-clock times (p_value_zone => 'America/New_York')."""
    engine.install(module_db)
    with connect(module_db) as conn:
        for table in ("wall", "ny"):
            conn.execute(
                f"CREATE TABLE {table} (id serial PRIMARY KEY, label text NOT NULL,"
                " expires_at timestamp(3) without time zone NOT NULL)"
            )
            conn.execute(f"CREATE INDEX ON {table} (expires_at)")
        conn.execute("SELECT pgsweep.add_rule('wall', 'expires_at')")
        conn.execute(
            "SELECT pgsweep.add_rule('ny', 'expires_at', p_value_zone => 'America/New_York')"
        )
    return module_db


def seed(conn: psycopg.Connection[Any], table: str, zone: str) -> None:
    """Rows whose values are wall-clock times in ``zone``, relative to now()."""
    conn.execute(f"TRUNCATE {table}")
    wall = f"(now() AT TIME ZONE '{zone}')"
    conn.execute(
        f"INSERT INTO {table} (label, expires_at)"
        f" SELECT CASE WHEN h < 0 THEN 'expired' ELSE 'live' END, {wall} + h * interval '1 hour'"
        " FROM unnest(%s::int[]) h",
        (HOURS,),
    )
    conn.execute(
        f"INSERT INTO {table} (label, expires_at) VALUES"
        f" ('1s_ago', {wall} - interval '1 second'), ('soon', {wall} + interval '1 minute')"
    )


def left(conn: psycopg.Connection[Any], table: str) -> Counter[str]:
    return own_tables.labels(conn, table)


def in_session(dsn: str, zone: str, date_style: str) -> str:
    """``dsn`` with the session's TimeZone and DateStyle set by the connection itself."""
    return make_conninfo(
        conninfo(dsn), options=f"-c TimeZone={zone} -c DateStyle={date_style.replace(' ', '')}"
    )


@pytest.mark.parametrize("date_style", DATE_STYLES[:2])
@pytest.mark.parametrize("session_zone", ZONES)
def test_a_utc_rule_counts_and_deletes_the_same_rows_in_any_session_zone(
    tz_db: str, session_zone: str, date_style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    session = in_session(tz_db, session_zone, date_style)
    with connect(session) as conn:
        assert conn.execute("SHOW TimeZone").fetchone() == (session_zone,)
        # garbage_counts, in the transaction that wrote the rows (one now()).
        with conn.transaction():
            seed(conn, "wall", "UTC")
            counts = conn.execute("SELECT garbage FROM pgsweep.garbage_counts('wall')").fetchone()
            assert counts == (EXPECTED_GARBAGE,)
            status = cleanup.garbage(conn, "wall")
            assert status.total == EXPECTED_GARBAGE
        # CALL pgsweep.sweep(): a transaction per batch, small batches.
        seed(conn, "wall", "UTC")
        swept = conn.execute("CALL pgsweep.sweep('wall', 4, '0', NULL)").fetchone()
        assert swept == (EXPECTED_GARBAGE,)
        assert left(conn, "wall") == EXPECTED_LEFT
        # sweep_table, in the caller's transaction.
        seed(conn, "wall", "UTC")
        assert conn.execute("SELECT pgsweep.sweep_table('wall')").fetchone() == (EXPECTED_GARBAGE,)
        assert left(conn, "wall") == EXPECTED_LEFT
        seed(conn, "wall", "UTC")
    # The command, its session in that zone and style.
    dry = pgsweep(capsys, "cleanup", "--dry-run", "--table", "wall", "--dsn", session, "--json")
    assert dry.json()["would_delete"] == EXPECTED_GARBAGE
    done = pgsweep(capsys, "cleanup", "--table", "wall", "--dsn", session, "--json")
    assert done.json()["deleted"] == EXPECTED_GARBAGE
    with connect(tz_db) as conn:
        assert left(conn, "wall") == EXPECTED_LEFT


@pytest.mark.parametrize("date_style", DATE_STYLES[2:])
@pytest.mark.parametrize("session_zone", ["UTC", "Asia/Kolkata", "Pacific/Pago_Pago"])
def test_a_rule_declaring_new_york_reads_new_york_wall_clock_times_in_any_session_zone(
    tz_db: str, session_zone: str, date_style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    session = in_session(tz_db, session_zone, date_style)
    with connect(session) as conn:
        with conn.transaction():
            seed(conn, "ny", "America/New_York")
            assert conn.execute("SELECT garbage FROM pgsweep.garbage_counts('ny')").fetchone() == (
                EXPECTED_GARBAGE,
            )
        assert conn.execute(
            "SELECT value_zone FROM pgsweep.rules WHERE table_name = 'ny'"
        ).fetchone() == ("America/New_York",)
        seed(conn, "ny", "America/New_York")
        assert conn.execute("CALL pgsweep.sweep('ny', 5, '0', NULL)").fetchone() == (
            EXPECTED_GARBAGE,
        )
        assert left(conn, "ny") == EXPECTED_LEFT
        seed(conn, "ny", "America/New_York")
        assert conn.execute("SELECT pgsweep.sweep_table('ny')").fetchone() == (EXPECTED_GARBAGE,)
        assert left(conn, "ny") == EXPECTED_LEFT
        seed(conn, "ny", "America/New_York")
    # status judges and ages the rows as New York times: the newest garbage expired a second
    # ago, the oldest thirteen hours ago.
    document = pgsweep(capsys, "status", "--dsn", session, "--json").json()
    (ny,) = [t for t in document["tables"] if t["table"] == "ny"]
    assert (ny["garbage"], ny["active"]) == (EXPECTED_GARBAGE, sum(EXPECTED_LEFT.values()))
    (rule,) = ny["rules"]
    assert 0 < rule["newest_age_s"] < 5
    assert 13 * 3600 - 5 < rule["oldest_age_s"] < 13 * 3600 + 5
    done = pgsweep(capsys, "cleanup", "--table", "ny", "--dsn", session, "--json")
    assert done.json()["deleted"] == EXPECTED_GARBAGE
    with connect(tz_db) as conn:
        assert left(conn, "ny") == EXPECTED_LEFT


def test_a_date_rule_takes_todays_date_in_its_zone_not_in_the_sessions(tz_db: str) -> None:
    with connect(tz_db) as conn:
        row = conn.execute(
            "SELECT extract(hour FROM now() AT TIME ZONE 'UTC')::int,"
            " extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day'"
            "  - (now() AT TIME ZONE 'UTC'))"
        ).fetchone()
        assert row is not None
        hour, to_midnight = row
        if to_midnight < 10:
            pytest.skip("too close to midnight UTC: the date would change under the test")
        # A session zone whose date is not UTC's right now: Kiritimati (+14) from 10:00 UTC on,
        # Pago Pago (-11) before 11:00 UTC.
        zone = "Pacific/Kiritimati" if hour >= 10 else "Pacific/Pago_Pago"
        conn.execute(f"SET TimeZone = '{zone}'")
        assert conn.execute("SELECT current_date <> (now() AT TIME ZONE 'UTC')::date").fetchone()
        conn.execute("CREATE TEMP TABLE days (label text, d date)")
        conn.execute("CREATE INDEX ON days (d)")
        conn.execute(
            "INSERT INTO days SELECT l, (now() AT TIME ZONE 'UTC')::date + o FROM (VALUES"
            " ('yesterday', -1), ('today', 0), ('tomorrow', 1)) AS v (l, o)"
        )
        conn.execute("SELECT pgsweep.add_rule('pg_temp.days', 'd')")
        assert conn.execute(
            "SELECT garbage FROM pgsweep.garbage_counts('pg_temp.days')"
        ).fetchone() == (1,)
        assert conn.execute("SELECT pgsweep.sweep_table('pg_temp.days')").fetchone() == (1,)
        assert conn.execute("SELECT label FROM days ORDER BY d").fetchall() == [
            ("today",),
            ("tomorrow",),
        ]
        conn.execute("SELECT pgsweep.remove_rule('pg_temp.days')")


@pytest.mark.parametrize(
    ("column_type", "zone", "message"),
    [
        ("timestamp", "Mars/Olympus_Mons", 'unknown time zone "Mars/Olympus_Mons"'),
        ("timestamp", "", 'unknown time zone ""'),
        ("timestamptz", "UTC", "which carries no time zone to declare"),
        ("bigint", "UTC", "which carries no time zone to declare"),
        ("integer", "Europe/Berlin", "which carries no time zone to declare"),
    ],
)
def test_add_rule_refuses_an_unknown_zone_or_a_zone_on_a_column_that_has_none(
    tz_db: str, column_type: str, zone: str, message: str
) -> None:
    with connect(tz_db) as conn:
        conn.execute(f"CREATE TEMP TABLE t (v {column_type})")
        conn.execute("CREATE INDEX ON t (v)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=message) as raised:
            conn.execute("SELECT pgsweep.add_rule('t', 'v', '0', %s)", (zone,))
        assert raised.value.sqlstate == "22023"
        assert conn.execute(
            "SELECT count(*) FROM pgsweep.expiry_rule WHERE table_name = 'pg_temp.t'::regclass"
        ).fetchone() == (0,)


def test_a_timestamp_rule_without_a_zone_is_utc_and_a_named_zone_is_kept(tz_db: str) -> None:
    with connect(tz_db) as conn:
        conn.execute("SET TimeZone = 'Asia/Kolkata'")
        conn.execute("CREATE TEMP TABLE t (v timestamp, d date)")
        conn.execute("CREATE INDEX ON t (v)")
        conn.execute("CREATE INDEX ON t (d)")
        conn.execute("SELECT pgsweep.add_rule('t', 'v')")
        conn.execute("SELECT pgsweep.add_rule('t', 'd', '1 day', 'Europe/Berlin')")
        rows = conn.execute(
            "SELECT column_name::text, value_zone FROM pgsweep.rules"
            " WHERE table_name = 'pg_temp.t'::regclass::text ORDER BY 1"
        ).fetchall()
        assert rows == [("d", "Europe/Berlin"), ("v", "UTC")]
        # Changing the zone of an existing rule updates it.
        conn.execute("SELECT pgsweep.add_rule('t', 'v', '0', 'America/New_York')")
        assert conn.execute(
            "SELECT value_zone FROM pgsweep.expiry_rule"
            " WHERE table_name = 'pg_temp.t'::regclass AND column_name = 'v'"
        ).fetchone() == ("America/New_York",)
        conn.execute("SELECT pgsweep.remove_rule('pg_temp.t')")


# --- pg_cron ------------------------------------------------------------------------------------

SERVER_ZONE = "Asia/Kolkata"


def next_minute(conn: psycopg.Connection[Any], at_least_s: float = 8) -> dt.datetime:
    """The next minute boundary (UTC) at least ``at_least_s`` from the server's clock."""
    row = conn.execute(
        "SELECT date_trunc('minute', clock_timestamp() + %s * interval '1 second')"
        " + interval '1 minute'",
        (at_least_s,),
    ).fetchone()
    assert row is not None
    moment: dt.datetime = row[0]
    return moment


@pytest.mark.soak
def test_pg_cron_in_a_server_zone_ahead_of_utc_sweeps_exactly_the_expired_utc_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with cron_cluster(
        "app", background_workers=True, settings={"timezone": SERVER_ZONE}
    ) as (cluster, app):
        assert pgsweep(capsys, "install", "--dsn", app).code == 0
        with connect(app) as conn:
            assert conn.execute("SHOW TimeZone").fetchone() == (SERVER_ZONE,)
            own_tables.create(conn)
            # Live sessions up to 5 h 30 min ahead of UTC: a cutoff taken in the server's zone
            # would delete them all.
            conn.execute(
                'INSERT INTO sessions (label, "userId", "expiresAt")'
                " SELECT 'live', h, (now() AT TIME ZONE 'UTC') + h * interval '1 hour'"
                " FROM generate_series(1, 5) h"
            )
            conn.execute(
                'INSERT INTO sessions (label, "userId", "expiresAt")'
                " SELECT 'expired', h, (now() AT TIME ZONE 'UTC') - h * interval '1 hour'"
                " FROM generate_series(1, 5) h"
            )
            conn.execute(
                f"INSERT INTO {ATTRIBUTES} (bucket, label, ttl_timestamp) VALUES"
                " ('a', 'never', NULL), ('a', 'never', NULL),"
                " ('a', 'live', extract(epoch FROM now())::bigint + 3600),"
                " ('a', 'expired', extract(epoch FROM now())::bigint - 3600)"
            )
        done = pgsweep(capsys, "schedule", "--dsn", app, "--cron", "* * * * *")
        assert done.code == 0, done.err
        # Rows a second apart around the minute the job starts at. pg_cron starts a job up to
        # about a second after its minute, so which of them are garbage is judged from the
        # run's recorded start: expired before it, gone; due more than a second after it (the
        # job's transactions began within that second), kept.
        offsets = (-2, -1, 1, 2, 3, 4, 5)
        with connect(app) as conn:
            minute = next_minute(conn)
            for offset in offsets:
                at = minute + dt.timedelta(seconds=offset)
                conn.execute(
                    'INSERT INTO sessions (label, "userId", "expiresAt")'
                    " VALUES (%s, 0, %s::timestamptz AT TIME ZONE 'UTC')",
                    (f"m{offset:+d}", at),
                )
                conn.execute(
                    f"INSERT INTO {ATTRIBUTES} (bucket, label, ttl_timestamp) VALUES ('b', %s, %s)",
                    (f"m{offset:+d}", int(at.timestamp())),
                )
        with connect(cluster.dsn()) as cron_db:
            deadline = time.monotonic() + 150
            runs: list[tuple[Any, ...]] = []
            while time.monotonic() < deadline:
                runs = cron_db.execute(
                    "SELECT d.status, d.return_message, d.start_time FROM cron.job_run_details d"
                    " JOIN cron.job j USING (jobid) WHERE j.jobname = %s"
                    " AND d.status IN ('succeeded', 'failed') AND d.start_time >= %s"
                    " ORDER BY d.start_time",
                    (cron.DEFAULT_JOB, minute),
                ).fetchall()
                if runs:
                    break
                time.sleep(1)
        assert [(r[0], r[1]) for r in runs[:1]] == [("succeeded", "CALL")]
        started: dt.datetime = runs[0][2]
        print(
            f"\npg_cron started the sweep {(started - minute).total_seconds():.3f} s past {minute}"
        )
        gone = {f"m{o:+d}" for o in offsets if minute + dt.timedelta(seconds=o) < started}
        kept = {
            f"m{o:+d}"
            for o in offsets
            if minute + dt.timedelta(seconds=o) > started + dt.timedelta(seconds=1)
        }
        assert {"m-2", "m-1"} <= gone
        with connect(app) as conn:
            for table in (SESSIONS, ATTRIBUTES):
                labels = own_tables.labels(conn, table)
                assert not gone & set(labels), (table, started, labels)
                assert all(labels[label] == 1 for label in kept), (table, started, labels)
                assert labels["expired"] == 0
            # Every session due within five and a half hours is still there.
            assert own_tables.labels(conn, SESSIONS)["live"] == 5
            assert own_tables.labels(conn, ATTRIBUTES)["never"] == 2
            assert own_tables.labels(conn, ATTRIBUTES)["live"] == 1
        report = verify.verify(app)
        assert report.ok, [c.evidence for c in report.failures]
        last = next(c for c in report.checks if c.name.startswith("pg_cron last run"))
        assert last.evidence.startswith("succeeded, started")
