"""After a cleanup deletes most of a table, its B-tree indexes keep their size; ``pgsweep health``
says so (an estimate from pg_class and pg_stats, no pgstattuple) and what to run."""

from __future__ import annotations

import pytest

from pgsweep import cleanup, engine, health
from tests.cli import pgsweep
from tests.pg import connect

SMALL = health.Thresholds(index_bloat_min_bytes=1 << 20)  # 1 MB: a test-sized table


def events(dsn: str) -> None:
    """100,000 events, 95,000 of them expired."""
    engine.install(dsn)
    with connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX events_expires_at ON events (expires_at);"
            "SELECT pgsweep.add_rule('events', 'expires_at');"
            # Distinct values: B-tree deduplication does not shrink the index of expires_at.
            "INSERT INTO events SELECT i, CASE WHEN i <= 95000"
            " THEN now() - interval '1 day' - i * interval '1 second'"
            " ELSE now() + interval '1 day' + i * interval '1 second' END"
            " FROM generate_series(1, 100000) i;"
            "ANALYZE events"
        )


def bloat(dsn: str, thresholds: health.Thresholds = SMALL) -> health.Check:
    return next(c for c in health.health(dsn, thresholds).checks if c.name == "index_bloat")


def test_health_flags_the_indexes_a_large_delete_left_and_says_to_reindex(fresh_db: str) -> None:
    events(fresh_db)
    before = bloat(fresh_db)
    assert before.status == health.OK, before  # a full table: its indexes are the size it needs

    cleanup.cleanup(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute("VACUUM events")  # what autovacuum does next: the file sizes stay
    after = bloat(fresh_db)
    assert after.status == health.WARNING, after
    flagged = {d["index"]: d for d in after.details}
    assert set(flagged) == {"events_pkey", "events_expires_at"}
    for name, found in flagged.items():
        assert found["rows"] == 5000
        assert found["factor"] >= 10, found
        assert found["fix"] == f"REINDEX INDEX CONCURRENTLY {name};"
    assert "REINDEX INDEX CONCURRENTLY events_expires_at;" in after.summary
    # Below the minimum size (8 MB by default) nothing is flagged.
    assert bloat(fresh_db, health.Thresholds()).status == health.OK

    with connect(fresh_db) as conn:
        for name in flagged:
            conn.execute(f"REINDEX INDEX CONCURRENTLY {name}")
        conn.execute("ANALYZE events")
    assert bloat(fresh_db).status == health.OK


def test_the_bloat_thresholds_are_options_of_health(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events(fresh_db)
    cleanup.cleanup(fresh_db)
    shown = pgsweep(capsys, "health", "--index-bloat-min-size", "1MB", "--dsn", fresh_db)
    assert "WARNING  index_bloat: " in shown.out, shown.out
    assert "REINDEX INDEX CONCURRENTLY events_pkey;" in shown.out
    relaxed = pgsweep(
        capsys,
        "health",
        "--index-bloat-min-size",
        "1MB",
        "--index-bloat-factor",
        "1000",
        "--dsn",
        fresh_db,
    )
    assert "OK       index_bloat: " in relaxed.out, relaxed.out
    wrong = pgsweep(capsys, "health", "--index-bloat-factor", "1", "--dsn", fresh_db)
    assert wrong.code == health.EXIT_CODES[health.UNKNOWN]
