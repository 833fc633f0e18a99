"""A live Matcha Time database built by the chain as it was at 0008 (the engine embedded in the
app's revisions) moves to the standalone engine (0009) and back while the app keeps issuing,
redeeming and rotating tokens: no live token is lost, no app statement waits long, the public
contract keeps its shapes, verify is green at head, and after the downgrade the app works as
before in a database whose catalog equals a fresh 0008 build.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest

from pgsweep import engine, migrate
from tests.cli import pgsweep
from tests.load import Writer, missing_live_tokens, start_writers
from tests.pg import PgServer, connect, scratch_database, tolerate_lag
from tests.sqlrun import assert_same_catalog, catalog_of
from tests.tokens import TOKEN_TABLES, add_user, remaining_ids, with_triggers, without_triggers

POLICY = migrate.LockPolicy(lock_timeout_ms=200, attempts=30, first_pause_s=0.1, max_pause_s=1.0)
# The writers fail any statement that waits this long (counted as an error); the bound the
# test asserts on the longest one is far below it, and far above the ~1 s the design allows.
WRITER_STATEMENT_TIMEOUT_MS = 15_000
MAX_APP_WAIT_S = 5.0
SEEDED = 200  # live and as many expired tokens per token table, before the upgrade
CONTRACT = (
    "cleanup_expired_password_reset_tokens",
    "cleanup_expired_email_verification_tokens",
    "cleanup_expired_refresh_tokens",
    "cleanup_all_expired_tokens",
    "refresh_deck_progress",
    "refresh_stale_deck_progress",
)
CLEANUPS = CONTRACT[:4]


def contract(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The public contract as a caller sees it: signatures, result types, the columns each
    cleanup returns, and the token tables' insert triggers."""
    routines = conn.execute(
        "SELECT p.oid::regprocedure::text, pg_get_function_result(p.oid) FROM pg_proc p"
        " WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY (%s) ORDER BY 1",
        (list(CONTRACT),),
    ).fetchall()
    columns = {}
    with conn.transaction(force_rollback=True):
        for name in CLEANUPS:
            cur = conn.execute(f"SELECT * FROM {name}()")
            assert cur.description is not None
            columns[name] = [(c.name, c.type_code) for c in cur.description]
    triggers = conn.execute(
        "SELECT c.relname, pg_get_triggerdef(t.oid), t.tgenabled::text FROM pg_trigger t"
        " JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND c.relname = ANY (%s)"
        " ORDER BY 1, 2",
        (list(TOKEN_TABLES),),
    ).fetchall()
    return {"routines": routines, "columns": columns, "triggers": triggers}


def seed_tokens(conn: psycopg.Connection[Any]) -> set[str]:
    """SEEDED live and SEEDED expired tokens per table; returns the live ones' ids."""
    without_triggers(conn)
    user = add_user(conn, "before_0009")
    live: set[str] = set()
    for table in TOKEN_TABLES:
        for expires, keep in (("1 hour", True), ("-1 hour", False)):
            rows = conn.execute(
                f"INSERT INTO {table} (user_id, token_hash, expires_at)"
                " SELECT %s, md5(random()::text), now() + %s::interval"
                " FROM generate_series(1, %s) RETURNING id",
                (user, expires, SEEDED),
            ).fetchall()
            if keep:
                live |= {str(r[0]) for r in rows}
    with_triggers(conn)
    return live


def ops(writers: list[Writer]) -> int:
    return sum(sum(w.report.ops.values()) for w in writers)


def wait_for_more_ops(writers: list[Writer], than: int, more: int = 100) -> int:
    deadline = time.monotonic() + 60
    while ops(writers) < than + more:
        assert time.monotonic() < deadline, "the app stopped making progress"
        assert all(w.is_alive() for w in writers), "a writer died"
        time.sleep(0.05)
    return ops(writers)


def an_insert_sweeps_a_small_batch(dsn: str) -> int:
    """The refresh_tokens insert trigger at work, in a new session and a transaction rolled
    back: 25 more expired tokens, one insert; returns how many expired tokens it deleted."""
    expired = "SELECT count(*) FROM refresh_tokens WHERE expires_at < now()"
    with connect(dsn, autocommit=False) as conn:
        user = add_user(conn, "trigger_check")
        without_triggers(conn)
        conn.execute(
            "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
            " SELECT %s, md5(random()::text), now() - interval '1 hour'"
            " FROM generate_series(1, 25)",
            (user,),
        )
        with_triggers(conn)
        before = conn.execute(expired).fetchone()
        conn.execute(
            "INSERT INTO refresh_tokens (user_id, token_hash, expires_at)"
            " VALUES (%s, 'fresh', now() + interval '1 day')",
            (user,),
        )
        after = conn.execute(expired).fetchone()
        conn.rollback()
    assert before is not None
    assert after is not None
    return int(before[0]) - int(after[0])


@pytest.mark.slow
def test_a_live_0008_database_upgrades_to_the_standalone_engine_and_back_under_load(
    fresh_db: str, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(fresh_db, "0008")
    tolerate_lag(fresh_db)  # its seeded garbage waits an hour on purpose
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('pgsweep.release')").fetchone() == (None,)
        live = seed_tokens(conn)
        at_0008 = contract(conn)
    assert an_insert_sweeps_a_small_batch(fresh_db) == 10

    stop = threading.Event()
    writers = start_writers(fresh_db, 2, 10, stop, statement_timeout_ms=WRITER_STATEMENT_TIMEOUT_MS)
    steps: list[dict[str, Any]] = []
    try:
        done = wait_for_more_ops(writers, 0)
        for step, move, target in (
            ("upgrade 0008 -> head", migrate.upgrade, "head"),
            ("downgrade head -> 0008", migrate.downgrade, "0008"),
        ):
            before, started = ops(writers), time.monotonic()
            move(fresh_db, target, POLICY)
            steps.append(
                {
                    "step": step,
                    "seconds": round(time.monotonic() - started, 2),
                    "app_ops_during": ops(writers) - before,
                }
            )
            done = wait_for_more_ops(writers, done)  # the app carries on after each step
            if target == "head":
                at_head = check_head(fresh_db, live, at_0008, capsys)
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=60)
    assert not any(w.is_alive() for w in writers)

    max_wait = max(w.report.max_latency_s for w in writers)
    print(
        "\n0008 -> head -> 0008 under load:",
        json.dumps({"steps": steps, "app_ops": ops(writers), "max_app_wait_s": round(max_wait, 3)}),
    )
    assert [e for w in writers for e in w.report.errors] == []
    assert [v for w in writers for v in w.report.violations] == []
    assert missing_live_tokens(fresh_db, writers) == []
    assert max_wait < MAX_APP_WAIT_S
    assert {t for t, _ in at_head["rules"]} == set(TOKEN_TABLES)

    # Back at 0008: the app as it was, in a database like one built fresh at 0008.
    assert migrate.current(fresh_db) == "0008"
    with connect(fresh_db) as conn:
        assert live <= set().union(*(remaining_ids(conn, t) for t in TOKEN_TABLES))
        assert contract(conn) == at_0008
        assert conn.execute("SELECT to_regclass('pgsweep.release')").fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname = 'pgsweep_forget_dropped_rules'"
        ).fetchone() == (0,)
        cleaned = conn.execute("SELECT total_cleaned FROM cleanup_all_expired_tokens()").fetchone()
        assert cleaned is not None
        assert cleaned[0] > 0
        for table in TOKEN_TABLES:  # nothing expired is left, and every live token is
            assert conn.execute(
                f"SELECT count(*) FROM {table} WHERE expires_at < now()"
            ).fetchone() == (0,)
        assert live <= set().union(*(remaining_ids(conn, t) for t in TOKEN_TABLES))
    assert an_insert_sweeps_a_small_batch(fresh_db) == 10
    with scratch_database(pg_server, "fresh_0008") as twin:
        migrate.upgrade(twin, "0008")
        assert_same_catalog(catalog_of(twin), catalog_of(fresh_db), "0008 -> head -> 0008")


def check_head(
    dsn: str, live: set[str], at_0008: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """At head, while the app writes: the standalone engine with the embedded one's rules, the
    same contract, every live token, verify green."""
    assert migrate.current(dsn) == migrate.head()
    with connect(dsn) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == (engine.latest(),)
        rules = [
            (str(t), str(c))
            for t, c, p in conn.execute(
                "SELECT table_name, column_name::text, problem FROM pgsweep.rules ORDER BY 1, 2"
            ).fetchall()
            if p is None
        ]
        assert {t for t, _ in rules} == set(TOKEN_TABLES)
        assert contract(conn) == at_0008
        assert live <= set().union(*(remaining_ids(conn, t) for t in TOKEN_TABLES))
    report = pgsweep(capsys, "verify", "--no-cron", "--dsn", dsn)
    assert report.code == 0, report.out
    assert report.out.splitlines()[-1].endswith("all checks pass")
    assert an_insert_sweeps_a_small_batch(dsn) == 10
    return {"rules": rules}
