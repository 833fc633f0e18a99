"""The scenarios of the benchmark issue, each timed side by side against the plain approach.

Every timed run measures only the call under test, from the client, on a connection that is
already open; what a run needs before it (garbage put back, vacuum, a fresh file copy of the
database) is done outside the clock and identically for both sides. pgsweep and plain runs
alternate, and swap order every run, so that drift on the machine hits both alike.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from bench.dataset import GARBAGE, TOKEN_TABLES, Pair, restore_garbage, vacuum_tokens
from bench.report import Figure, ScenarioResult, median, percentile
from bench.server import BenchServer, connect

Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Settings:
    runs: int
    warmup: int
    seed: str
    s4_clients: int
    s4_seconds: float
    s4_warmup_seconds: float


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _orders(settings: Settings) -> list[tuple[bool, bool]]:
    """(measured?, pgsweep first?) for every run: warm-ups first, then alternating order."""
    total = settings.warmup + settings.runs
    return [(i >= settings.warmup, i % 2 == 0) for i in range(total)]


def _size(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1000 and rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


def _cleanup_counts(conn: Conn, function: str) -> list[int]:
    row = conn.execute(
        sql.SQL("SELECT * FROM {}()").format(sql.Identifier(function))
    ).fetchone()
    assert row is not None
    return [int(v) for v in row]


PGSWEEP_CLEANUP = "cleanup_all_expired_tokens"
PLAIN_CLEANUP = "plain_cleanup_all_expired_tokens"


# --- S1 and S2: one cleanup call on the contract function ---------------------------------


def steady_state(
    server: BenchServer, pair: Pair, settings: Settings, scenario: str, target: float | None
) -> ScenarioResult:
    """S1: the tables hold only live rows; both cleanups find nothing to delete."""
    pg_dsn, plain_dsn = server.dsn(pair.pgsweep_db), server.dsn(pair.plain_db)
    with connect(pg_dsn) as pg, connect(plain_dsn) as plain:
        _cleanup_counts(pg, PGSWEEP_CLEANUP)
        _cleanup_counts(plain, PLAIN_CLEANUP)
        vacuum_tokens(pg_dsn)
        vacuum_tokens(plain_dsn)
        times: dict[str, list[float]] = {"pgsweep": [], "plain": []}
        deleted: dict[str, int] = {"pgsweep": 0, "plain": 0}
        for measured, pgsweep_first in _orders(settings):
            sides = [("pgsweep", pg, PGSWEEP_CLEANUP), ("plain", plain, PLAIN_CLEANUP)]
            for side, conn, function in sides if pgsweep_first else reversed(sides):
                start = time.perf_counter()
                counts = _cleanup_counts(conn, function)
                elapsed = _ms(start)
                deleted[side] += counts[-1]
                if measured:
                    times[side].append(elapsed)
    restore_garbage(pg_dsn)
    restore_garbage(plain_dsn)
    pgsweep_ms, plain_ms = median(times["pgsweep"]), median(times["plain"])
    ratio = plain_ms / pgsweep_ms
    rows = pair.layout.live
    return ScenarioResult(
        scenario,
        [
            Figure(
                scenario,
                f"cleanup_all_expired_tokens(), {_size(rows)} live rows/table, 0 to delete",
                pgsweep_ms,
                plain_ms,
                "ms",
                ratio,
                "x faster",
                f">= {target:.0f}x faster" if target else "",
                None if target is None else ratio >= target,
            )
        ],
        {"rows_per_table": rows, "runs_ms": times, "rows_deleted": deleted},
    )


def _save_garbage_ctids(conn: Conn) -> None:
    """Find the garbage beforehand: its ctids, per table, in temporary tables."""
    for table in TOKEN_TABLES:
        name = sql.Identifier(f"limit_{table}")
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} AS SELECT ctid AS tid FROM {} WHERE {}").format(
                name, sql.Identifier(table), sql.SQL(GARBAGE[table])
            )
        )


def _delete_by_ctid(conn: Conn) -> int:
    """The limit: delete the rows found beforehand, by TID, in one transaction. The array is
    read at run time (an InitPlan) so that the plan is the TID scan whatever its size."""
    deleted = 0
    with conn.transaction():
        for table in TOKEN_TABLES:
            cur = conn.execute(
                sql.SQL("DELETE FROM {} WHERE ctid = ANY (ARRAY(SELECT tid FROM {}))").format(
                    sql.Identifier(table), sql.Identifier(f"limit_{table}")
                )
            )
            deleted += cur.rowcount
    return deleted


def daily(
    server: BenchServer,
    pair: Pair,
    settings: Settings,
    scenario: str,
    target: float | None,
    with_limit: bool,
) -> ScenarioResult:
    """S2: 1 % expired and 1 % used among the live rows; each run deletes exactly those rows,
    which are put back (and both sides vacuumed) before the next run.

    The limit: the same rows, found beforehand (their ctids, saved in temporary tables),
    deleted by ``DELETE … WHERE ctid = ANY(…)`` in one transaction, on the pgsweep database.
    That is the cost of deleting those rows alone, without finding them or locking them first
    (reading back the saved ctids, a few milliseconds, is inside it)."""
    pg_dsn, plain_dsn = server.dsn(pair.pgsweep_db), server.dsn(pair.plain_db)
    expected = sum(pair.layout.garbage_rows(t) for t in TOKEN_TABLES)
    times: dict[str, list[float]] = {"pgsweep": [], "plain": [], "limit": []}
    deleted: dict[str, list[int]] = {"pgsweep": [], "plain": [], "limit": []}
    with connect(pg_dsn) as pg, connect(plain_dsn) as plain:

        def run_pgsweep() -> int:
            return _cleanup_counts(pg, PGSWEEP_CLEANUP)[-1]

        def run_plain() -> int:
            return _cleanup_counts(plain, PLAIN_CLEANUP)[-1]

        variants: list[tuple[str, str, Callable[[], int]]] = [
            ("pgsweep", pg_dsn, run_pgsweep),
            ("plain", plain_dsn, run_plain),
        ]
        for measured, pgsweep_first in _orders(settings):
            for side, dsn, call in variants if pgsweep_first else reversed(variants):
                start = time.perf_counter()
                count = call()
                elapsed = _ms(start)
                restore_garbage(dsn)
                if measured:
                    times[side].append(elapsed)
                    deleted[side].append(count)
            if with_limit:
                _save_garbage_ctids(pg)
                start = time.perf_counter()
                count = _delete_by_ctid(pg)
                elapsed = _ms(start)
                restore_garbage(pg_dsn)
                if measured:
                    times["limit"].append(elapsed)
                    deleted["limit"].append(count)
    pgsweep_ms, plain_ms = median(times["pgsweep"]), median(times["plain"])
    ratio = plain_ms / pgsweep_ms
    rows = pair.layout.live
    figures = [
        Figure(
            scenario,
            f"cleanup_all_expired_tokens(), {_size(rows)} live rows/table, {expected:,} to delete",
            pgsweep_ms,
            plain_ms,
            "ms",
            ratio,
            "x faster",
            f">= {target:.0f}x faster" if target else "",
            None if target is None else ratio >= target,
        )
    ]
    if with_limit:
        limit_ms = median(times["limit"])
        figures.append(
            Figure(
                scenario,
                "same call vs the limit: DELETE of the same rows by ctid, found beforehand",
                pgsweep_ms,
                limit_ms,
                "ms",
                pgsweep_ms / limit_ms,
                "x the limit",
                "report",
                None,
                "limit",
            )
        )
        figures.append(
            Figure(
                scenario,
                "the most any cleanup could gain here: plain vs the limit",
                limit_ms,
                plain_ms,
                "ms",
                plain_ms / limit_ms,
                "x faster",
                "report",
                None,
            )
        )
    return ScenarioResult(
        scenario,
        figures,
        {
            "rows_per_table": rows,
            "expected_deleted": expected,
            "rows_deleted": deleted,
            "runs_ms": times,
        },
    )


# --- S3: a backlog, function and procedure ------------------------------------------------


def _batches_from_client(conn: Conn, batch_size: int) -> tuple[int, list[float]]:
    """What ``CALL pgsweep.sweep()`` does, driven from the client in autocommit mode so each
    batch's transaction (its lock hold) can be timed: same rules, order, ranges and stop test."""
    rules = conn.execute(
        "SELECT r.table_name::text, r.column_name::text FROM pgsweep.expiry_rule r"
        " ORDER BY r.table_name::text, r.column_name"
    ).fetchall()
    total = 0
    durations: list[float] = []
    for table, column in rules:
        start_from: str | None = None
        while True:
            start = time.perf_counter()
            row = conn.execute(
                "SELECT b.deleted, b.next_from FROM pgsweep.expiry_rule r,"
                " pgsweep.purge_range(r, %s, %s) b"
                " WHERE r.table_name = %s::regclass AND r.column_name = %s",
                (start_from, batch_size, table, column),
            ).fetchone()
            durations.append(_ms(start))
            assert row is not None
            total += int(row[0])
            if row[1] is None:
                break
            start_from = row[1]
    return total, durations


def backlog(
    server: BenchServer, pair: Pair, settings: Settings, batch_size: int
) -> ScenarioResult:
    """S3: half of every token table expired. Each run works on a fresh file copy of the pair's
    databases, so every variant deletes the same rows from the same pages."""
    scenario = "S3 backlog"
    expected = sum(pair.layout.garbage_rows(t) for t in TOKEN_TABLES)
    names = ("pgsweep function", "pgsweep procedure", "pgsweep batches", "plain")
    times: dict[str, list[float]] = {n: [] for n in names}
    deleted: dict[str, list[int]] = {n: [] for n in names}
    batch_ms: list[float] = []
    copy = "bench_s3_run"

    def run(variant: str) -> tuple[int, float, list[float]]:
        template = pair.plain_db if variant == "plain" else pair.pgsweep_db
        dsn = server.create_database(copy, template=template)
        try:
            with connect(dsn) as conn:
                conn.execute("SELECT 1")
                batches: list[float] = []  # per-batch durations, known only when client-driven
                start = time.perf_counter()
                if variant == "pgsweep function":
                    count = _cleanup_counts(conn, PGSWEEP_CLEANUP)[-1]
                elif variant == "pgsweep procedure":
                    row = conn.execute("CALL pgsweep.sweep(NULL, %s)", (batch_size,)).fetchone()
                    assert row is not None
                    count = int(row[0])
                elif variant == "pgsweep batches":
                    count, batches = _batches_from_client(conn, batch_size)
                else:
                    count = _cleanup_counts(conn, PLAIN_CLEANUP)[-1]
                return count, _ms(start), batches
        finally:
            server.drop_database(copy)

    for measured, pgsweep_first in _orders(settings):
        order = list(names) if pgsweep_first else list(reversed(names))
        for variant in order:
            count, elapsed, batches = run(variant)
            if measured:
                times[variant].append(elapsed)
                deleted[variant].append(count)
                batch_ms += batches
    plain_ms = median(times["plain"])
    function_ms = median(times["pgsweep function"])
    procedure_ms = median(times["pgsweep procedure"])
    batches_ms = median(times["pgsweep batches"])
    longest = max(batch_ms)
    rows = pair.layout.live
    what = f"{_size(rows)} rows/table, {expected:,} expired"
    figures = [
        Figure(scenario, f"cleanup_all_expired_tokens() (one transaction), {what}", function_ms,
               plain_ms, "ms", function_ms / plain_ms, "x plain", "<= 1.5x plain",
               function_ms / plain_ms <= 1.5),
        Figure(scenario, "CALL pgsweep.sweep() (a transaction per batch)", procedure_ms,
               plain_ms, "ms", procedure_ms / plain_ms, "x plain", "<= 1.5x plain",
               procedure_ms / plain_ms <= 1.5),
        Figure(scenario, "sweep driven batch by batch from the client (timed per batch)",
               batches_ms, plain_ms, "ms", batches_ms / plain_ms, "x plain", "report", None),
        Figure(scenario, f"longest transaction: batch max (p50 {percentile(batch_ms, 0.5):.1f} ms)"
               ", vs plain's one DELETE transaction", longest, plain_ms, "ms", plain_ms / longest,
               "x shorter", "<= 250 ms", longest <= 250),
    ]
    return ScenarioResult(
        scenario,
        figures,
        {
            "rows_per_table": rows,
            "expected_deleted": expected,
            "batch_size": batch_size,
            "batches_per_run": len(batch_ms) // max(1, settings.runs),
            "batch_ms_p50": percentile(batch_ms, 0.5),
            "batch_ms_p99": percentile(batch_ms, 0.99),
            "batch_ms_max": longest,
            "rows_deleted": deleted,
            "runs_ms": times,
        },
    )


# --- S4: the app's insert path under concurrency ----------------------------------------


@dataclass
class FlowResult:
    iterations: int = 0
    seconds: float = 0.0
    insert_ms_max: float = 0.0
    insert_ms: list[float] | None = None
    errors: Counter[str] | None = None
    warnings: int = 0

    @property
    def per_second(self) -> float:
        return self.iterations / self.seconds if self.seconds else 0.0


def _user_id(seed: str, number: int) -> str:
    """The id the loader gave user ``number``: md5(seed || ':user:' || number)::uuid."""
    return str(uuid.UUID(hashlib.md5(f"{seed}:user:{number}".encode()).hexdigest()))  # noqa: S324


def _run_flow(dsn: str, settings: Settings, users: int) -> FlowResult:
    """``s4_clients`` threads, each with its own connection, run the app's "issue a password
    reset token" flow for random users: invalidate the user's outstanding tokens, insert a new
    one, commit. Only iterations that start after the warm-up and end before the deadline
    count; every error is counted by SQLSTATE and the transaction retried with another user."""
    begin_at = time.perf_counter() + settings.s4_warmup_seconds
    end_at = begin_at + settings.s4_seconds
    lock = threading.Lock()
    result = FlowResult(insert_ms=[], errors=Counter())

    def client(number: int) -> None:
        # Reproducible choice of users, not security: a seeded PRNG is the point.
        rng = random.Random(f"{settings.seed}:client:{number}")  # noqa: S311
        latencies: list[float] = []
        done = 0
        errors: Counter[str] = Counter()
        warnings = 0

        def on_notice(diag: psycopg.errors.Diagnostic) -> None:
            nonlocal warnings
            if diag.severity_nonlocalized == "WARNING":
                warnings += 1

        with connect(dsn, autocommit=False) as conn:
            conn.add_notice_handler(on_notice)
            while (now := time.perf_counter()) < end_at:
                user = _user_id(settings.seed, rng.randint(1, users))
                try:
                    conn.execute(
                        "UPDATE password_reset_tokens SET used_at = now()"
                        " WHERE user_id = %s AND used_at IS NULL",
                        (user,),
                    )
                    insert_start = time.perf_counter()
                    conn.execute(
                        "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at)"
                        " VALUES (%s, %s, now() + interval '1 hour')",
                        (user, uuid.UUID(int=rng.getrandbits(128)).hex),
                    )
                    insert_ms = _ms(insert_start)
                    conn.commit()
                except psycopg.Error as exc:
                    conn.rollback()
                    if now >= begin_at:
                        errors[exc.sqlstate or type(exc).__name__] += 1
                    continue
                if now >= begin_at and time.perf_counter() <= end_at:
                    done += 1
                    latencies.append(insert_ms)
        with lock:
            result.iterations += done
            assert result.insert_ms is not None
            assert result.errors is not None
            result.insert_ms += latencies
            result.errors += errors
            result.warnings += warnings

    threads = [threading.Thread(target=client, args=(n,)) for n in range(settings.s4_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = settings.s4_seconds
    result.insert_ms_max = max(result.insert_ms or [0.0])
    return result


def _prewarm(conn: Conn) -> None:
    """Load the flow's tables and indexes into shared buffers, so that no variant spends its
    first seconds reading a freshly copied database (when pg_prewarm is available)."""
    if not conn.execute(
        "SELECT FROM pg_available_extensions WHERE name = 'pg_prewarm'"
    ).fetchone():
        return
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    conn.execute(
        "SELECT pg_prewarm(c.oid) FROM pg_class c"
        " WHERE c.oid IN ('password_reset_tokens'::regclass, 'users'::regclass)"
        "    OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN"
        "                 ('password_reset_tokens'::regclass, 'users'::regclass))"
    )


def insert_path(server: BenchServer, pair: Pair, settings: Settings) -> ScenarioResult:
    """S4: the same flow, from the same starting data (a fresh copy of the pair, garbage
    present), with no cleanup trigger, with pgsweep's, and with the plain one."""
    scenario = "S4 insert path"
    copy = "bench_s4_run"
    results: dict[str, FlowResult] = {}
    for variant in ("no trigger", "pgsweep trigger", "plain trigger"):
        template = pair.plain_db if variant == "plain trigger" else pair.pgsweep_db
        dsn = server.create_database(copy, template=template)
        try:
            with connect(dsn) as conn:
                if variant == "no trigger":
                    conn.execute(
                        "DROP TRIGGER trg_password_reset_tokens_cleanup ON password_reset_tokens"
                    )
                # Autovacuum as PostgreSQL ships it (the timed cleanups turn it off per table).
                conn.execute("ALTER TABLE password_reset_tokens RESET (autovacuum_enabled)")
                _prewarm(conn)
            results[variant] = _run_flow(dsn, settings, pair.users)
        finally:
            server.drop_database(copy)
    none, ours, plain = (results[v] for v in ("no trigger", "pgsweep trigger", "plain trigger"))
    # A tiny smoke run may complete no iteration at all in a variant.
    reference = max(none.per_second, 1e-9)
    share = ours.per_second / reference
    clients = settings.s4_clients

    def failures(r: FlowResult) -> int:
        return sum((r.errors or Counter()).values())

    figures = [
        Figure(scenario, f"throughput, {clients} clients, pgsweep trigger vs no trigger",
               ours.per_second, none.per_second, "it/s", share * 100, " %", ">= 90 %",
               share >= 0.9, "no trigger"),
        Figure(scenario, "throughput, plain trigger vs no trigger", plain.per_second,
               none.per_second, "it/s", plain.per_second / reference * 100, " %",
               "report", None, "no trigger"),
        Figure(scenario, "longest insert wait: pgsweep trigger (baseline: plain trigger)",
               ours.insert_ms_max, plain.insert_ms_max, "ms", None, "", "report", None,
               "plain trigger"),
        Figure(scenario, "errors/deadlocks: pgsweep trigger (baseline: plain trigger)",
               failures(ours), failures(plain), "", None, "", "none", failures(ours) == 0,
               "plain trigger"),
    ]
    facts: dict[str, Any] = {"clients": clients, "seconds": settings.s4_seconds}
    for variant, r in results.items():
        facts[variant] = {
            "iterations": r.iterations,
            "per_second": r.per_second,
            "insert_ms_p50": percentile(r.insert_ms or [0.0], 0.5),
            "insert_ms_p99": percentile(r.insert_ms or [0.0], 0.99),
            "insert_ms_max": r.insert_ms_max,
            "errors_by_sqlstate": dict(r.errors or {}),
            "deadlocks": (r.errors or Counter())["40P01"],
            "cleanup_warnings": r.warnings,
        }
    return ScenarioResult(scenario, figures, facts)


# --- S5: deck progress ------------------------------------------------------------------


STALE = (
    "UPDATE user_deck_progress SET updated_at = now() - interval '2 hours' WHERE user_id = %s"
)
PROGRESS = (
    "SELECT deck_id, total_cards, mastered_cards, cards_due_today, total_practices,"
    " last_practiced_at FROM user_deck_progress WHERE user_id = %s ORDER BY deck_id"
)


def deck_progress(
    server: BenchServer, pair: Pair, settings: Settings, decks: int, cards: int
) -> ScenarioResult:
    """S5: one user, every deck-progress row stale. pgsweep: one ``refresh_stale_deck_progress``
    call. Plain: the client reads the stale decks and calls ``refresh_deck_progress`` per deck,
    in one transaction."""
    scenario = "S5 deck progress"
    user = _user_id(settings.seed, 1)
    times: dict[str, list[float]] = {"pgsweep": [], "plain": []}
    refreshed: dict[str, list[int]] = {"pgsweep": [], "plain": []}
    with (
        connect(server.dsn(pair.pgsweep_db)) as pg,
        connect(server.dsn(pair.plain_db)) as plain,
    ):

        def run_pgsweep() -> int:
            row = pg.execute("SELECT refresh_stale_deck_progress(%s)", (user,)).fetchone()
            assert row is not None
            return int(row[0])

        def run_plain() -> int:
            with plain.transaction():
                stale = plain.execute(
                    "SELECT deck_id FROM user_deck_progress WHERE user_id = %s"
                    " AND (updated_at IS NULL OR updated_at < now() - interval '1 hour')",
                    (user,),
                ).fetchall()
                for (deck,) in stale:
                    plain.execute("SELECT refresh_deck_progress(%s, %s)", (user, deck))
            return len(stale)

        sides: list[tuple[str, Conn, Callable[[], int]]] = [
            ("pgsweep", pg, run_pgsweep),
            ("plain", plain, run_plain),
        ]
        for measured, pgsweep_first in _orders(settings):
            for side, conn, call in sides if pgsweep_first else reversed(sides):
                conn.execute(STALE, (user,))
                conn.execute("VACUUM user_deck_progress")
                start = time.perf_counter()
                count = call()
                elapsed = _ms(start)
                if measured:
                    times[side].append(elapsed)
                    refreshed[side].append(count)
        ours = pg.execute(PROGRESS, (user,)).fetchall()
        same = ours == plain.execute(PROGRESS, (user,)).fetchall()
    pgsweep_ms, plain_ms = median(times["pgsweep"]), median(times["plain"])
    return ScenarioResult(
        scenario,
        [
            Figure(scenario, f"refresh_stale_deck_progress(), {decks} stale decks x {cards} cards"
                   " (baseline: refresh_deck_progress per deck from the client)", pgsweep_ms,
                   plain_ms, "ms", plain_ms / pgsweep_ms, "x faster", "report", None)
        ],
        {"decks": decks, "cards_per_deck": cards, "refreshed": refreshed,
         "same_progress_rows_on_both_sides": same, "runs_ms": times},
    )
