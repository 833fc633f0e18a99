"""A rule's condition means what its author meant, whatever the styles of the session that sweeps.

A condition's constants are parsed in the registering session's DateStyle, IntervalStyle and
TimeZone. Engine 1.2 stored them as that session printed them ('05/01/2026' from an operator at
DateStyle 'SQL, DMY') and read them back in the sweeping session's styles: 5 January became
1 May, and four months of live rows went. 1.3 stores them in ISO 8601 with explicit offsets.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgsweep import engine
from tests.pg import connect

Conn = psycopg.Connection[Any]


@pytest.fixture
def events_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE events (id bigserial PRIMARY KEY, made date NOT NULL,"
            " at timestamptz NOT NULL)"
        )
        conn.execute("CREATE INDEX ON events (made)")
        conn.execute("CREATE INDEX ON events (at)")
        conn.execute(
            "INSERT INTO events (made, at) SELECT date '2026-01-01' + g,"
            " timestamptz '2026-01-04 00:00:00+00' + g * interval '1 hour'"
            " FROM generate_series(0, 300) g"
        )
    return fresh_db


def count(conn: Conn, where: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM events WHERE {where}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("sweeping_style", ["ISO, MDY", "SQL, DMY", "German", "Postgres, MDY"])
def test_a_date_written_day_first_is_the_day_its_author_meant(
    events_db: str, sweeping_style: str
) -> None:
    with connect(events_db) as conn:
        conn.execute("SET datestyle = 'SQL, DMY'")  # an operator in Europe: 5 January
        conn.execute("SELECT pgsweep.add_condition_rule('events', 'made', $$made < '05/01/2026'$$)")
        stored = conn.execute("SELECT condition FROM pgsweep.expiry_rule").fetchone()
        assert stored is not None
        assert "2026-01-05" in stored[0]
    with connect(events_db, autocommit=False) as conn:
        conn.execute(f"SET datestyle = '{sweeping_style}'")
        expected = count(conn, "made < date '2026-01-05'")
        assert expected == 4
        assert conn.execute("SELECT pgsweep.sweep_table('events')").fetchone() == (expected,)
        conn.commit()
        assert count(conn, "made < date '2026-01-05'") == 0
        assert count(conn, "true") == 301 - expected


def test_a_wall_clock_time_is_read_in_the_authors_zone(events_db: str) -> None:
    with connect(events_db) as conn:
        conn.execute("SET timezone = 'Asia/Kolkata'")  # midnight there: 18:30 UTC the day before
        conn.execute(
            "SELECT pgsweep.add_condition_rule('events', 'at', $$at < '2026-01-05 00:00'$$)"
        )
    with connect(events_db) as conn:
        conn.execute("SET timezone = 'America/New_York'")
        conn.execute("SET datestyle = 'SQL, MDY'")
        conn.execute("CALL pgsweep.sweep()")
        assert count(conn, "at < timestamptz '2026-01-04 18:30:00+00'") == 0
        assert count(conn, "true") == 301 - 19  # 00:00 to 18:00 UTC on the 4th, hourly


def test_an_interval_written_in_sql_standard_style_keeps_its_sign(events_db: str) -> None:
    with connect(events_db) as conn:
        conn.execute("SET intervalstyle = 'sql_standard'")
        conn.execute(
            "SELECT pgsweep.add_condition_rule('events', 'at',"
            " $$at < timestamptz '2026-01-05 00:00+00' + interval '-1 2:00:00'$$)"
        )
    with connect(events_db) as conn:
        conn.execute("CALL pgsweep.sweep()")  # -1 day -2 hours: before 2026-01-03 22:00 UTC
        assert count(conn, "true") == 301
        conn.execute("SELECT pgsweep.remove_rule('events', 'at')")
