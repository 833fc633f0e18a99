"""Rules of every kind (engine 1.1, docs/rules.md) on tables shaped like the shared seeds':

* ``"Actor"."Attributes"``: an actor framework's attribute store, a ``bigint`` TTL in epoch
  *milliseconds* with NULLs (never expires), under an age rule with a condition on another
  column (``bucket <> 'keep'``);
* ``"Learn"."Users"``: a learning platform's accounts, ``timestamp(3)`` columns holding UTC; a
  condition rule deletes suspended accounts inactive for six months (an OR of two dates);
* ``"Learn".tokens``: a condition rule alone, ``used_at IS NOT NULL``;
* ``"Learn".cache``: orphans, the user id inside the cache key (``user:<id>:...``);
* ``"Learn".achievements``: orphans, the user id in a column (NULL: no user, kept).

Every command covers them with exact counts; the boundaries are a second either side; the orphan
rule never deletes the child of a parent inserted by a transaction not yet committed (two
connections); the downgrade to 1.0 refuses while such rules exist.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from typing import Any

import psycopg
import pytest

from pgsweep import cron, engine, verify
from tests.cli import Outcome, pgsweep, show_operator
from tests.cron_cluster import cron_cluster
from tests.engine_downgrade import downgrade_to, run_downgrade
from tests.pg import connect, tolerate_lag

ATTRIBUTES = '"Actor"."Attributes"'
USERS = '"Learn"."Users"'
TOKENS = '"Learn".tokens'
CACHE = '"Learn".cache'
ACHIEVEMENTS = '"Learn".achievements'
TABLES = (ATTRIBUTES, USERS, TOKENS, CACHE, ACHIEVEMENTS)
ORPHAN_TABLES = (CACHE, ACHIEVEMENTS)
RULES = {
    ATTRIBUTES: "ttl_timestamp",
    USERS: "status",
    TOKENS: "used_at",
    CACHE: "key",
    ACHIEVEMENTS: "user_id",
}
INACTIVE = (
    "status = 'suspended'"
    " AND coalesce(last_login_at, created_at) < (now() AT TIME ZONE 'UTC') - interval '6 months'"
)
CACHE_KEY = "substring(key FROM '^user:([0-9]+):')::bigint"
# What each table keeps and loses after seed(), by label.
GARBAGE = {ATTRIBUTES: 4, USERS: 3, TOKENS: 2, CACHE: 2, ACHIEVEMENTS: 1}
KEPT = {
    ATTRIBUTES: Counter({"live": 2, "in_1s": 1, "never": 2, "sentinel": 1, "keep_bucket": 1}),
    USERS: Counter({"active": 1, "recent_signup": 1, "recent_login": 1, "in_1s": 1}),
    TOKENS: Counter({"unused": 2}),
    CACHE: Counter({"user_1": 1, "user_4": 1, "misc": 1, "not_an_id": 1}),
    ACHIEVEMENTS: Counter({"user_1": 1, "no_user": 1}),
}

SCHEMA = """
CREATE SCHEMA "Actor";
CREATE SCHEMA "Learn";
CREATE TABLE "Actor"."Attributes" (id bigserial PRIMARY KEY, bucket text NOT NULL,
    label text NOT NULL, ttl_timestamp bigint);
CREATE INDEX ON "Actor"."Attributes" (ttl_timestamp);
CREATE TABLE "Learn"."Users" (id bigint PRIMARY KEY, label text NOT NULL, status text NOT NULL,
    last_login_at timestamp(3), created_at timestamp(3) NOT NULL);
CREATE INDEX ON "Learn"."Users" (status);
CREATE TABLE "Learn".tokens (id bigserial PRIMARY KEY, label text NOT NULL, used_at timestamptz);
CREATE INDEX ON "Learn".tokens (used_at);
CREATE TABLE "Learn".cache (key text PRIMARY KEY, label text NOT NULL, value text);
CREATE TABLE "Learn".achievements (id bigserial PRIMARY KEY, label text NOT NULL, user_id bigint);
CREATE INDEX ON "Learn".achievements (user_id);
"""

SEED_TEMPLATE = """
INSERT INTO "Actor"."Attributes" (bucket, label, ttl_timestamp)
SELECT b, l, t FROM (VALUES
    ('oauth', 'expired', floor(extract(epoch FROM now()) * 1000)::bigint - 86400000),
    ('oauth', 'expired', floor(extract(epoch FROM now()) * 1000)::bigint - 86400000),
    ('oauth', 'expired', floor(extract(epoch FROM now()) * 1000)::bigint - 86400000),
    ('oauth', 'expired_1s', floor(extract(epoch FROM now()) * 1000)::bigint - 1000),
    ('oauth', 'in_1s', ceil(extract(epoch FROM now()) * 1000)::bigint + {soon_s} * 1000),
    ('oauth', 'live', ceil(extract(epoch FROM now()) * 1000)::bigint + 86400000),
    ('oauth', 'live', ceil(extract(epoch FROM now()) * 1000)::bigint + 86400000),
    ('oauth', 'never', NULL), ('oauth', 'never', NULL),
    ('oauth', 'sentinel', 0),
    ('keep', 'keep_bucket', floor(extract(epoch FROM now()) * 1000)::bigint - 86400000)
) AS v (b, l, t);
INSERT INTO "Learn"."Users" VALUES
    (1, 'active', 'active', now() AT TIME ZONE 'UTC' - interval '7 months',
        now() AT TIME ZONE 'UTC' - interval '2 years'),
    (2, 'inactive', 'suspended', now() AT TIME ZONE 'UTC' - interval '7 months',
        now() AT TIME ZONE 'UTC' - interval '2 years'),
    (3, 'never_logged_in', 'suspended', NULL, now() AT TIME ZONE 'UTC' - interval '1 year'),
    (4, 'recent_signup', 'suspended', NULL, now() AT TIME ZONE 'UTC' - interval '1 month'),
    (5, 'recent_login', 'suspended', now() AT TIME ZONE 'UTC' - interval '5 months',
        now() AT TIME ZONE 'UTC' - interval '2 years'),
    (6, 'expired_1s', 'suspended',
        now() AT TIME ZONE 'UTC' - interval '6 months' - interval '1 second',
        now() AT TIME ZONE 'UTC' - interval '2 years'),
    (7, 'in_1s', 'suspended',
        now() AT TIME ZONE 'UTC' - interval '6 months' + interval '{soon_s} seconds',
        now() AT TIME ZONE 'UTC' - interval '2 years');
INSERT INTO "Learn".tokens (label, used_at) VALUES
    ('used', now() - interval '1 day'), ('used', now()), ('unused', NULL), ('unused', NULL);
INSERT INTO "Learn".cache (key, label) VALUES
    ('user:1:profile', 'user_1'), ('user:4:profile', 'user_4'), ('user:99:profile', 'orphan'),
    ('user:100:streak', 'orphan'), ('misc:1', 'misc'), ('user:x:profile', 'not_an_id');
INSERT INTO "Learn".achievements (label, user_id) VALUES
    ('user_1', 1), ('orphan', 99), ('no_user', NULL);
"""

# The row "in_1s" expires a second after the seed's now(): exact where the seed and the count
# share a transaction (test_the_boundaries_...). Elsewhere commands run in transactions of their
# own, later, so the row is given a minute, and its label stays.
SEED = SEED_TEMPLATE.replace("{soon_s}", "60")


def add_rules(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "SELECT pgsweep.add_rule(%s, 'ttl_timestamp', p_epoch_unit => 'milliseconds',"
        " p_condition => 'bucket <> ''keep''')",
        (ATTRIBUTES,),
    )
    conn.execute("SELECT pgsweep.add_condition_rule(%s, 'status', %s)", (USERS, INACTIVE))
    conn.execute(
        "SELECT pgsweep.add_condition_rule(%s, 'used_at', 'used_at IS NOT NULL')", (TOKENS,)
    )
    conn.execute(
        "SELECT pgsweep.add_orphan_rule(%s, 'key', %s, 'id', %s)", (CACHE, USERS, CACHE_KEY)
    )
    conn.execute("SELECT pgsweep.add_orphan_rule(%s, 'user_id', %s, 'id')", (ACHIEVEMENTS, USERS))


def labels(conn: psycopg.Connection[Any], table: str) -> Counter[str]:
    return Counter(str(r[0]) for r in conn.execute(f"SELECT label FROM {table}").fetchall())


@pytest.fixture
def kinds_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    tolerate_lag(fresh_db)  # the garbage waits on purpose; the lag check has its own tests
    with connect(fresh_db) as conn:
        conn.execute(SCHEMA)
        conn.execute(SEED)
        add_rules(conn)
    return fresh_db


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    done = pgsweep(capsys, *argv)
    assert done.code == 0, (done.out, done.err)
    return done


def assert_cleaned(dsn: str) -> None:
    with connect(dsn) as conn:
        for table in TABLES:
            assert labels(conn, table) == KEPT[table], table


def test_every_command_serves_every_kind_of_rule_with_exact_counts(
    kinds_db: str, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config
) -> None:
    status = run(capsys, "status", "--dsn", kinds_db, "--json").json()
    assert status["skipped"] == []
    got = {t["table"]: (t["garbage"], [r["rows"] for r in t["rules"]]) for t in status["tables"]}
    assert got == {t: (GARBAGE[t], [GARBAGE[t]]) for t in TABLES}
    (attributes,) = [t for t in status["tables"] if t["table"] == ATTRIBUTES]
    # Milliseconds read as milliseconds: the oldest expired a day ago.
    assert 86400 - 5 < attributes["rules"][0]["oldest_age_s"] < 86400 + 5

    dry = run(capsys, "cleanup", "--dry-run", "--dsn", kinds_db, "--json").json()
    assert dry["would_delete"] == sum(GARBAGE.values())
    assert {t["table"]: t["rules"] for t in dry["tables"]} == {
        t: [
            {
                "column": RULES[t],
                "would_delete": GARBAGE[t],
                "partitions": [],  # none of these tables is partitioned
                "partitions_left": [],
            }
        ]
        for t in TABLES
    }

    report = run(capsys, "verify", "--no-cron", "--dsn", kinds_db)
    show_operator(capsys, pytestconfig, report.out)
    lines = report.out.splitlines()
    assert not [x for x in lines if x.startswith("FAIL")], report.out
    for table, column in RULES.items():
        for path in ("", " (sweep probe)", " (sweep batch)"):
            (line,) = [
                x for x in lines if x.startswith(f"PASS  plan cleanup {table}.{column}{path}:")
            ]
            assert "can serve it" in line
    assert f"PASS  rule {USERS}.status: condition" in "\n".join(lines)
    assert f"PASS  rule {CACHE}.key: orphans: no {USERS} row has id = " in "\n".join(lines)

    done = run(capsys, "cleanup", "--dsn", kinds_db, "--json", "--batch-size", "2").json()
    assert done["deleted"] == sum(GARBAGE.values())
    assert {t["table"]: t["deleted"] for t in done["tables"]} == GARBAGE
    assert_cleaned(kinds_db)


def test_the_boundaries_a_second_either_side_in_one_transaction(kinds_db: str) -> None:
    """now() is the transaction's: seeded and swept in one, a second is exact."""
    with connect(kinds_db, autocommit=False) as conn:
        for table in TABLES:
            conn.execute(f"TRUNCATE {table}")
        conn.execute(SEED_TEMPLATE.replace("{soon_s}", "1"))
        counts = conn.execute(
            "SELECT table_name::text, garbage FROM pgsweep.garbage_counts()"
        ).fetchall()
        assert dict(counts) == GARBAGE
        # sweep_table leaves orphan rules to the batched sweep (their parent's SHARE lock
        # would last the caller's transaction); every other kind goes, exactly.
        for table in (t for t in TABLES if t not in ORPHAN_TABLES):
            assert conn.execute("SELECT pgsweep.sweep_table(%s)", (table,)).fetchone() == (
                GARBAGE[table],
            )
            assert labels(conn, table) == KEPT[table], table
        for table in ORPHAN_TABLES:
            assert conn.execute("SELECT pgsweep.sweep_table(%s)", (table,)).fetchone() == (0,)
            assert sum(labels(conn, table).values()) == sum(KEPT[table].values()) + GARBAGE[table]
        conn.rollback()


def test_the_sweep_procedure_the_function_and_run_take_every_kind(
    kinds_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(kinds_db) as conn:
        counts = conn.execute(
            "SELECT table_name::text, column_name::text, garbage FROM pgsweep.garbage_counts()"
        ).fetchall()
        assert sorted(counts) == sorted((t, RULES[t], GARBAGE[t]) for t in TABLES)
        assert conn.execute("CALL pgsweep.sweep(NULL, 1, '0', NULL)").fetchone() == (
            sum(GARBAGE.values()),
        )
    assert_cleaned(kinds_db)
    with connect(kinds_db) as conn:
        for table in TABLES:
            conn.execute(f"TRUNCATE {table}")
        conn.execute(SEED)
        assert conn.execute(
            "CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)", (CACHE,)
        ).fetchone() == (2,)
    done = run(capsys, "run", "--every", "1s", "--max-runs", "1", "--dsn", kinds_db, "--json")
    (one,) = [e for e in (json.loads(x) for x in done.out.splitlines()) if e["event"] == "run"]
    assert one["deleted"] == {**GARBAGE, CACHE: 0}
    assert_cleaned(kinds_db)


def test_the_child_of_a_parent_inserted_but_not_committed_survives_the_sweep(
    kinds_db: str,
) -> None:
    """A READ COMMITTED NOT EXISTS does not see the parent another transaction is inserting;
    the orphan rule locks the parent table first, so the child stays."""
    with connect(kinds_db) as app, connect(kinds_db) as sweeper:
        # The child first (committed), then its parent, in a transaction still open.
        app.execute("INSERT INTO \"Learn\".achievements (label, user_id) VALUES ('new', 50)")
        app.execute("BEGIN")
        app.execute("INSERT INTO \"Learn\".\"Users\" VALUES (50, 'new', 'active', NULL, now())")
        # The naive anti-join would take it: it sees no parent.
        naive = sweeper.execute(
            'SELECT count(*) FROM "Learn".achievements a WHERE a.user_id = 50'
            ' AND NOT EXISTS (SELECT FROM "Learn"."Users" u WHERE u.id = a.user_id)'
        ).fetchone()
        assert naive == (1,)
        warnings: list[str] = []
        sweeper.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
        sweep = "CALL pgsweep.sweep(%s::regclass, 5000, '0', NULL)"
        deleted = sweeper.execute(sweep, (ACHIEVEMENTS,)).fetchone()
        assert deleted == (0,)  # the parent table is being written: nothing deleted this time
        assert any("not swept this time" in w for w in warnings), warnings
        assert any("gave way" in w for w in warnings), warnings
        assert labels(sweeper, ACHIEVEMENTS)["orphan"] == 1
        app.execute("COMMIT")
        # Committed now: the sweep takes the real orphan and keeps the new child.
        assert sweeper.execute(sweep, (ACHIEVEMENTS,)).fetchone() == (1,)
        assert labels(sweeper, ACHIEVEMENTS) == Counter({"user_1": 1, "no_user": 1, "new": 1})


BAD_CONDITIONS = [
    ("status = 'suspended' AND random() < 0.5", "random() (volatile)"),
    ("status IN (SELECT 'x')", "cannot use subquery"),
    ("nosuch = 1", 'column "nosuch" does not exist'),
    ("status = 'x'; DROP TABLE \"Learn\".tokens", 'may not contain ";"'),
    ("public.evil(status)", "not a pg_catalog function"),
    ("status::public.mood = 'sad'", "coercetodomain"),
    ("('(2020-01-01)'::public.moment).at < now()", "types outside pg_catalog"),
    ('"Users" IS NOT NULL', 'column "Users" does not exist'),
    # Stable pg_catalog functions that run a query on any relation (a view's own functions with
    # it) as the sweeping role: a way to run code with its rights.
    ("table_to_xml('pg_class'::regclass, true, false, '') IS NOT NULL", "it runs a query"),
    ("schema_to_xml('public', true, false, '') IS NOT NULL", "it runs a query"),
]


def test_a_condition_is_refused_unless_it_is_provably_safe_to_rerun(kinds_db: str) -> None:
    with connect(kinds_db) as conn:
        conn.execute(
            "CREATE FUNCTION public.evil(text) RETURNS boolean LANGUAGE sql IMMUTABLE"
            " AS 'SELECT true'"
        )
        conn.execute("CREATE DOMAIN public.mood AS text CHECK (public.evil(VALUE))")
        conn.execute("CREATE TYPE public.moment AS (at timestamptz)")
        for condition, message in BAD_CONDITIONS:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=_re(message)):
                conn.execute(
                    "SELECT pgsweep.add_condition_rule(%s, 'status', %s)", (USERS, condition)
                )
        assert conn.execute('SELECT count(*) FROM "Learn".tokens').fetchone() == (4,)
        assert conn.execute("SELECT count(*) FROM pgsweep.expiry_rule").fetchone() == (5,)


def _re(text: str) -> str:
    return re.escape(text)


def test_a_condition_no_index_serves_is_refused_naming_the_index_to_build(kinds_db: str) -> None:
    with connect(kinds_db) as conn:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as caught:
            conn.execute(
                "SELECT pgsweep.add_condition_rule(%s, 'status',"
                " 'coalesce(last_login_at, created_at) < now() AT TIME ZONE ''UTC''')",
                (USERS,),
            )
        assert "no valid index" in str(caught.value)
        diag = caught.value.diag.message_hint or ""
        assert diag.startswith(
            'Build one the condition can use, e.g. CREATE INDEX CONCURRENTLY ON "Learn"."Users"'
        )
        conn.execute('CREATE INDEX ON "Learn"."Users" ((coalesce(last_login_at, created_at)))')
        conn.execute(
            "SELECT pgsweep.add_condition_rule(%s, 'status',"
            " 'coalesce(last_login_at, created_at) < now() AT TIME ZONE ''UTC''')",
            (USERS,),
        )
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="leads with"):
            conn.execute(
                "SELECT pgsweep.add_orphan_rule(%s, 'label', %s, 'id')", (ACHIEVEMENTS, USERS)
            )
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="leads with"):
            conn.execute(
                "SELECT pgsweep.add_orphan_rule(%s, 'user_id', %s, 'label')", (ACHIEVEMENTS, USERS)
            )


def test_an_epoch_unit_the_values_contradict_is_refused_and_values_before_2000_are_kept(
    kinds_db: str,
) -> None:
    with connect(kinds_db) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
            conn.execute(
                "SELECT pgsweep.add_rule(%s, 'ttl_timestamp', p_epoch_unit => 'seconds')",
                (ATTRIBUTES,),
            )
        assert "does not look like epoch seconds" in str(caught.value)
        assert "p_epoch_unit => 'milliseconds'" in (caught.value.diag.message_hint or "")
        conn.execute('CREATE TABLE "Actor".secs (id int, ttl bigint)')
        conn.execute('CREATE INDEX ON "Actor".secs (ttl)')
        conn.execute(
            'INSERT INTO "Actor".secs SELECT g, extract(epoch FROM now())::bigint - g'
            " FROM generate_series(1, 10) g"
        )
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="epoch milliseconds"):
            conn.execute(
                "SELECT pgsweep.add_rule('\"Actor\".secs', 'ttl', p_epoch_unit => 'milliseconds')"
            )
        conn.execute("SELECT pgsweep.add_rule('\"Actor\".secs', 'ttl')")
        # Seconds written later into a milliseconds rule's column read as 1970: never deleted.
        conn.execute(
            'INSERT INTO "Actor"."Attributes" (bucket, label, ttl_timestamp)'
            " VALUES ('oauth', 'seconds_by_mistake', extract(epoch FROM now())::bigint - 60)"
        )
        assert conn.execute("SELECT pgsweep.sweep_table(%s)", (ATTRIBUTES,)).fetchone() == (
            GARBAGE[ATTRIBUTES],
        )
        assert labels(conn, ATTRIBUTES)["seconds_by_mistake"] == 1
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="no epoch number"):
            conn.execute(
                "SELECT pgsweep.add_rule(%s, 'used_at', p_epoch_unit => 'seconds')", (TOKENS,)
            )


def downgrade(dsn: str) -> subprocess.CompletedProcess[str]:
    """1.1's downgrade to 1.0, once the releases after 1.1 are stepped back."""
    downgrade_to(dsn, "1.1")
    return run_downgrade(dsn, "1.1")


def test_the_downgrade_refuses_while_a_rule_uses_a_kind_1_0_would_misread(kinds_db: str) -> None:
    done = downgrade(kinds_db)
    assert done.returncode != 0
    assert "1.0 cannot run (it would delete rows 1.1 keeps)" in done.stderr
    with connect(kinds_db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == ("1.1",)
        assert conn.execute("SELECT count(*) FROM pgsweep.expiry_rule").fetchone() == (5,)
        for table in TABLES:
            conn.execute("SELECT pgsweep.remove_rule(%s)", (table,))
        # A plain seconds rule 1.0 could run, but a value before 2000 that 1.1 keeps.
        conn.execute('CREATE TABLE "Actor".secs (id int, ttl bigint)')
        conn.execute('CREATE INDEX ON "Actor".secs (ttl)')
        conn.execute('INSERT INTO "Actor".secs VALUES (1, extract(epoch FROM now())::bigint)')
        conn.execute("SELECT pgsweep.add_rule('\"Actor\".secs', 'ttl')")
        conn.execute('INSERT INTO "Actor".secs VALUES (2, 0)')
    done = downgrade(kinds_db)
    assert done.returncode != 0
    assert "rows hold epoch values before 2000, which 1.1 keeps and 1.0 would delete" in done.stderr
    with connect(kinds_db) as conn:
        conn.execute('DELETE FROM "Actor".secs WHERE ttl = 0')
    done = downgrade(kinds_db)
    assert done.returncode == 0, done.stderr
    with connect(kinds_db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == ("1.0",)
        assert conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass"
            " AND attname IN ('kind', 'condition', 'epoch_unit', 'archive_to') AND NOT attisdropped"
        ).fetchone() == (0,)


def test_a_rule_that_archives_moves_its_rows_in_the_same_statement_and_the_archive_expires(
    kinds_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(kinds_db) as conn:
        archive = conn.execute("SELECT pgsweep.set_archive(%s, 'status')::text", (USERS,))
        assert archive.fetchone() == ('"Learn"."Users_archive"',)
        conn.execute(
            "SELECT pgsweep.add_rule('\"Learn\".\"Users_archive\"', 'archived_at', '90 days')"
        )
        statement = conn.execute(
            "SELECT pgsweep.purge_statement(r.table_name, pgsweep.rule_condition(r), false, r)"
            " FROM pgsweep.expiry_rule r WHERE r.table_name = %s::regclass",
            (USERS,),
        ).fetchone()
        assert statement is not None
        assert str(statement[0]).startswith('WITH gone AS (DELETE FROM "Learn"."Users" WHERE')
    # Through the command, in batches of one row (the sweep's range and single-value paths).
    done = run(
        capsys, "cleanup", "--table", USERS, "--batch-size", "1", "--dsn", kinds_db, "--json"
    )
    assert done.json()["deleted"] == GARBAGE[USERS]
    with connect(kinds_db) as conn:
        assert labels(conn, USERS) == KEPT[USERS]
        moved = conn.execute(
            "SELECT label, archived_by, archived_at = now() OR archived_at <= now()"
            ' FROM "Learn"."Users_archive" ORDER BY id'
        ).fetchall()
        assert moved == [
            ("inactive", '"Learn"."Users".status', True),
            ("never_logged_in", '"Learn"."Users".status', True),
            ("expired_1s", '"Learn"."Users".status', True),
        ]
        # The archive keeps its rows 90 days: one archived 91 days ago goes, the others stay.
        conn.execute(
            'UPDATE "Learn"."Users_archive" SET archived_at = now() - interval \'91 days\''
            " WHERE label = 'inactive'"
        )
        assert conn.execute(
            'SELECT pgsweep.sweep_table(\'"Learn"."Users_archive"\')'
        ).fetchone() == (1,)
        # An archive named by the user is checked; another owner or missing columns refuse.
        conn.execute('CREATE TABLE "Learn".tokens_old (id bigint, label text)')
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="lacks columns"):
            conn.execute(
                "SELECT pgsweep.set_archive(%s, 'used_at', '\"Learn\".tokens_old')", (TOKENS,)
            )
        assert conn.execute(
            "SELECT pgsweep.set_archive(%s, 'status', '')", (USERS,)
        ).fetchone() == (None,)


def test_the_live_view_hides_what_the_rules_mark_as_garbage_until_the_sweep_runs(
    kinds_db: str,
) -> None:
    with connect(kinds_db) as conn:
        views = {
            t: conn.execute("SELECT pgsweep.create_live_view(%s)::text", (t,)).fetchone()
            for t in TABLES
        }
        assert views[ATTRIBUTES] == ('"Actor"."Attributes_live"',)
        for table in TABLES:
            (view,) = views[table] or ("",)
            assert labels(conn, str(view)) == KEPT[table], table
        # A row that expires while nothing sweeps disappears from the view at once.
        conn.execute(
            'UPDATE "Actor"."Attributes" SET ttl_timestamp ='
            " floor(extract(epoch FROM now()) * 1000)::bigint - 1 WHERE label = 'in_1s'"
        )
        assert labels(conn, '"Actor"."Attributes_live"')["in_1s"] == 0
        # The app's rights apply (security_invoker), not the creator's.
        options = conn.execute(
            'SELECT reloptions FROM pg_class WHERE oid = \'"Actor"."Attributes_live"\'::regclass'
        ).fetchone()
        assert options == (["security_invoker=true"],)
        # A primary-key lookup through the view is the table's index scan plus a filter.
        plan = conn.execute(
            'EXPLAIN (FORMAT JSON) SELECT * FROM "Actor"."Attributes_live" WHERE id = 1'
        ).fetchone()
        assert plan is not None
        node = plan[0][0]["Plan"]
        assert (node["Node Type"], node["Index Name"]) == ("Index Scan", "Attributes_pkey")


def test_the_scheduled_sweep_covers_every_kind_and_verify_sees_the_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with cron_cluster("kinds") as (_cluster, dsn):
        run(capsys, "install", "--dsn", dsn)
        with connect(dsn) as conn:
            conn.execute(SCHEMA)
            conn.execute(SEED)
            add_rules(conn)
        tolerate_lag(dsn)
        job = run(capsys, "schedule", "--dsn", dsn, "--cron", "*/5 * * * *", "--json").json()["job"]
        assert cron.sweeps_every_rule(job["command"])
        report = verify.verify(dsn)
        assert report.ok, [c.evidence for c in report.failures]
        # The job's own command, run here (pg_cron's own minute is a soak test elsewhere).
        with connect(dsn) as conn:
            assert conn.execute(job["command"]).fetchone() == (sum(GARBAGE.values()),)
        assert_cleaned(dsn)
