"""The read-only monitoring role of docs/engine.md, "Roles": it can see what is expired
(``pgsweep status``, ``pgsweep cleanup --dry-run``) and delete nothing."""

from __future__ import annotations

import pytest
from psycopg.errors import InsufficientPrivilege

from pgsweep import engine, errors
from tests import own_tables
from tests.cli import pgsweep
from tests.pg import connect
from tests.roles import grant, temporary_roles

# Statement for statement as docs/engine.md shows them ({monitor} is the role).
MONITOR_GRANTS = (
    "GRANT SELECT ON pgsweep.expiry_rule, pgsweep.rules, pgsweep.release TO {monitor}",
    "GRANT EXECUTE ON FUNCTION pgsweep.version(), pgsweep.garbage_counts(regclass),"
    " pgsweep.cutoff_literal(pgsweep.expiry_rule),"
    " pgsweep.instant_expression(pgsweep.expiry_rule),"
    " pgsweep.rule_problem(pgsweep.expiry_rule), pgsweep.column_type(regclass, name),"
    " pgsweep.rule_condition(pgsweep.expiry_rule, text, text, boolean),"
    " pgsweep.epoch_scale(pgsweep.expiry_rule)"
    " TO {monitor}",
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
    with connect(fresh_db) as conn:
        left = conn.execute("SELECT sum(garbage) FROM pgsweep.garbage_counts()").fetchone()
    assert left == (sum(own_tables.GARBAGE.values()),)
