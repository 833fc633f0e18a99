"""The read-only monitoring role of docs/engine.md, "Roles": it can see what is expired
(``pgsweep status``, ``pgsweep cleanup --dry-run``) and delete nothing."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg.errors import InsufficientPrivilege

from pgsweep import engine, errors
from tests import own_tables
from tests.cli import pgsweep
from tests.pg import connect
from tests.roles import grant, temporary_roles

# Statement for statement as docs/engine.md shows them ({monitor} is the role).
MONITOR_GRANTS = (
    "GRANT SELECT ON pgsweep.expiry_rule, pgsweep.rules, pgsweep.release,"
    " pgsweep.rule_status, pgsweep.runs, pgsweep.rule_last_run, pgsweep.run_failures,"
    " pgsweep.rows_deleted_per_day, pgsweep.rule_counters TO {monitor}",
    "GRANT EXECUTE ON FUNCTION pgsweep.version(), pgsweep.garbage_counts(regclass),"
    " pgsweep.cutoff_literal(pgsweep.expiry_rule),"
    " pgsweep.instant_expression(pgsweep.expiry_rule),"
    " pgsweep.rule_problem(pgsweep.expiry_rule), pgsweep.column_type(regclass, name),"
    " pgsweep.rule_condition(pgsweep.expiry_rule, text, text, boolean),"
    " pgsweep.epoch_scale(pgsweep.expiry_rule),"
    " pgsweep.rule_figures(pgsweep.expiry_rule), pgsweep.table_key(regclass),"
    " pgsweep.default_lag_target(), pgsweep.exact_count_limit(),"
    " pgsweep.run_alive(bigint, bigint)"
    " TO {monitor}",
    # 1.2: a rule's 'keep' dependents are part of its garbage condition.
    "GRANT SELECT ON pgsweep.rule_dependent, pgsweep.dependents TO {monitor}",
    "GRANT EXECUTE ON FUNCTION pgsweep.rule_dependents(pgsweep.expiry_rule),"
    " pgsweep.referenced_condition(oid) TO {monitor}",
    # The tables under a rule, to count their rows (or: GRANT pg_read_all_data TO {monitor}).
    'GRANT USAGE ON SCHEMA "ActingWeb" TO {monitor}',
    'GRANT SELECT ON "ActingWeb"."Attributes", sessions TO {monitor}',
)


def test_the_monitoring_role_sees_the_garbage_and_deletes_nothing(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    with temporary_roles(fresh_db, "monitor") as roles:
        monitor = roles["monitor"]
        before = pgsweep(capsys, "status", "--dsn", monitor.dsn)
        assert before.code == errors.EXIT_FAILED  # no grant yet: permission denied, in words
        assert "permission denied" in before.err
        grant(fresh_db, MONITOR_GRANTS, monitor=monitor)

        shown = pgsweep(capsys, "status", "--dsn", monitor.dsn, "--json")
        assert shown.code == 0, shown.out
        garbage = {t["table"]: t["garbage"] for t in shown.json()["tables"]}
        assert garbage == own_tables.GARBAGE
        dry = pgsweep(capsys, "cleanup", "--dry-run", "--dsn", monitor.dsn, "--json")
        assert dry.code == 0, dry.out
        assert dry.json()["would_delete"] == sum(own_tables.GARBAGE.values())

        refused = pgsweep(capsys, "cleanup", "--dsn", monitor.dsn)
        assert refused.code == errors.EXIT_FAILED
        assert "permission denied" in refused.err
        for statement in ("CALL pgsweep.sweep()", "DELETE FROM sessions"):
            with connect(monitor.dsn) as conn, pytest.raises(InsufficientPrivilege):
                conn.execute(statement)
    with connect(fresh_db) as conn:  # every row is still there (the row expiring in a
        # second may have expired meanwhile: counting garbage could not tell)
        left = sum(sum(own_tables.labels(conn, t).values()) for t in own_tables.TABLES)
    assert left == sum(own_tables.GARBAGE[t] + own_tables.KEPT[t] for t in own_tables.TABLES)


# docs/health-and-metrics.md, "A read-only monitoring role": the role above, plus pg_monitor (every
# session in pg_stat_activity, the standbys in pg_stat_replication).
HEALTH_GRANTS = ("GRANT pg_monitor TO {monitor}", *MONITOR_GRANTS)
GARBAGE_SESSIONS = own_tables.GARBAGE[own_tables.SESSIONS]


def test_the_monitoring_role_runs_health_and_metrics_and_deletes_nothing(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        own_tables.create(conn)
        own_tables.seed(conn)
    before_rows = rows(fresh_db)
    with temporary_roles(fresh_db, "monitor") as roles:
        monitor = roles["monitor"]
        before = pgsweep(capsys, "health", "--dsn", monitor.dsn, "--json")
        unknown = {c["name"] for c in before.json()["checks"] if c["status"] == "unknown"}
        assert unknown == {"rules", "oldest_records"}  # no grant yet: said, never a traceback
        assert before.code == 3  # UNKNOWN: what it may not read, it does not judge
        grant(fresh_db, HEALTH_GRANTS, monitor=monitor)

        shown = pgsweep(capsys, "health", "--dsn", monitor.dsn, "--json")
        checks = {c["name"]: c for c in shown.json()["checks"]}
        assert not [n for n, c in checks.items() if c["status"] == "unknown"], checks
        # The seed's garbage (and, on a slow machine, the row that expires a second later).
        garbage = {d["table"]: d["garbage"] for d in checks["rules"]["details"]}
        assert garbage["public.sessions"] in (GARBAGE_SESSIONS, GARBAGE_SESSIONS + 1)
        scraped = pgsweep(capsys, "metrics", "--dsn", monitor.dsn)
        samples = {
            (s.name, s.labels.get("table")): s.value
            for family in text_string_to_metric_families(scraped.out)
            for s in family.samples
        }
        assert samples[("pgsweep_up", None)] == 1
        assert samples[("pgsweep_garbage_rows", "public.sessions")] in (
            GARBAGE_SESSIONS,
            GARBAGE_SESSIONS + 1,
        )

        refused = pgsweep(capsys, "cleanup", "--dry-run", "--estimate", "--dsn", monitor.dsn)
        assert refused.code == errors.EXIT_FAILED  # the sample batch deletes: not this role's
        assert "permission denied" in refused.out
    assert rows(fresh_db) == before_rows  # (garbage would grow: a seed row expires in 1 s)


def rows(dsn: str) -> tuple[int, ...]:
    with connect(dsn) as conn:
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM {own_tables.ATTRIBUTES}),"
            f" (SELECT count(*) FROM {own_tables.SESSIONS})"
        ).fetchone()
    assert row is not None
    return tuple(row)
