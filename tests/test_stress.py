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

The figures are printed and written to ``.reports/stress.json`` (docs/testing.md, "Reliability").
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
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
# Schema-qualified: it also fires inside the cleanup, whose search_path is pg_catalog, pg_temp.
AUDIT_SQL = """
CREATE TABLE public.stress_live_deleted (tbl text, token_hash text, expires_at timestamptz,
                                  deleted_at timestamptz, by_app text, depth int);
CREATE FUNCTION public.stress_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 AND current_setting('application_name') LIKE 'writer%' THEN
        RETURN NULL;  -- the app deleting its own token
    END IF;
    INSERT INTO public.stress_live_deleted VALUES (TG_TABLE_NAME, OLD.token_hash, OLD.expires_at,
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


@dataclass
class Outcome:
    figures: dict[str, Any]
    errors: list[str]
    violations: list[str]
    lost: set[str]  # hashes of ledger tokens found gone while live, by any check
    audited: list[tuple[Any, ...]]
    garbage_left: int
    surviving: set[str]
    expected: set[str]
    cleaners: list[Cleaner]


def run_stress(
    dsn: str,
    seconds: float,
    writer_count: int,
    users_each: int,
    midway: Callable[[], None] | None = None,
) -> Outcome:
    """Writers and both cleaners for ``seconds`` (``midway`` runs half-way), then the checks."""
    migrate.upgrade(dsn, "head")
    with connect(dsn) as conn:
        conn.execute(AUDIT_SQL)
    deadlocks_before = deadlocks(dsn)

    stop = threading.Event()
    writers: list[Writer] = start_writers(dsn, writer_count, users_each, stop)
    cleaners = [
        Cleaner(dsn, "scheduler", "CALL pgsweep.sweep()", 1.0, stop),
        Cleaner(dsn, "master", "SELECT * FROM cleanup_all_expired_tokens()", 0.5, stop),
    ]
    started = time.monotonic()
    for cleaner in cleaners:
        cleaner.start()
    if midway is not None:
        stop.wait(seconds / 2)
        midway()
        stop.wait(seconds / 2)
    else:
        stop.wait(seconds)
    stop.set()
    for thread in [*writers, *cleaners]:
        thread.join(timeout=60)
        assert not thread.is_alive(), f"{thread.name} did not stop"
    elapsed = time.monotonic() - started

    missing_before_final = missing_live_tokens(dsn, writers)
    with connect(dsn, autocommit=False) as conn:
        final = conn.execute("SELECT * FROM cleanup_all_expired_tokens()").fetchone()
        garbage_left = int(scalar(conn, GARBAGE_SQL))  # same transaction, same now()
        now = scalar(conn, "SELECT now()")
        ledger_live = live_in_ledgers(writers, now)
        surviving = {
            str(r[0])
            for table in ("password_reset_tokens", "email_verification_tokens", "refresh_tokens")
            for r in conn.execute(f"SELECT token_hash FROM {table}")
        }
        conn.commit()
        audited = conn.execute("SELECT * FROM stress_live_deleted").fetchall()
    missing_after_final = missing_live_tokens(dsn, writers)
    # Exactly the tokens the ledgers hold as unexpired survive: none lost, no garbage kept.
    expected = {h for w in writers for h, t in w.live.items() if t.expires_at >= now}
    deadlocks_seen = deadlocks(dsn) - deadlocks_before

    ops = sum(sum(w.report.ops.values()) for w in writers)
    errors = [e for w in writers for e in w.report.errors] + [e for c in cleaners for e in c.errors]
    violations = [v for w in writers for v in w.report.violations]
    lost = {h for w in writers for h in w.report.lost}
    lost |= {*missing_before_final, *missing_after_final, *(expected - surviving)}
    warnings = [n for w in writers for n in w.report.notices]
    if deadlocks_seen:
        errors.append(f"{deadlocks_seen} deadlocks in pg_stat_database")
    errors += [f"trigger warning: {w}" for w in warnings]
    figures = {
        "writers": writer_count,
        "users": writer_count * users_each,
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
        "rows_left_after_final_cleanup": len(surviving),
        "garbage_left_after_final_cleanup": garbage_left,
        "violations": len(lost),
        "live_rows_deleted_audited": len(audited),
        "deadlocks": deadlocks_seen,
        "errors": len(errors) - len(warnings) - (1 if deadlocks_seen else 0),
        "trigger_warnings": len(warnings),
    }
    return Outcome(
        figures, errors, violations, lost, audited, garbage_left, surviving, expected, cleaners
    )


@pytest.mark.slow
@pytest.mark.soak
def test_eight_writers_lose_no_live_token_while_cleanup_runs_every_second(fresh_db: str) -> None:
    outcome = run_stress(fresh_db, STRESS_SECONDS, WRITERS, USERS_PER_WRITER)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(outcome.figures, indent=2) + "\n")
    print("\nstress:", json.dumps(outcome.figures))

    assert outcome.errors == []  # writers, cleaners, deadlocks, trigger warnings
    assert outcome.violations == []
    assert outcome.lost == set()
    assert outcome.audited == [], "live rows were deleted"
    assert outcome.garbage_left == 0
    assert outcome.surviving == outcome.expected
    # The run meant something: every flow ran, both cleaners ran and deleted, the ledger was
    # checked against live tokens.
    flows = ("issue", "redeem", "login", "refresh")
    assert all(outcome.figures["ops_by_flow"].get(f, 0) > 0 for f in flows)
    scheduler, master = outcome.cleaners
    assert scheduler.runs >= STRESS_SECONDS / 2
    assert scheduler.deleted > 0
    assert master.deleted > 0
    assert outcome.figures["ledger_live_at_end"] > 0


def test_the_stress_checks_catch_a_delete_of_live_tokens(fresh_db: str) -> None:
    # The detectors of the test above, shown to fire: half-way through a short run, a rogue
    # statement deletes one token of each table that is live for a long while yet.
    rogue: list[str] = []

    def delete_three_live_tokens() -> None:
        with connect(fresh_db) as conn:
            # The cleanup's own search_path, so the audit is shown to work inside a cleanup too.
            conn.execute("SET search_path = pg_catalog, pg_temp")
            for table in (
                "public.password_reset_tokens",
                "public.email_verification_tokens",
                "public.refresh_tokens",
            ):
                unused = "used_at IS NULL AND" if table != "public.refresh_tokens" else ""
                rogue.extend(
                    str(r[0])
                    for r in conn.execute(
                        # FOR UPDATE: the row is held from the moment it is picked, so an app
                        # update in between cannot move it away from the ctid (which made this
                        # delete find nothing now and then, and the test fail on its own rogue).
                        f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table}"
                        f" WHERE {unused} expires_at > now() + interval '1 minute'"
                        " LIMIT 1 FOR UPDATE) RETURNING token_hash"
                    )
                )

    outcome = run_stress(fresh_db, 4, 2, 50, midway=delete_three_live_tokens)
    assert len(rogue) == 3
    assert outcome.lost == set(rogue)  # the ledgers, whichever check met them first
    assert sorted(str(row[1]) for row in outcome.audited) == sorted(rogue)
    assert outcome.errors == []
