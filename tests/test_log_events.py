"""``--log-format json`` (issue 19, item 4): ``pgsweep cleanup`` and ``pgsweep run`` say what
they do as one JSON event per line on stderr, read from the engine's step results; the events'
rows are what was deleted, a failing rule yields ``rule_failed`` with its error and the next
rule's events follow, and stdout keeps ``--json``'s report."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from pgsweep import engine, events
from tests.cli import pgsweep
from tests.pg import connect

# Rules run in table order: the failing one first, then the one that works.
# a_blocked: a restricting foreign key refuses its deletes; b_events: 12 garbage rows, 3 live.


@pytest.fixture
def db(module_db: str) -> str:
    engine.install(module_db)
    with connect(module_db) as conn:
        conn.execute(
            "DROP TABLE IF EXISTS a_blocked_child, a_blocked, b_events;"
            " CREATE TABLE b_events (id serial PRIMARY KEY, seen timestamptz NOT NULL);"
            " CREATE INDEX ON b_events (seen);"
            " INSERT INTO b_events (seen) SELECT now() - g * interval '1 day'"
            "   FROM generate_series(1, 12) g;"
            " INSERT INTO b_events (seen) SELECT now() + g * interval '1 day'"
            "   FROM generate_series(1, 3) g;"
            " CREATE TABLE a_blocked (id int PRIMARY KEY, seen timestamptz NOT NULL);"
            " CREATE INDEX ON a_blocked (seen);"
            " INSERT INTO a_blocked VALUES (1, now() - interval '1 day');"
            " CREATE TABLE a_blocked_child (parent int REFERENCES a_blocked ON DELETE RESTRICT);"
            " INSERT INTO a_blocked_child VALUES (1);"
        )
        conn.execute("SELECT pgsweep.add_rule('b_events', 'seen')")
    return module_db


def parsed(err: str) -> list[dict[str, Any]]:
    """Every line of stderr as JSON (json.loads fails on any that is not)."""
    return [json.loads(line) for line in err.splitlines()]


def test_cleanup_logs_each_batch_and_rule_with_the_rows_it_deleted(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = pgsweep(capsys, "cleanup", "--dsn", db, "--batch-size", "5", "--log-format", "json")
    assert done.code == 0, done.err
    logged = parsed(done.err)
    names = [e["event"] for e in logged]
    # The first batch is the 5 asked for; the engine sizes the next ones (pacing).
    assert names[0] == "run_start"
    assert names[-2:] == ["rule_done", "run_end"]
    start, *batches, rule_done, end = logged
    assert len(batches) >= 2
    assert {b["event"] for b in batches} == {"batch"}
    assert {b["rule"] for b in batches} == {"b_events.seen"}
    assert [b["batch"] for b in batches] == list(range(1, len(batches) + 1))
    assert batches[0]["rows"] == 5
    assert sum(b["rows"] for b in batches) == 12
    running = [sum(b["rows"] for b in batches[: n + 1]) for n in range(len(batches))]
    assert [b["rule_rows"] for b in batches] == running
    assert (rule_done["rule"], rule_done["rows"], rule_done["batches"]) == (
        "b_events.seen",
        12,
        len(batches),
    )
    assert (end["rows"], end["status"], end["run"]) == (12, "succeeded", start["run"])
    assert start["rules"] == 1
    for event in logged:
        assert event["level"] == "info"
        at = dt.datetime.fromisoformat(event["time"])
        assert at.utcoffset() == dt.timedelta(0)
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM b_events").fetchone() == (3,)
        # The engine's history says the same.
        row = conn.execute(
            "SELECT status, rows_deleted FROM pgsweep.runs WHERE run_id = %s", (start["run"],)
        ).fetchone()
        assert row == ("succeeded", 12)


def test_a_failing_rule_logs_rule_failed_with_its_error_and_the_next_rule_still_runs(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(db) as conn:
        conn.execute("SELECT pgsweep.add_rule('a_blocked', 'seen')")
    done = pgsweep(capsys, "cleanup", "--dsn", db, "--log-format", "json", "--json")
    assert done.code == 1
    logged = parsed(done.err)
    assert [(e["event"], e.get("rule")) for e in logged] == [
        ("run_start", None),
        ("rule_failed", "a_blocked.seen"),
        ("batch", "b_events.seen"),
        ("rule_done", "b_events.seen"),
        ("run_end", None),
    ]
    failed = logged[1]
    assert failed["level"] == "error"
    assert "a_blocked_child" in failed["error"]
    assert failed["sqlstate"] == "23503"
    assert logged[2]["rows"] == logged[3]["rows"] == 12
    assert (logged[-1]["status"], logged[-1]["level"], logged[-1]["rows"]) == (
        "failed",
        "error",
        12,
    )
    # stdout is still --json's one report, unchanged by the log.
    report = done.json()
    assert report["deleted"] == 12
    assert [f["table"] for f in report["failed"]] == ["a_blocked"]


def test_pgsweep_run_logs_the_same_events_numbered_per_run(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = pgsweep(
        capsys, "run", "--dsn", db, "--every", "1s", "--max-runs", "2", "--log-format", "json"
    )
    assert done.code == 0, done.err
    logged = parsed(done.err)
    assert [e["event"] for e in logged] == [
        "run_start",
        "batch",
        "rule_done",
        "run_end",
        "run_start",
        "rule_done",
        "run_end",
    ]
    assert [e["number"] for e in logged if e["event"] in ("run_start", "run_end")] == [1, 1, 2, 2]
    assert [e["rows"] for e in logged if e["event"] == "run_end"] == [12, 0]
    # stdout keeps the command's own lines, one per run.
    assert "run 1: deleted 12 rows" in done.out


def test_text_stays_the_default_and_logs_no_events(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = pgsweep(capsys, "cleanup", "--dsn", db)
    assert done.code == 0
    assert "{" not in done.err
    assert "deleted" in done.out


def test_every_event_has_its_time_level_and_name_first() -> None:
    at = dt.datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=dt.UTC)
    shown = events.document(
        events.Event("pause", "t.c", reason="replay lag", extra={"seconds": 1.5}), at
    )
    assert list(shown) == ["time", "level", "event", "rule", "reason", "seconds"]
    assert shown["time"] == "2026-12-08T01:02:03.456Z"
    with pytest.raises(ValueError, match="unknown event"):
        events.Event("batches")
