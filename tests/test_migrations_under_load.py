"""Safe migrations under load: upgrade, downgrade and upgrade again while the app writes.

The migration takes its locks with a short ``lock_timeout`` and retries (``LockPolicy``); a
writer queued behind one of its lock requests therefore waits at most that timeout plus the
few milliseconds the migration then holds the lock. Each writer runs with a
``statement_timeout`` fifteen times the migration's ``lock_timeout`` as the wait detector: a
writer that waited that long would fail, and a failure is counted as an error.

During the first upgrade one app transaction stays open on ``refresh_tokens`` until the
migration has given way at least once: without the short ``lock_timeout`` the migration would
queue behind it, and every writer of that table behind the migration.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from pgsweep import migrate
from tests.load import Writer, missing_live_tokens, start_writers
from tests.pg import connect

MIGRATION_LOCK_TIMEOUT_MS = 200
WRITER_STATEMENT_TIMEOUT_MS = 15 * MIGRATION_LOCK_TIMEOUT_MS
POLICY = migrate.LockPolicy(
    lock_timeout_ms=MIGRATION_LOCK_TIMEOUT_MS, attempts=30, first_pause_s=0.1, max_pause_s=1.0
)
REPORT = Path(__file__).resolve().parents[1] / ".reports" / "migrations_under_load.json"


def ops(writers: list[Writer]) -> int:
    return sum(sum(w.report.ops.values()) for w in writers)


def wait_for_more_ops(writers: list[Writer], than: int, more: int = 200) -> int:
    """Block until the writers did ``more`` operations since ``than`` (bounded)."""
    deadline = time.monotonic() + 60
    while ops(writers) < than + more:
        assert time.monotonic() < deadline, "the writers stopped making progress"
        assert all(w.is_alive() for w in writers), "a writer died"
        time.sleep(0.05)
    return ops(writers)


class GaveWay(logging.Handler):
    """Sets ``event`` when the migration logs that it gave way to a lock and will retry."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__(logging.WARNING)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "lock not granted" in record.getMessage():
            self.event.set()


def hold_until(dsn: str, released: threading.Event, gave_way: threading.Event) -> None:
    """A long app transaction on refresh_tokens, ended once the migration gave way to it."""
    with connect(dsn, autocommit=False) as slow:
        slow.execute("LOCK TABLE refresh_tokens IN ROW EXCLUSIVE MODE")
        released.set()
        gave_way.wait(timeout=60)
        slow.rollback()


def test_upgrade_downgrade_upgrade_under_load_costs_the_writers_no_error(
    fresh_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrate.upgrade(fresh_db, "0005")
    gave_way, holding = threading.Event(), threading.Event()
    handler = GaveWay(gave_way)
    logging.getLogger("pgsweep.migrate").addHandler(handler)
    slow_app = threading.Thread(target=hold_until, args=(fresh_db, holding, gave_way))
    slow_app.start()
    assert holding.wait(timeout=60)
    stop = threading.Event()
    writers = start_writers(fresh_db, 4, 25, stop, statement_timeout_ms=WRITER_STATEMENT_TIMEOUT_MS)
    steps: list[dict[str, object]] = []
    try:
        done = wait_for_more_ops(writers, 0)
        with caplog.at_level(logging.WARNING, logger="pgsweep.migrate"):
            for step, run, target in (
                ("upgrade 0005 -> head", migrate.upgrade, "head"),
                ("downgrade head -> 0005", migrate.downgrade, "0005"),
                ("upgrade 0005 -> head", migrate.upgrade, "head"),
            ):
                before = ops(writers)
                started = time.monotonic()
                run(fresh_db, target, POLICY)
                steps.append(
                    {
                        "step": step,
                        "seconds": round(time.monotonic() - started, 2),
                        "writer_ops_during": ops(writers) - before,
                    }
                )
                done = wait_for_more_ops(writers, done)  # the app carries on after each step
    finally:
        gave_way.set()
        slow_app.join(timeout=60)
        logging.getLogger("pgsweep.migrate").removeHandler(handler)
        stop.set()
        for writer in writers:
            writer.join(timeout=60)
    retries = sum("lock not granted" in r.getMessage() for r in caplog.records)

    errors = [e for w in writers for e in w.report.errors]
    violations = [v for w in writers for v in w.report.violations]
    missing = missing_live_tokens(fresh_db, writers)
    max_op = max(w.report.max_latency_s for w in writers)
    figures = {
        "writers": len(writers),
        "migration_lock_timeout_ms": MIGRATION_LOCK_TIMEOUT_MS,
        "writer_statement_timeout_ms": WRITER_STATEMENT_TIMEOUT_MS,
        "steps": steps,
        "lock_retries": retries,
        "writer_ops": ops(writers),
        "max_writer_op_seconds": round(max_op, 3),
        "writer_errors": len(errors),
        "violations": len(violations) + len(missing),
    }
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2) + "\n")
    print("\nmigrations under load:", json.dumps(figures))

    assert retries >= 1  # the migration did meet the long transaction, and gave way
    assert errors == []
    assert violations == []
    assert missing == []
    assert max_op < WRITER_STATEMENT_TIMEOUT_MS / 1000
    assert migrate.current(fresh_db) == migrate.head()
    with connect(fresh_db) as conn:
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()
        assert invalid == (0,)
        # The engine works on what the writers left behind.
        cleaned = conn.execute("SELECT total_cleaned FROM cleanup_all_expired_tokens()").fetchone()
        assert cleaned is not None
        assert cleaned[0] > 0
