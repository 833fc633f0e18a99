"""An age rule never misreads a value.

A rule records the type its column had when it was registered: a column retyped since (an
instant become a wall-clock time, a number become a timestamp, ...) is a problem every consumer
skips until the rule is registered again, never a silent new reading. And around a
daylight-saving change, where a wall-clock value has two readings (the repeated hour of a
fall-back, the skipped hour of a spring-forward), a row goes only when both are before the
cutoff. The cutoffs are pinned on past New York changes by giving the rule the keep_for that
puts its cutoff there, inside the transaction that sweeps (now() holds still in it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgsweep import engine
from tests.pg import connect
from tests.sqlrun import psql_file, psql_ok


@pytest.fixture(scope="module")
def engine_db(module_db: str) -> str:
    engine.install(module_db)
    return module_db


@pytest.fixture
def conn(engine_db: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(engine_db) as c:
        c.execute("DROP TABLE IF EXISTS t")
        yield c


def problem(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("SELECT problem FROM pgsweep.rules WHERE table_name = 't'").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def labels(conn: psycopg.Connection[Any]) -> set[str]:
    return {r[0] for r in conn.execute("SELECT label FROM t")}


def test_a_column_retyped_from_timestamptz_to_timestamp_is_skipped_not_read_as_utc(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("SET TimeZone = 'America/New_York'")
    conn.execute("CREATE TABLE t (label text, expires_at timestamptz)")
    conn.execute("CREATE INDEX ON t (expires_at)")
    conn.execute("SELECT pgsweep.add_rule('t', 'expires_at')")
    conn.execute(
        "INSERT INTO t VALUES ('gone', now() - interval '1 hour'),"
        " ('two hours left', now() + interval '2 hours')"
    )
    # The session's zone (New York) turns the instants into New York wall-clock times.
    conn.execute("ALTER TABLE t ALTER COLUMN expires_at TYPE timestamp")
    assert problem(conn) == (
        "column expires_at of public.t was timestamp with time zone when the rule was registered"
        " and is timestamp without time zone now: register the rule again with"
        " pgsweep.add_rule('public.t', 'expires_at', '00:00:00',"
        " p_value_zone => '<the zone its values are in>')"
    )
    # The rule stays (no event trigger removes it) and every consumer skips it.
    with conn.transaction():
        assert conn.execute("SELECT pgsweep.sweep_table('t')").fetchone() == (0,)
    conn.execute("CALL pgsweep.sweep('t')")
    assert labels(conn) == {"gone", "two hours left"}
    conn.execute("SELECT pgsweep.add_rule('t', 'expires_at', p_value_zone => 'America/New_York')")
    assert problem(conn) is None
    conn.execute("CALL pgsweep.sweep('t')")
    assert labels(conn) == {"two hours left"}


@pytest.mark.parametrize(
    ("registered", "retyped", "using"),
    [
        ("timestamp", "timestamptz", "expires_at AT TIME ZONE 'UTC'"),
        ("bigint", "timestamp", "to_timestamp(expires_at) AT TIME ZONE 'UTC'"),
        ("timestamp", "bigint", "extract(epoch FROM expires_at)::bigint"),
        ("integer", "bigint", "expires_at"),
        ("date", "timestamp", "expires_at"),
    ],
)
def test_any_retype_of_an_age_rules_column_is_a_problem_until_registered_again(
    conn: psycopg.Connection[Any], registered: str, retyped: str, using: str
) -> None:
    conn.execute(f"CREATE TABLE t (label text, expires_at {registered})")
    conn.execute("CREATE INDEX ON t (expires_at)")
    conn.execute("SELECT pgsweep.add_rule('t', 'expires_at')")
    conn.execute("INSERT INTO t VALUES ('old', NULL)")
    conn.execute(f"ALTER TABLE t ALTER COLUMN expires_at TYPE {retyped} USING {using}")
    found = problem(conn)
    assert found is not None
    assert "when the rule was registered" in found
    assert conn.execute("SELECT count(*) FROM pgsweep.garbage_counts('t')").fetchone() == (0,)
    conn.execute("SELECT pgsweep.add_rule('t', 'expires_at')")
    assert problem(conn) is None


def test_a_rule_upgraded_from_1_1_is_registered_for_its_columns_current_type(
    fresh_db: str,
) -> None:
    with connect(fresh_db) as c:
        c.execute("CREATE TABLE t (label text, expires_at timestamptz)")
        c.execute("CREATE INDEX ON t (expires_at)")
    psql_ok(fresh_db, engine.release_file("1.1", "install.sql"))
    with connect(fresh_db) as c:
        c.execute("SELECT pgsweep.add_rule('t', 'expires_at')")
    psql_ok(fresh_db, engine.release_file("1.2", "install.sql"))
    with connect(fresh_db) as c:
        assert c.execute("SELECT registered_type::text, problem FROM pgsweep.rules").fetchall() == [
            ("timestamp with time zone", None)
        ]
        c.execute("ALTER TABLE t ALTER COLUMN expires_at TYPE timestamp")
        assert problem(c) is not None
        # 1.1 would read the retyped column as UTC wall-clock times: the downgrade refuses.
        done = psql_file(fresh_db, engine.release_file("1.2", "downgrade.sql"))
        assert done.returncode != 0
        assert "changed type since the rule was registered" in done.stderr


class Pinned:
    """What one New York wall-clock rule with a pinned cutoff does to rows at given times."""

    def __init__(self, conn: psycopg.Connection[Any], cutoff: str, walls: dict[str, str]):
        conn.execute("CREATE TABLE t (label text, at timestamp)")
        conn.execute("CREATE INDEX ON t (at)")
        conn.execute("DROP VIEW IF EXISTS t_live")
        # One transaction, so that now() and with it the cutoff hold still.
        with conn.transaction(force_rollback=True):
            conn.execute(
                "SELECT pgsweep.add_rule('t', 'at', now() - %s::timestamptz, 'America/New_York')",
                [cutoff],
            )
            for label, wall in walls.items():
                conn.execute("INSERT INTO t VALUES (%s, %s::timestamp)", [label, wall])
            conn.execute("SELECT pgsweep.create_live_view('t')")
            self.shown = {r[0] for r in conn.execute("SELECT label FROM t_live")}
            expr = conn.execute(
                "SELECT pgsweep.instant_expression(r) FROM pgsweep.expiry_rule r"
            ).fetchone()
            assert expr is not None
            self.read_as_past = {
                r[0]
                for r in conn.execute(
                    sql.SQL("SELECT label FROM t WHERE {} < %s::timestamptz").format(
                        sql.SQL(expr[0])
                    ),
                    [cutoff],
                )
            }
            counted = conn.execute(
                "SELECT sum(garbage) FROM pgsweep.garbage_counts('t')"
            ).fetchone()
            assert counted is not None
            self.counted = int(counted[0])
            conn.execute("SELECT pgsweep.sweep_table('t')")
            self.left = labels(conn)
            self.deleted = set(walls) - self.left


def test_in_the_repeated_hour_of_a_fall_back_a_row_goes_only_when_both_readings_are_past(
    conn: psycopg.Connection[Any],
) -> None:
    # 2026-11-01 in New York: 01:00-02:00 happens twice, first EDT (05:00-06:00 UTC) then EST
    # (06:00-07:00 UTC). The cutoff 05:45 UTC is 01:45 EDT; 01:30 read as EST is 06:30 UTC.
    walls = {
        "00:59 EDT": "2026-11-01 00:59:59",
        "01:00 either": "2026-11-01 01:00:00",
        "01:30 either": "2026-11-01 01:30:00",
        "01:50 either": "2026-11-01 01:50:00",
        "02:00 EST": "2026-11-01 02:00:00",
    }
    pinned = Pinned(conn, "2026-11-01 05:45:00+00", walls)
    assert pinned.deleted == {"00:59 EDT"}
    assert pinned.shown == pinned.left
    assert pinned.read_as_past == pinned.deleted
    assert pinned.counted == len(pinned.deleted)


def test_after_the_fall_back_the_repeated_hour_goes_by_its_later_reading(
    conn: psycopg.Connection[Any],
) -> None:
    # The cutoff 06:40 UTC is 01:40 EST: 01:30 (06:30 UTC at the latest) is past, 01:50 is not.
    walls = {"01:30 either": "2026-11-01 01:30:00", "01:50 either": "2026-11-01 01:50:00"}
    pinned = Pinned(conn, "2026-11-01 06:40:00+00", walls)
    assert pinned.deleted == {"01:30 either"}
    assert pinned.shown == pinned.left
    assert pinned.read_as_past == pinned.deleted


def test_in_the_skipped_hour_of_a_spring_forward_a_time_that_never_was_is_read_late(
    conn: psycopg.Connection[Any],
) -> None:
    # 2026-03-08 in New York: 02:00-03:00 never happens (07:00 UTC: 02:00 EST is 03:00 EDT).
    # 02:45 could mean 06:45 or 07:45 UTC; the cutoff 07:30 UTC is 03:30 EDT.
    walls = {
        "01:59 EST": "2026-03-08 01:59:00",
        "02:15 never": "2026-03-08 02:15:00",
        "02:45 never": "2026-03-08 02:45:00",
        "03:15 EDT": "2026-03-08 03:15:00",
        "03:45 EDT": "2026-03-08 03:45:00",
    }
    pinned = Pinned(conn, "2026-03-08 07:30:00+00", walls)
    # 03:15 EDT (07:15 UTC) is past, but the wall-clock times before it from 02:30 on may be
    # live: a single "at < literal" keeps it until the cutoff is past 03:00 + 1 hour.
    assert pinned.deleted == {"01:59 EST", "02:15 never"}
    assert pinned.shown == pinned.left
    assert pinned.deleted <= pinned.read_as_past
    assert pinned.counted == len(pinned.deleted)


def test_the_cutoff_of_a_wall_clock_rule_is_a_plain_comparison_an_index_serves(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("CREATE TABLE t (label text, at timestamp)")
    conn.execute("CREATE INDEX ON t (at)")
    conn.execute("SELECT pgsweep.add_rule('t', 'at', '1 day', 'America/New_York')")
    (condition,) = conn.execute(
        "SELECT pgsweep.rule_condition(r) FROM pgsweep.expiry_rule r"
    ).fetchone() or ("",)
    assert condition.startswith("at < '")
    assert condition.endswith("'::timestamp without time zone")


@pytest.mark.parametrize(
    ("column_type", "unit"), [("smallint", "seconds"), ("integer", "milliseconds")]
)
def test_a_number_column_too_narrow_for_the_cutoff_is_swept_without_an_overflow(
    conn: psycopg.Connection[Any], column_type: str, unit: str
) -> None:
    # No value of such a column reaches 2000-01-01 (the floor), so none is garbage; the cutoff
    # literal must still cast to the column's type.
    conn.execute(f"CREATE TABLE t (label text, at {column_type})")
    conn.execute("CREATE INDEX ON t (at)")
    conn.execute("SELECT pgsweep.add_rule('t', 'at', p_epoch_unit => %s)", [unit])
    conn.execute("INSERT INTO t VALUES ('max', 32767), ('zero', 0)")
    with conn.transaction():
        assert conn.execute("SELECT pgsweep.sweep_table('t')").fetchone() == (0,)
    assert labels(conn) == {"max", "zero"}
