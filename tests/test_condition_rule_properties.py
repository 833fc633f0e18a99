"""Property: a condition rule deletes exactly the rows its author's condition meant.

Hypothesis draws a condition of one to three comparisons joined by AND/OR (a timestamptz, a
date and an interval column against constants written as the author's session prints them, a
wall-clock time without offset, a sum of a time and an interval, and plain integer and text
tests), the registering session's DateStyle, IntervalStyle and TimeZone, rows clustered at the
constants (equal, a microsecond or a day either side, NULLs), a sweeping session with other
styles, and a driver: ``SELECT pgsweep.sweep_table``, ``CALL pgsweep.sweep`` or the CLI's
``cleanup.cleanup``.

The oracle is the author's own session: the rows the condition selects there, typed as the
author typed it, before the rule is stored. Every one of them must be gone after the sweep, and
every other row must stay, whatever styles the sweeping session has. Engine 1.2 failed this
(a day-first date read back month-first, tests/test_condition_styles.py holds the examples).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgsweep import cleanup, engine
from tests.pg import connect
from tests.test_age_rule_properties import PROFILE

Conn = psycopg.Connection[Any]

DATE_STYLES = ("ISO, MDY", "ISO, DMY", "SQL, DMY", "SQL, MDY", "Postgres, DMY", "German")
INTERVAL_STYLES = ("postgres", "postgres_verbose", "sql_standard", "iso_8601")
ZONES = ("UTC", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns")
DRIVERS = ("sweep_table", "procedure", "cleanup")
OPERATORS = ("<", "<=", ">", ">=", "=")
BASE = dt.datetime(2026, 3, 8, 6, 30, tzinfo=dt.UTC)  # New York's spring-forward morning
COLUMNS = "id int PRIMARY KEY, at timestamptz, made date, span interval, n integer, label text"


@dataclass(frozen=True)
class Styles:
    date_style: str
    interval_style: str
    zone: str

    def options(self) -> str:
        return (
            f"-c DateStyle={self.date_style.replace(' ', '')}"
            f" -c IntervalStyle={self.interval_style} -c TimeZone={self.zone}"
        )


@dataclass(frozen=True)
class Atom:
    """One comparison: kind says which column and how its constant is written."""

    kind: str  # "at", "wall", "sum", "made", "span", "n", "label"
    operator: str
    seconds: int  # the constant's offset from BASE (at, wall, sum, made) or its length (span)


@dataclass(frozen=True)
class Case:
    atoms: tuple[Atom, ...]
    joins: tuple[str, ...]
    author: Styles
    sweeper: Styles
    driver: str


styles = st.builds(
    Styles,
    st.sampled_from(DATE_STYLES),
    st.sampled_from(INTERVAL_STYLES),
    st.sampled_from(ZONES),
)
atoms = st.builds(
    Atom,
    st.sampled_from(("at", "wall", "sum", "made", "span", "n", "label")),
    st.sampled_from(OPERATORS),
    st.integers(-3 * 86400, 3 * 86400),
)
cases = st.integers(1, 3).flatmap(
    lambda k: st.builds(
        Case,
        st.lists(atoms, min_size=k, max_size=k).map(tuple),
        st.lists(st.sampled_from(("AND", "OR")), min_size=k - 1, max_size=k - 1).map(tuple),
        styles,
        styles,
        st.sampled_from(DRIVERS),
    )
)

COUNTER = itertools.count()
CHECKED = {"examples": 0, "rows": 0, "deleted": 0}


def printed(conn: Conn, value: Any, type_name: str) -> str:
    """How the author's session prints ``value``: what an author copies into a condition."""
    row = conn.execute(f"SELECT (%s::{type_name})::text", [value]).fetchone()
    assert row is not None
    return str(row[0])


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def atom_sql(conn: Conn, atom: Atom) -> str:
    instant = BASE + dt.timedelta(seconds=atom.seconds)
    op = atom.operator
    if atom.kind == "at":
        return f"at {op} {quoted(printed(conn, instant, 'timestamptz'))}"
    if atom.kind == "wall":  # no offset: the author's TimeZone gives it its instant
        return f"at {op} {quoted(instant.strftime('%Y-%m-%d %H:%M:%S'))}"
    if atom.kind == "sum":
        span = printed(conn, dt.timedelta(seconds=atom.seconds), "interval")
        base = quoted(printed(conn, BASE, "timestamptz"))
        return f"at {op} timestamptz {base} + interval {quoted(span)}"
    if atom.kind == "made":
        return f"made {op} {quoted(printed(conn, instant.date(), 'date'))}"
    if atom.kind == "span":
        return f"span {op} {quoted(printed(conn, dt.timedelta(seconds=atom.seconds), 'interval'))}"
    if atom.kind == "n":
        return f"n {op} {atom.seconds % 40}"
    return f"label {op} {quoted(f'l{atom.seconds % 40:02d}')}"


def condition_sql(conn: Conn, case: Case) -> str:
    text = atom_sql(conn, case.atoms[0])
    for join, atom in zip(case.joins, case.atoms[1:], strict=True):
        text = f"({text}) {join} {atom_sql(conn, atom)}"
    return text


def rows_for(case: Case) -> list[tuple[Any, ...]]:
    """Rows at every constant of the condition: equal, a microsecond and a day either side."""
    points = {0}
    for atom in case.atoms:
        points.add(atom.seconds)
    nudges = (dt.timedelta(0), dt.timedelta(microseconds=1), dt.timedelta(days=1))
    rows: list[tuple[Any, ...]] = []
    for seconds in sorted(points):
        for nudge in nudges:
            for sign in (1, -1):
                instant = BASE + dt.timedelta(seconds=seconds) + sign * nudge
                span = dt.timedelta(seconds=seconds) + sign * nudge
                i = len(rows)
                rows.append((i, instant, instant.date(), span, i % 40, f"l{i % 40:02d}"))
    rows.append((len(rows), None, None, None, None, None))
    return rows


@pytest.fixture(scope="module")
def cond_db(module_db: str) -> str:
    engine.install(module_db)
    return module_db


def styled(dsn: str, who: Styles) -> str:
    return make_conninfo(dsn, options=who.options())


def run_case(dsn: str, case: Case) -> None:
    table = f"cond_{next(COUNTER)}"
    ident = sql.Identifier(table)
    with connect(styled(dsn, case.author)) as author:
        author.execute(sql.SQL(f"CREATE TABLE {{}} ({COLUMNS})").format(ident))
        for column in ("at", "made", "span", "n", "label"):
            author.execute(sql.SQL("CREATE INDEX ON {} ({})").format(ident, sql.Identifier(column)))
        rows = rows_for(case)
        with author.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s)").format(ident), rows
            )
        condition = condition_sql(author, case)
        meant = {
            r[0]
            for r in author.execute(
                sql.SQL("SELECT id FROM {} WHERE {}").format(ident, sql.SQL(condition))
            )
        }
        try:
            author.execute("SELECT pgsweep.add_condition_rule(%s, 'id', %s)", [table, condition])
            with connect(styled(dsn, case.sweeper)) as sweeper:
                if case.driver == "sweep_table":
                    with sweeper.transaction():
                        sweeper.execute("SELECT pgsweep.sweep_table(%s)", [table])
                elif case.driver == "procedure":
                    sweeper.execute("CALL pgsweep.sweep(%s)", [table])
                else:
                    cleanup.cleanup(styled(dsn, case.sweeper), table=table)
                left = {r[0] for r in sweeper.execute(sql.SQL("SELECT id FROM {}").format(ident))}
        finally:
            author.execute(sql.SQL("DROP TABLE {}").format(ident))
    everything = {r[0] for r in rows}
    assert everything - left == meant, (
        f"condition {condition!r}: deleted {sorted(everything - left)}, meant {sorted(meant)}"
    )
    CHECKED["examples"] += 1
    CHECKED["rows"] += len(rows)
    CHECKED["deleted"] += len(meant)


@settings(settings.get_profile("quick"))
@given(case=cases)
def test_every_driver_deletes_exactly_what_the_author_of_a_condition_meant(
    cond_db: str, case: Case
) -> None:
    run_case(cond_db, case)


@pytest.mark.soak
@pytest.mark.skipif(PROFILE != "long", reason="HYPOTHESIS_PROFILE=long runs the soak")
@settings(settings.get_profile("long"))
@given(case=cases)
def test_soak_every_driver_deletes_exactly_what_the_author_of_a_condition_meant(
    cond_db: str, case: Case
) -> None:
    run_case(cond_db, case)


def test_the_default_run_checked_conditions_and_rows() -> None:
    """Runs after the property (file order): it checked something, and says how much."""
    print(
        f"checked {CHECKED['examples']} conditions, {CHECKED['rows']} rows,"
        f" {CHECKED['deleted']} meant for deletion"
    )
    assert CHECKED["examples"] > 0
    assert 0 < CHECKED["deleted"] < CHECKED["rows"]
