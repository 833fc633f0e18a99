"""Property: an age rule deletes exactly its expired rows, whatever the column, zone and session.

Hypothesis draws a table whose rule column has one of the types an age rule allows, the zone of
its wall-clock values, the epoch unit of its numbers, a keep_for (0, seconds, hours, days,
months, or one that puts the cutoff near a daylight-saving change of a past year), values
clustered around the cutoff (NULLs and epoch sentinels among them), the sweeping session's
TimeZone and DateStyle, and a driver: ``SELECT pgsweep.sweep_table`` (inside the transaction
that drew the values, so that the cutoff is exact), ``CALL pgsweep.sweep`` or the CLI's
``cleanup.cleanup`` (their cutoff lies between the server's clock before and after the sweep).

The oracle is Python's (zoneinfo), not the engine's: a wall-clock value reads as both of its
instants around a change (``fold`` 0 and 1); a row whose latest reading is at or after the cutoff
must survive, and a row must be gone once every reading of it is before the cutoff and no earlier
wall-clock time may still be live (the single ``column < literal`` keeps the hour after a skipped
hour until the skipped hour is past). A date is its whole day; a number counts epoch seconds or
milliseconds and is never deleted before 2000-01-01.

``HYPOTHESIS_PROFILE=long`` (and ``-m soak``) runs the long profile.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgsweep import cleanup, engine
from tests.pg import connect

settings.register_profile(
    "quick",
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "quick")

UTC = dt.UTC
FLOOR_EPOCH = 946684800  # 2000-01-01: smaller epoch numbers are never deleted
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/St_Johns",
)
SESSION_ZONES = (
    "UTC",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
    "America/Los_Angeles",
    "Europe/Dublin",
)
DATE_STYLES = ("ISO, MDY", "SQL, DMY", "Postgres, DMY", "German")
NUMBER_TYPES = ("smallint", "integer", "bigint", "numeric", "double precision", "real")
TYPES = ("timestamptz", "timestamp", "date", *NUMBER_TYPES)
LIMITS = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}
DRIVERS = ("sweep_table", "procedure", "cleanup")
KEEP_FOR = (
    dt.timedelta(0),
    dt.timedelta(seconds=1),
    dt.timedelta(seconds=90),
    dt.timedelta(hours=5),
    dt.timedelta(days=1),
    dt.timedelta(days=40),
    1,  # months
    13,
)
OFFSETS_S = (0, 1e-6, 1, 59, 60, 900, 1800, 2700, 3599, 3600, 5400, 86400)


def transitions(zone: str) -> list[dt.datetime]:
    """The instants (UTC) where the zone's offset changed in 2025 and 2026, to the second."""
    tz = ZoneInfo(zone)
    found = []
    t = dt.datetime(2025, 1, 1, tzinfo=UTC)
    end = dt.datetime(2026, 11, 30, tzinfo=UTC)
    step = dt.timedelta(hours=1)
    while t < end:
        if t.astimezone(tz).utcoffset() != (t + step).astimezone(tz).utcoffset():
            lo, hi = t, t + step
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        t += step
    return found


CHANGES = {zone: transitions(zone) for zone in ZONES}


def readings(wall: dt.datetime, zone: str) -> list[dt.datetime]:
    tz = ZoneInfo(zone)
    return [wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1)]


def latest(wall: dt.datetime, zone: str) -> dt.datetime:
    return max(readings(wall, zone))


def latest_up_to(wall: dt.datetime, zone: str) -> dt.datetime:
    """The latest reading of any wall-clock time up to ``wall``: offsets change only on the
    quarter hour (in these zones), so the latest just before a change within 3 hours, or wall's."""
    best = latest(wall, zone)
    grid = wall.replace(minute=wall.minute // 15 * 15, second=0, microsecond=0)
    for k in range(13):
        point = grid - dt.timedelta(minutes=15 * k)
        if point <= wall:
            best = max(best, latest(point - dt.timedelta(microseconds=1), zone))
    return best


def months_before(instant: dt.datetime, months: int) -> dt.datetime:
    """PostgreSQL's timestamp - interval 'N months' in UTC: the day clamped to the month's end."""
    y, m = divmod(instant.year * 12 + instant.month - 1 - months, 12)
    first_next = dt.date(y + (m + 1) // 12, (m + 1) % 12 + 1, 1)
    last_day = (first_next - dt.timedelta(days=1)).day
    return instant.replace(year=y, month=m + 1, day=min(instant.day, last_day))


def as_real(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


@dataclass(frozen=True)
class Case:
    column_type: str
    zone: str
    unit: int  # 1: seconds, 1000: milliseconds
    keep_for: dt.timedelta | int | None  # None: the cutoff is put near a change (near_change)
    near_change: tuple[int, float]  # (which change, seconds from it)
    offsets: tuple[float | None, ...]  # seconds from the cutoff; None: NULL
    sentinels: tuple[int, ...]  # epoch values (numbers only)
    session_zone: str
    date_style: str
    driver: str


cases = st.builds(
    Case,
    column_type=st.sampled_from(TYPES),
    zone=st.sampled_from(ZONES),
    unit=st.sampled_from((1, 1000)),
    keep_for=st.one_of(st.none(), st.sampled_from(KEEP_FOR)),
    near_change=st.tuples(
        st.integers(0, 3),
        st.one_of(
            st.sampled_from((0.0, -1.0, 1.0, -1800.0, 1800.0, -3600.0, 3600.0)),
            st.floats(-7200, 7200),
        ),
    ),
    offsets=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(OFFSETS_S).flatmap(lambda s: st.sampled_from((s, -s))),
            st.floats(-7200, 7200),
        ),
        min_size=1,
        max_size=12,
    ).map(tuple),
    sentinels=st.lists(
        st.sampled_from((0, -1, -86400, FLOOR_EPOCH - 1, FLOOR_EPOCH, 4102444800)), max_size=3
    ).map(tuple),
    session_zone=st.sampled_from(SESSION_ZONES),
    date_style=st.sampled_from(DATE_STYLES),
    driver=st.sampled_from(DRIVERS),
)


class Oracle:
    """Which rows must survive and which must be gone, for a cutoff between lo and hi."""

    def __init__(self, case: Case, lo: dt.datetime, hi: dt.datetime):
        self.case, self.lo, self.hi = case, lo, hi

    def verdict(self, value: Any) -> str:
        """'live', 'gone' or 'either' (the cutoff moved while the driver ran, or a float's ulp)."""
        c = self.case
        if value is None:
            return "live"
        if c.column_type == "timestamptz":
            first = last = value
        elif c.column_type == "timestamp":
            last = latest(value, c.zone)
            first = latest_up_to(value, c.zone)
        elif c.column_type == "date":
            end = dt.datetime.combine(value + dt.timedelta(days=1), dt.time()) - dt.timedelta(
                microseconds=1
            )
            last = latest(end, c.zone)
            first = latest_up_to(end, c.zone)
        else:
            seconds = Decimal(value) / c.unit if c.column_type != "real" else value / c.unit
            if seconds < FLOOR_EPOCH:
                return "live"
            slack = Decimal(0)
            if c.column_type in ("real", "double precision"):
                # The cutoff's literal is rounded to the type: up to an ulp of it is kept.
                bits = -23 if c.column_type == "real" else -52
                slack = Decimal(abs(value)) * Decimal(2) ** bits
            epoch = Decimal(str(seconds))
            lo = Decimal(str(self.lo.timestamp()))
            hi = Decimal(str(self.hi.timestamp()))
            if epoch >= hi:
                return "live"
            if epoch * c.unit < lo * c.unit - slack:
                return "gone"
            return "either"
        if last >= self.hi:
            return "live"
        if first < self.lo:
            return "gone"
        return "either"


def values(case: Case, cutoff: dt.datetime) -> list[Any]:
    """The column values: offsets from the cutoff, in the column's own terms."""
    out: list[Any] = []
    for offset in case.offsets:
        if offset is None:
            out.append(None)
            continue
        instant = cutoff + dt.timedelta(seconds=offset)
        if case.column_type == "timestamptz":
            out.append(instant)
        elif case.column_type == "timestamp":
            out.append(instant.astimezone(ZoneInfo(case.zone)).replace(tzinfo=None))
        elif case.column_type == "date":
            out.append(instant.astimezone(ZoneInfo(case.zone)).date())
        else:
            out.append(instant.timestamp() * case.unit)
    if case.column_type in NUMBER_TYPES:
        out += [s * case.unit for s in case.sentinels]
        typed: list[Any] = []
        for v in out:
            if v is None:
                typed.append(None)
            elif case.column_type in LIMITS:
                n = int(v // 1) if v >= 0 else -int(-v // 1)
                if abs(n) <= LIMITS[case.column_type]:
                    typed.append(n)
            elif case.column_type == "numeric":
                typed.append(Decimal(str(v)).quantize(Decimal("0.000001")))
            elif case.column_type == "real":
                typed.append(as_real(float(v)))
            else:
                typed.append(float(v))
        out = typed
    return out


@pytest.fixture(scope="module")
def prop_db(module_db: str) -> str:
    engine.install(module_db)
    return module_db


COUNTER = itertools.count()
CHECKED = {"examples": 0, "rows": 0}


def session_dsn(dsn: str, case: Case) -> str:
    style = case.date_style.replace(" ", "")
    return make_conninfo(dsn, options=f"-c TimeZone={case.session_zone} -c DateStyle={style}")


def target_and_keep_for(case: Case, now: dt.datetime) -> tuple[dt.datetime, dt.timedelta | str]:
    if case.keep_for is None and case.column_type in ("timestamp", "date") and CHANGES[case.zone]:
        changes = CHANGES[case.zone]
        which, seconds = case.near_change
        target = changes[which % len(changes)] + dt.timedelta(seconds=seconds)
        return target, now - target
    if isinstance(case.keep_for, int):
        return months_before(now, case.keep_for), f"{case.keep_for} months"
    keep = case.keep_for if case.keep_for is not None else dt.timedelta(hours=5)
    return now - keep, keep


def run_case(dsn: str, case: Case) -> None:
    table = f"prop_{next(COUNTER)}"
    ident = sql.Identifier(table)
    column_type = sql.SQL(case.column_type)
    zone = case.zone if case.column_type in ("timestamp", "date") else None
    unit = None
    if case.column_type in NUMBER_TYPES:
        unit = "seconds" if case.unit == 1 else "milliseconds"
    with connect(session_dsn(dsn, case)) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int, v {})").format(ident, column_type))
        conn.execute(sql.SQL("CREATE INDEX ON {} (v)").format(ident))
        try:
            if case.driver == "sweep_table":
                with conn.transaction(force_rollback=True):
                    now = fetch_now(conn, "now()")
                    target, keep = target_and_keep_for(case, now)
                    add_rule(conn, table, keep, zone, unit)
                    rows = insert(conn, ident, values(case, target))
                    conn.execute("SELECT pgsweep.sweep_table(%s)", [table])
                    left = survivors(conn, ident)
                lo = hi = target
            else:
                now = fetch_now(conn, "clock_timestamp()")
                target, keep = target_and_keep_for(case, now)
                add_rule(conn, table, keep, zone, unit)
                rows = insert(conn, ident, values(case, target))
                before = fetch_now(conn, "clock_timestamp()")
                if case.driver == "procedure":
                    conn.execute("CALL pgsweep.sweep(%s)", [table])
                else:
                    cleanup.cleanup(session_dsn(dsn, case), table=table)
                after = fetch_now(conn, "clock_timestamp()")
                left = survivors(conn, ident)
                lo, hi = shifted(target, now, before, case), shifted(target, now, after, case)
        finally:
            conn.execute(sql.SQL("DROP TABLE {}").format(ident))
    oracle = Oracle(case, lo, hi)
    for row_id, value in rows.items():
        verdict = oracle.verdict(value)
        if verdict == "live":
            assert row_id in left, f"live row {value!r} deleted (cutoff {lo} .. {hi}, {case})"
        elif verdict == "gone":
            assert row_id not in left, f"expired row {value!r} kept (cutoff {lo} .. {hi}, {case})"
    CHECKED["examples"] += 1
    CHECKED["rows"] += len(rows)


def shifted(target: dt.datetime, now: dt.datetime, later: dt.datetime, case: Case) -> dt.datetime:
    """The cutoff a sweep at ``later`` takes, for a rule whose cutoff at ``now`` was target."""
    if isinstance(case.keep_for, int):
        return months_before(later, case.keep_for)
    return target + (later - now)


def fetch_now(conn: psycopg.Connection[Any], what: str) -> dt.datetime:
    # As an epoch number: the session's DateStyle may be one psycopg cannot read back.
    row = conn.execute(f"SELECT extract(epoch FROM {what})").fetchone()
    assert row is not None
    seconds, micro = divmod(int(Decimal(row[0]) * 1_000_000), 1_000_000)
    return dt.datetime.fromtimestamp(seconds, UTC).replace(microsecond=micro)


def add_rule(
    conn: psycopg.Connection[Any],
    table: str,
    keep: dt.timedelta | str,
    zone: str | None,
    unit: str | None,
) -> None:
    conn.execute(
        "SELECT pgsweep.add_rule(%s, 'v', %s::interval, %s, %s)",
        [table, keep, zone, unit],
    )


def insert(conn: psycopg.Connection[Any], ident: sql.Identifier, vals: list[Any]) -> dict[int, Any]:
    rows = dict(enumerate(vals))
    with conn.cursor() as cur:
        cur.executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(ident), list(rows.items()))
    return rows


def survivors(conn: psycopg.Connection[Any], ident: sql.Identifier) -> set[int]:
    return {r[0] for r in conn.execute(sql.SQL("SELECT id FROM {}").format(ident))}


@settings(settings.get_profile("quick"))
@given(case=cases)
def test_every_driver_deletes_exactly_the_expired_rows_of_any_age_rule(
    prop_db: str, case: Case
) -> None:
    run_case(prop_db, case)


@pytest.mark.soak
@pytest.mark.skipif(PROFILE != "long", reason="HYPOTHESIS_PROFILE=long runs the soak")
@settings(settings.get_profile("long"))
@given(case=cases)
def test_soak_every_driver_deletes_exactly_the_expired_rows_of_any_age_rule(
    prop_db: str, case: Case
) -> None:
    run_case(prop_db, case)


def test_the_default_run_checked_examples_and_rows() -> None:
    """Runs after the property (file order): it checked something, and says how much."""
    print(f"checked {CHECKED['examples']} examples, {CHECKED['rows']} rows")
    assert CHECKED["examples"] > 0
