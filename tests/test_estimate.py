"""``pgsweep cleanup --dry-run --estimate``: one real batch per rule under EXPLAIN ANALYZE,
rolled back; the projection, the locks, and the foreign keys that cascade or restrict."""

from __future__ import annotations

import pytest

from pgsweep import cleanup, engine
from tests.cli import pgsweep
from tests.pg import connect

GARBAGE_EVENTS = 100
LIVE_EVENTS = 20


@pytest.fixture
def app(fresh_db: str) -> str:
    """events (100 garbage rows, one a minute, and 20 live) with notes that cascade; tokens
    (3 garbage, 2 live) of which one garbage row is still used by a row that restricts."""
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE events (id int PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX ON events (expires_at);"
            "CREATE TABLE event_notes (id serial PRIMARY KEY,"
            " event_id int NOT NULL REFERENCES events ON DELETE CASCADE);"
            "CREATE TABLE tokens (id int PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX ON tokens (expires_at);"
            "CREATE TABLE token_uses (token_id int REFERENCES tokens);"
        )
        conn.execute(
            "INSERT INTO events SELECT i, now() - make_interval(mins => 1000 - i)"
            " FROM generate_series(1, %s) i",
            (GARBAGE_EVENTS,),
        )
        conn.execute(
            "INSERT INTO events SELECT 1000 + i, now() + interval '1 day'"
            " FROM generate_series(1, %s) i",
            (LIVE_EVENTS,),
        )
        conn.execute("INSERT INTO event_notes (event_id) SELECT id FROM events WHERE id <= 50")
        conn.execute(
            "INSERT INTO tokens VALUES (1, now() - interval '2 days'),"
            " (2, now() - interval '1 day'), (3, now() - interval '1 hour'),"
            " (4, now() + interval '1 day'), (5, now() + interval '2 days')"
        )
        conn.execute("INSERT INTO token_uses VALUES (2), (4)")
        conn.execute("SELECT pgsweep.add_rule('events', 'expires_at')")
        conn.execute("SELECT pgsweep.add_rule('tokens', 'expires_at')")
    return fresh_db


def counts(dsn: str) -> tuple[int, ...]:
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_notes),"
            " (SELECT count(*) FROM tokens), (SELECT count(*) FROM token_uses)"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_one_sample_batch_per_rule_is_projected_and_rolled_back(app: str) -> None:
    before = counts(app)
    result = cleanup.estimate(app, batch_size=30)
    assert counts(app) == before == (GARBAGE_EVENTS + LIVE_EVENTS, 50, 5, 2)

    events, tokens = result.rules
    assert (events.table, events.rows, events.batches, events.sample_rows) == ("events", 100, 4, 30)
    assert events.error is None
    assert events.sample_wal_bytes > 0
    # Every batch like the sample: the whole run's WAL is the sample's per row times the rows.
    assert events.projected_wal_bytes == round(events.sample_wal_bytes * 100 / 30)
    assert events.plan.endswith("on events")
    # The table and its two indexes; the cascade reached event_notes (and its primary key).
    assert events.locks == [
        "RowExclusiveLock on event_notes (and its index)",
        "RowExclusiveLock on events (and its 2 indexes)",
    ]
    (notes_key,) = events.foreign_keys
    assert (notes_key.table, notes_key.action) == ("event_notes", "cascade")
    assert "deletes the rows of event_notes" in notes_key.effect

    # tokens: row 2 is garbage and still used; the sample fails as the run would.
    assert (tokens.rows, tokens.sample_rows) == (3, 0)
    assert tokens.error is not None
    assert "violates foreign key constraint" in tokens.error
    (uses_key,) = tokens.foreign_keys
    assert (uses_key.table, uses_key.action) == ("token_uses", "no action")
    assert result.rows == 103


def test_a_batch_of_equal_values_is_sampled_as_the_engine_takes_it(app: str) -> None:
    with connect(app) as conn:
        conn.execute("UPDATE events SET expires_at = now() - interval '1 day' WHERE id <= 100")
    result = cleanup.estimate(app, table="events", batch_size=30)
    (events,) = result.rules
    assert (events.rows, events.sample_rows) == (100, 30)  # by ctid, a batch's worth
    assert counts(app)[0] == GARBAGE_EVENTS + LIVE_EVENTS


def test_the_command_needs_dry_run_and_says_the_sample_was_rolled_back(
    app: str, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = pgsweep(capsys, "cleanup", "--estimate", "--dsn", app)
    assert refused.code == 2
    assert "--estimate needs --dry-run" in refused.err
    shown = pgsweep(capsys, "cleanup", "--dry-run", "--estimate", "--dsn", app)
    assert shown.code == 1, shown.err  # the tokens' sample failed: so would the cleanup
    assert "events.expires_at: would delete 100 rows in 1 batch of 5,000" in shown.out
    assert "foreign key event_notes_event_id_fkey of event_notes (ON DELETE CASCADE)" in shown.out
    assert "the sample batch failed, as the run would" in shown.out
    assert "every sample was rolled back" in shown.out
    assert "1 sample failed: the cleanup would fail there too" in shown.out
    as_json = pgsweep(capsys, "cleanup", "--dry-run", "--estimate", "--dsn", app, "--json").json()
    assert as_json["ok"] is False
    assert as_json["would_delete"] == 103
    assert [r["sample_rows"] for r in as_json["rules"]] == [100, 0]
    assert counts(app) == (GARBAGE_EVENTS + LIVE_EVENTS, 50, 5, 2)
