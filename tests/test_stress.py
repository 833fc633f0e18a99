"""Stress: eight writers run the app's token flows while cleanup runs every second.

``CALL pgsweep.sweep()`` runs every second (the scheduler's way) and the master function
``cleanup_all_expired_tokens()`` every half second beside it, for ``PGSWEEP_STRESS_SECONDS``
(60 by default; ``make soak`` runs 30 minutes; ``-m "not soak"`` skips it). What must hold:

* no live token (unexpired, unused) is ever deleted: by the writers' ledgers (every redeem and
  rotation of a token the ledger holds as live finds it; every ledger token still live at the
  end exists) and by an audit trigger that records any deletion of a row live at that moment
  other than the app's own rotation;
* no deadlock, no error in the writers or the cleaners, no warning from the insert triggers;
* after one final cleanup, nothing expired or used remains.

The figures are printed and written to ``.reports/stress.json`` (README, "Reliability").
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pgsweep import migrate
from tests.load import Writer, live_in_ledgers, missing_live_tokens, start_writers
from tests.pg import connect

STRESS_SECONDS = float(os.environ.get("PGSWEEP_STRESS_SECONDS", "60"))
WRITERS = 8
USERS_PER_WRITER = 50
REPORT = Path(__file__).resolve().parents[1] / ".reports" / "stress.json"

# Test-only: any deletion of a row that is live at that instant, except the app's rotation
# (a writer's own top-level DELETE; the insert triggers' deletions run one level deeper).
AUDIT_SQL = """
CREATE TABLE stress_live_deleted (tbl text, token_hash text, expires_at timestamptz,
                                  deleted_at timestamptz, by_app text, depth int);
CREATE FUNCTION stress_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 AND current_setting('application_name') LIKE 'writer%' THEN
        RETURN NULL;  -- the app deleting its own token
    END IF;
    INSERT INTO stress_live_deleted VALUES (TG_TABLE_NAME, OLD.token_hash, OLD.expires_at,
        now(), current_setting('application_name'), pg_trigger_depth());
    RETURN NULL;
END $$;
CREATE TRIGGER audit AFTER DELETE ON password_reset_tokens FOR EACH ROW
    WHEN (OLD.used_at IS NULL AND OLD.expires_at > now()) EXECUTE FUNCTION stress_audit();
CREATE TRIGGER audit AFTER DELETE ON email_verification_tokens FOR EACH ROW
    WHEN (OLD.used_at IS NULL AND OLD.expires_at > now()) EXECUTE FUNCTION stress_audit();
CREATE TRIGGER audit AFTER DELETE ON refresh_tokens FOR EACH ROW
    WHEN (OLD.expires_at > now()) EXECUTE FUNCTION stress_audit();
"""

GARBAGE_SQL = (
    "SELECT (SELECT count(*) FROM password_reset_tokens"
    "        WHERE expires_at < now() OR used_at IS NOT NULL)"
    "     + (SELECT count(*) FROM email_verification_tokens"
    "        WHERE expires_at < now() OR used_at IS NOT NULL)"
    "     + (SELECT count(*) FROM refresh_tokens WHERE expires_at < now())"
)


class Cleaner(threading.Thread):
    """Runs one cleanup statement every ``every`` seconds until stopped; counts rows and errors."""

    def __init__(self, dsn: str, name: str, statement: str, every: float, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.dsn, self.statement, self.every, self.stop = dsn, statement, every, stop
        self.runs = 0
        self.deleted = 0
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            with connect(self.dsn) as conn:
                conn.execute("SELECT set_config('application_name', %s, false)", (self.name,))
                next_run = time.monotonic()
                while not self.stop.is_set():
                    row = conn.execute(self.statement).fetchone()
                    assert row is not None
                    self.runs += 1
                    self.deleted += int(row[-1])
                    next_run += self.every
                    self.stop.wait(max(0.0, next_run - time.monotonic()))
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")


def deadlocks(dsn: str) -> int:
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def scalar(conn: Any, query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.slow
@pytest.mark.soak
def test_eight_writers_lose_no_live_token_while_cleanup_runs_every_second(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "head")
    with connect(fresh_db) as conn:
        conn.execute(AUDIT_SQL)
    deadlocks_before = deadlocks(fresh_db)

    stop = threading.Event()
    writers: list[Writer] = start_writers(fresh_db, WRITERS, USERS_PER_WRITER, stop)
    cleaners = [
        Cleaner(fresh_db, "scheduler", "CALL pgsweep.sweep()", 1.0, stop),
        Cleaner(fresh_db, "master", "SELECT * FROM cleanup_all_expired_tokens()", 0.5, stop),
    ]
    started = time.monotonic()
    for cleaner in cleaners:
        cleaner.start()
    stop.wait(STRESS_SECONDS)
    stop.set()
    for thread in [*writers, *cleaners]:
        thread.join(timeout=60)
        assert not thread.is_alive(), f"{thread.name} did not stop"
    elapsed = time.monotonic() - started

    missing_before_final = missing_live_tokens(fresh_db, writers)
    with connect(fresh_db, autocommit=False) as conn:
        final = conn.execute("SELECT * FROM cleanup_all_expired_tokens()").fetchone()
        garbage_left = scalar(conn, GARBAGE_SQL)  # same transaction, same now()
        now = scalar(conn, "SELECT now()")
        ledger_live = live_in_ledgers(writers, now)
        surviving = {
            str(r[0])
            for table in ("password_reset_tokens", "email_verification_tokens", "refresh_tokens")
            for r in conn.execute(f"SELECT token_hash FROM {table}")
        }
        conn.commit()
        audited = conn.execute("SELECT * FROM stress_live_deleted LIMIT 5").fetchall()
        audited_count = scalar(conn, "SELECT count(*) FROM stress_live_deleted")
        rows_left = scalar(
            conn,
            "SELECT (SELECT count(*) FROM password_reset_tokens)"
            " + (SELECT count(*) FROM email_verification_tokens)"
            " + (SELECT count(*) FROM refresh_tokens)",
        )
    missing_after_final = missing_live_tokens(fresh_db, writers)
    # Exactly the tokens the ledgers hold as unexpired survive: none lost, no garbage kept.
    expected = {h for w in writers for h, t in w.live.items() if t.expires_at >= now}
    deadlocks_seen = deadlocks(fresh_db) - deadlocks_before

    ops = sum(sum(w.report.ops.values()) for w in writers)
    errors = [e for w in writers for e in w.report.errors] + [
        e for c in cleaners for e in c.errors
    ]
    violations = [v for w in writers for v in w.report.violations]
    warnings = [n for w in writers for n in w.report.notices]
    figures = {
        "writers": WRITERS,
        "users": WRITERS * USERS_PER_WRITER,
        "seconds": round(elapsed, 1),
        "writer_ops": ops,
        "ops_per_second": round(ops / elapsed),
        "ops_by_flow": dict(sum((w.report.ops for w in writers), start=Counter[str]())),
        "ledger_tokens_issued": sum(w.report.issued for w in writers),
        "ledger_live_at_end": ledger_live,
        "max_writer_op_seconds": round(max(w.report.max_latency_s for w in writers), 3),
        "sweep_runs": cleaners[0].runs,
        "sweep_rows_deleted": cleaners[0].deleted,
        "master_runs": cleaners[1].runs,
        "master_rows_deleted": cleaners[1].deleted,
        "final_cleanup_rows": final[3] if final else None,
        "rows_left_after_final_cleanup": rows_left,
        "ledger_tokens_not_surviving": len(expected - surviving),
        "surviving_tokens_not_in_ledger": len(surviving - expected),
        "garbage_left_after_final_cleanup": garbage_left,
        "violations": len(violations)
        + len(missing_before_final)
        + len(missing_after_final)
        + len(expected - surviving),
        "live_rows_deleted_audited": audited_count,
        "deadlocks": deadlocks_seen,
        "errors": len(errors),
        "trigger_warnings": len(warnings),
    }
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2) + "\n")
    print("\nstress:", json.dumps(figures))

    assert errors == []
    assert violations == []
    assert missing_before_final == []
    assert missing_after_final == []
    assert audited == [], f"{audited_count} live rows deleted"
    assert deadlocks_seen == 0
    assert warnings == []
    assert garbage_left == 0
    assert surviving == expected
    assert rows_left == len(expected)
    # The run meant something: every flow ran, both cleaners ran and deleted, the ledger was
    # checked against live tokens.
    flows = ("issue", "redeem", "login", "refresh")
    assert all(figures["ops_by_flow"].get(f, 0) > 0 for f in flows)
    assert cleaners[0].runs >= STRESS_SECONDS / 2
    assert cleaners[0].deleted > 0
    assert cleaners[1].deleted > 0
    assert ledger_live > 0
