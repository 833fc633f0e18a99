"""Least privilege: the role model of docs/matcha.md "Roles", and search_path hijacks that fail.

Three login roles, unique to this run: the app (table grants on its token tables and users,
nothing on ``pgsweep``), maintenance (EXECUTE on the four cleanup functions, nothing else), and
a plain role with PUBLIC's privileges only. Each test logs in as one of them over TCP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.pg import connect
from tests.roles import (
    APP_GRANTS,
    DECK_PROGRESS_GRANTS,
    MAINTENANCE_GRANTS,
    Role,
    grant,
    temporary_roles,
)
from tests.tokens import TOKEN_TABLES, add_token, add_user, with_triggers, without_triggers

CLEANUP_FUNCTIONS = (
    "cleanup_all_expired_tokens()",
    "cleanup_expired_password_reset_tokens()",
    "cleanup_expired_email_verification_tokens()",
    "cleanup_expired_refresh_tokens()",
)
# The only routines allowed to run with their owner's rights, and why (docs/matcha.md, "Roles").
JUSTIFIED_SECURITY_DEFINER = {
    # a maintenance role purges garbage with EXECUTE only, no DELETE on the tables
    *CLEANUP_FUNCTIONS,
    # the app's inserts run the trigger with no grant on pgsweep
    "pgsweep.sweep_on_insert()",
    # whoever drops a table of theirs has the event trigger forget its rules, with no grant
    "pgsweep.forget_dropped_rules()",
    # a role allowed to sweep records its runs with no right on the history tables (run_end,
    # which ANALYZEs, runs with its caller's rights and closes the run through run_close)
    "pgsweep.run_begin(text,boolean)",
    "pgsweep.run_close(bigint,text,text)",
    "pgsweep.run_record(bigint,regclass,name,bigint,bigint,integer,interval,"
    "timestamp with time zone,text,bigint)",
    # a sweeping role locks the rule it works on against change, with no UPDATE on the rules
    "pgsweep.locked_rule(regclass,name)",
}


@pytest.fixture(scope="module")
def roles(head_db: str) -> Iterator[dict[str, Role]]:
    with temporary_roles(head_db, "app", "maint", "plain", "attacker") as made:
        grant(head_db, APP_GRANTS, app=made["app"])
        grant(head_db, MAINTENANCE_GRANTS, maintenance=made["maint"])
        yield made


def scalar(conn: psycopg.Connection[Any], query: str, *args: object) -> Any:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


def seed_garbage_and_live(admin_dsn: str, user_name: str) -> tuple[str, dict[str, str]]:
    """One user with 15 used, 5 expired and one live token in every token table."""
    with connect(admin_dsn) as conn:
        without_triggers(conn)
        user = add_user(conn, user_name)
        live = {}
        for table in TOKEN_TABLES:
            for _ in range(5):
                add_token(conn, table, user, "-1 hour")
            if table != "refresh_tokens":
                for _ in range(15):
                    add_token(conn, table, user, "1 hour", used_ago="1 minute")
            live[table] = add_token(conn, table, user, "1 day")
        with_triggers(conn)
    return user, live


def garbage(conn: psycopg.Connection[Any]) -> int:
    return int(
        scalar(
            conn,
            "SELECT (SELECT count(*) FROM password_reset_tokens"
            "        WHERE expires_at < now() OR used_at IS NOT NULL)"
            "     + (SELECT count(*) FROM email_verification_tokens"
            "        WHERE expires_at < now() OR used_at IS NOT NULL)"
            "     + (SELECT count(*) FROM refresh_tokens WHERE expires_at < now())",
        )
    )


# --- the app role -------------------------------------------------------------------------


def test_the_app_role_issues_redeems_and_deletes_its_tokens_and_its_inserts_fire_the_triggers(
    head_db: str, roles: dict[str, Role]
) -> None:
    user, live = seed_garbage_and_live(head_db, "app_flows")
    with connect(roles["app"].dsn) as app:
        # No grant on the engine: the trigger function is not executable by the app.
        assert (
            scalar(app, "SELECT has_function_privilege('pgsweep.sweep_on_insert()', 'EXECUTE')")
            is False
        )
        for table in ("password_reset_tokens", "email_verification_tokens"):
            # issue: invalidate the outstanding ones, insert a new one (the trigger fires)
            app.execute(
                f"UPDATE {table} SET used_at = now() WHERE user_id = %s AND used_at IS NULL",
                (user,),
            )
            token = add_token(app, table, user, "1 hour", token_hash=f"app-{table}")
            redeemed = app.execute(
                f"UPDATE {table} SET used_at = now() WHERE token_hash = %s"
                " AND used_at IS NULL AND expires_at > now() RETURNING id",
                (f"app-{table}",),
            ).fetchone()
            assert redeemed is not None
            assert str(redeemed[0]) == token
            # 15 + 6 used (incl. the invalidated) before the insert; the trigger took 10.
            used = scalar(app, f"SELECT count(*) FROM {table} WHERE used_at IS NOT NULL")
            assert used == 15 + 5 + 1 + 1 - 10
        # refresh: rotate (delete the old, insert a new one); the trigger takes expired rows
        rotated = app.execute(
            "DELETE FROM refresh_tokens WHERE id = %s RETURNING id", (live["refresh_tokens"],)
        ).fetchone()
        assert rotated is not None
        add_token(app, "refresh_tokens", user, "30 days")
        assert scalar(app, "SELECT count(*) FROM refresh_tokens WHERE expires_at < now()") == 0


def test_the_app_role_can_refresh_deck_progress_with_its_table_grants_only(
    head_db: str, roles: dict[str, Role]
) -> None:
    # 0001's refresh_deck_progress ran with the caller's table privileges; after 0006 the same
    # grants must still do (it now reads through deck_progress).
    grant(head_db, DECK_PROGRESS_GRANTS, app=roles["app"])
    with connect(head_db) as admin:
        user = add_user(admin, "deck_user")
        deck = scalar(
            admin,
            "INSERT INTO decks (title, language_from, language_to) VALUES ('d', 'en', 'ja')"
            " RETURNING id",
        )
        card = scalar(
            admin,
            "INSERT INTO flashcards (term, translation, language_from, language_to)"
            " VALUES ('a', 'b', 'en', 'ja') RETURNING id",
        )
        admin.execute("INSERT INTO deck_flashcards VALUES (%s, %s)", (deck, card))
    with connect(roles["app"].dsn) as app:
        app.execute("SELECT refresh_deck_progress(%s, %s)", (user, deck))
        assert scalar(app, "SELECT refresh_stale_deck_progress(%s)", user) == 0
        assert (
            scalar(app, "SELECT total_cards FROM user_deck_progress WHERE user_id = %s", user) == 1
        )


@pytest.mark.parametrize(
    "statement",
    [
        *(f"SELECT {f}" for f in CLEANUP_FUNCTIONS),
        "CALL pgsweep.sweep()",
        "SELECT pgsweep.purge_rule(NULL::pgsweep.expiry_rule)",
        "SELECT count(*) FROM pgsweep.expiry_rule",
    ],
)
def test_the_app_role_cannot_run_the_cleanup_or_touch_the_engine(
    roles: dict[str, Role], statement: str
) -> None:
    with connect(roles["app"].dsn) as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(statement)


# --- the maintenance role -----------------------------------------------------------------


def test_the_maintenance_role_cleans_with_execute_alone_and_keeps_live_tokens(
    head_db: str, roles: dict[str, Role]
) -> None:
    _, live = seed_garbage_and_live(head_db, "maint_flows")
    with connect(roles["maint"].dsn) as maint:
        row = maint.execute("SELECT * FROM cleanup_all_expired_tokens()").fetchone()
        assert row is not None
        assert row[3] >= 2 * 20 + 5
        assert row[3] == row[0] + row[1] + row[2]
    with connect(head_db) as admin:
        assert garbage(admin) == 0
        for table, token in live.items():
            assert scalar(admin, f"SELECT count(*) FROM {table} WHERE id = %s", token) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM password_reset_tokens",
        "SELECT count(*) FROM refresh_tokens",
        "CALL pgsweep.sweep()",
        "SELECT pgsweep.purge_rule(NULL::pgsweep.expiry_rule)",
        "SELECT pgsweep.add_rule('users', 'created_at')",
    ],
)
def test_the_maintenance_role_can_do_nothing_but_call_the_cleanup(
    roles: dict[str, Role], statement: str
) -> None:
    with connect(roles["maint"].dsn) as maint, pytest.raises(psycopg.errors.InsufficientPrivilege):
        maint.execute(statement)


# --- PUBLIC -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        *(f"SELECT {f}" for f in CLEANUP_FUNCTIONS),
        "CALL pgsweep.sweep()",
        "SELECT pgsweep.purge_few(NULL::pgsweep.expiry_rule, 10)",
        "SELECT pgsweep.remove_rule('refresh_tokens')",
        "SELECT pgsweep.sweep_table('refresh_tokens')",
        "INSERT INTO pgsweep.expiry_rule VALUES ('users', 'created_at')",
    ],
)
def test_a_role_with_publics_privileges_runs_nothing_that_deletes(
    roles: dict[str, Role], statement: str
) -> None:
    with connect(roles["plain"].dsn) as plain, pytest.raises(psycopg.errors.InsufficientPrivilege):
        plain.execute(statement)


def test_public_may_execute_no_routine_that_deletes(head_db: str, roles: dict[str, Role]) -> None:
    # Catalog-wide, so a routine added later is covered too: what a role with PUBLIC's
    # privileges may execute in public and pgsweep is exactly the deck-progress functions,
    # which run with the caller's rights and delete nothing.
    with connect(head_db) as conn:
        executable = {
            str(r[0])
            for r in conn.execute(
                "SELECT p.oid::regprocedure FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname IN ('public', 'pgsweep')"
                "   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
                "                   AND d.objid = p.oid AND d.deptype = 'e')"
                "   AND has_function_privilege(%s, p.oid, 'EXECUTE')"
                "   AND has_schema_privilege(%s, n.oid, 'USAGE')",
                (roles["plain"].name, roles["plain"].name),
            ).fetchall()
        }
    assert executable == {
        "refresh_deck_progress(uuid,uuid)",
        "refresh_stale_deck_progress(uuid)",
        "deck_progress(uuid,uuid[])",
        # reads a zone's clock, deletes nothing: the views that hide expired rows call it with
        # their reader's rights (security_invoker)
        "pgsweep.wall_clock_cutoff(timestamp with time zone,text)",
    }


def test_a_plain_role_cannot_attach_the_security_definer_trigger_to_its_own_table(
    head_db: str, roles: dict[str, Role]
) -> None:
    # Otherwise its own table's trigger would run the engine with the owner's rights.
    plain = roles["plain"]
    with connect(head_db) as admin:
        admin.execute(f'CREATE SCHEMA "{plain.name}" AUTHORIZATION "{plain.name}"')
    with connect(plain.dsn) as conn:
        conn.execute(f'CREATE TABLE "{plain.name}".mine (expires_at timestamptz)')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                f'CREATE TRIGGER t AFTER INSERT ON "{plain.name}".mine FOR EACH STATEMENT'
                " EXECUTE FUNCTION pgsweep.sweep_on_insert('expires_at', '10')"
            )


# --- search_path ---------------------------------------------------------------------------


def test_every_routine_pins_its_search_path_except_the_committing_procedure(
    head_db: str,
) -> None:
    with connect(head_db) as conn:
        routines = conn.execute(
            "SELECT p.oid::regprocedure::text, p.prokind, p.prosecdef, p.proconfig"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname IN ('public', 'pgsweep')"
            "   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
            "                   AND d.objid = p.oid AND d.deptype = 'e')"
        ).fetchall()
    unpinned = {
        name: kind
        for name, kind, _, config in routines
        if "search_path=pg_catalog, pg_temp" not in (config or [])
    }
    # PostgreSQL forbids SET on a procedure that commits; it runs with its caller's rights and
    # is proved hijack-safe below.
    assert unpinned == {"pgsweep.sweep(regclass,integer,interval,bigint)": "p"}
    definers = {name for name, _, definer, _ in routines if definer}
    assert definers == JUSTIFIED_SECURITY_DEFINER
    assert len(routines) >= 15


PLANTED_CALLS = "planted_calls"


def plant(conn: psycopg.Connection[Any], schema: str) -> None:
    """Objects named like what the cleanup uses; every function records that it was called.

    The operators and now() would make a cleanup delete everything (they answer "expired"),
    the tables hold rows a hijacked cleanup would delete.
    """
    conn.execute(
        f"""
        CREATE TABLE "{schema}".{PLANTED_CALLS} (what text);
        GRANT INSERT ON "{schema}".{PLANTED_CALLS} TO PUBLIC;
        CREATE FUNCTION "{schema}".record(what text) RETURNS boolean LANGUAGE sql VOLATILE
            AS $$ INSERT INTO "{schema}".{PLANTED_CALLS} VALUES (what) RETURNING true $$;
        CREATE FUNCTION "{schema}".now() RETURNS timestamptz LANGUAGE sql VOLATILE
            AS $$ SELECT CASE WHEN "{schema}".record('now') THEN 'infinity'::timestamptz END $$;
        CREATE FUNCTION "{schema}".lt_tstz(timestamptz, timestamptz) RETURNS boolean
            LANGUAGE sql VOLATILE AS $$ SELECT "{schema}".record('<') $$;
        CREATE OPERATOR "{schema}".< (LEFTARG = timestamptz, RIGHTARG = timestamptz,
                                      FUNCTION = "{schema}".lt_tstz);
        CREATE FUNCTION "{schema}".lt_int(integer, integer) RETURNS boolean
            LANGUAGE sql VOLATILE AS $$ SELECT "{schema}".record('< int') $$;
        CREATE OPERATOR "{schema}".< (LEFTARG = integer, RIGHTARG = integer,
                                      FUNCTION = "{schema}".lt_int);
        CREATE FUNCTION "{schema}".eq_regclass(regclass, regclass) RETURNS boolean
            LANGUAGE sql VOLATILE AS $$ SELECT "{schema}".record('= regclass') $$;
        CREATE OPERATOR "{schema}".= (LEFTARG = regclass, RIGHTARG = regclass,
                                      FUNCTION = "{schema}".eq_regclass);
        CREATE FUNCTION "{schema}".gt_interval(interval, interval) RETURNS boolean
            LANGUAGE sql VOLATILE AS $$ SELECT "{schema}".record('> interval') $$;
        CREATE OPERATOR "{schema}".> (LEFTARG = interval, RIGHTARG = interval,
                                      FUNCTION = "{schema}".gt_interval);
        CREATE FUNCTION "{schema}".plus_bigint(bigint, bigint) RETURNS bigint
            LANGUAGE sql VOLATILE AS $$ SELECT CASE WHEN "{schema}".record('+') THEN 0 END $$;
        CREATE OPERATOR "{schema}".+ (LEFTARG = bigint, RIGHTARG = bigint,
                                      FUNCTION = "{schema}".plus_bigint);
        CREATE FUNCTION "{schema}".pg_sleep_for(interval) RETURNS void LANGUAGE sql VOLATILE
            AS $$ SELECT "{schema}".record('pg_sleep_for') $$;
        CREATE TABLE "{schema}".expiry_rule (table_name regclass, column_name name,
                                             keep_for interval);
        CREATE TABLE "{schema}".password_reset_tokens (id uuid, user_id uuid, token_hash text,
                                                       expires_at timestamptz, used_at timestamptz);
        INSERT INTO "{schema}".password_reset_tokens (id, user_id, token_hash, expires_at)
            VALUES (gen_random_uuid(), gen_random_uuid(), 'planted', now() - interval '1 day');
        """
    )


def planted_calls(admin: psycopg.Connection[Any], schema: str) -> list[str]:
    return [str(r[0]) for r in admin.execute(f'SELECT what FROM "{schema}".{PLANTED_CALLS}')]


def test_objects_planted_on_the_callers_search_path_cannot_hijack_the_cleanup_functions(
    head_db: str, roles: dict[str, Role]
) -> None:
    # The maintenance role is the caller of a SECURITY DEFINER function: it plants objects in
    # its own schema and in pg_temp, puts both before pg_catalog, and calls the cleanup.
    maint = roles["maint"]
    with connect(head_db) as admin:
        admin.execute(f'CREATE SCHEMA "{maint.name}" AUTHORIZATION "{maint.name}"')
    _, live = seed_garbage_and_live(head_db, "hijack_definer")
    with connect(maint.dsn) as conn:
        plant(conn, maint.name)
        conn.execute(
            "CREATE TEMP TABLE password_reset_tokens AS"
            f' SELECT * FROM "{maint.name}".password_reset_tokens'
        )
        conn.execute("CREATE TEMP TABLE expiry_rule (table_name regclass, column_name name)")
        conn.execute(f'SET search_path = pg_temp, "{maint.name}", pg_catalog, public')
        assert scalar(conn, "SELECT now() = 'infinity'") is True  # the plant is in effect
        conn.execute(f'TRUNCATE "{maint.name}".{PLANTED_CALLS}')
        row = conn.execute("SELECT * FROM cleanup_all_expired_tokens()").fetchone()
        assert row is not None
        assert row[3] >= 2 * 20 + 5
        assert scalar(conn, "SELECT count(*) FROM pg_temp.password_reset_tokens") == 1
    with connect(head_db) as admin:
        assert planted_calls(admin, maint.name) == []
        planted = f'SELECT count(*) FROM "{maint.name}".password_reset_tokens'
        assert scalar(admin, planted) == 1
        assert garbage(admin) == 0
        for table, token in live.items():
            assert scalar(admin, f"SELECT count(*) FROM {table} WHERE id = %s", token) == 1


def test_operators_planted_on_the_owners_search_path_cannot_hijack_the_sweep_procedure(
    head_db: str, roles: dict[str, Role]
) -> None:
    # The procedure cannot pin search_path and runs with its caller's rights: pg_cron's job
    # owner, a superuser. A role that may create objects in a schema on that search_path plants
    # operators that would then run as the superuser; the procedure must never call them.
    attacker = roles["attacker"]
    with connect(head_db) as admin:
        admin.execute(f'CREATE SCHEMA "{attacker.name}" AUTHORIZATION "{attacker.name}"')
    _, live = seed_garbage_and_live(head_db, "hijack_procedure")
    with connect(attacker.dsn) as conn:
        plant(conn, attacker.name)
    with connect(head_db) as owner:
        owner.execute(f'SET search_path = "{attacker.name}", public')
        owner.execute("CALL pgsweep.sweep(NULL, 5, '1 microsecond')")
        owner.execute(f'SET search_path = "{attacker.name}", public')
        owner.execute("CALL pgsweep.sweep('refresh_tokens', 1000)")
        calls = planted_calls(owner, attacker.name)
        owner.execute("RESET search_path")
        assert calls == []
        assert garbage(owner) == 0
        for table, token in live.items():
            assert scalar(owner, f"SELECT count(*) FROM {table} WHERE id = %s", token) == 1


@pytest.mark.parametrize(
    "settings",
    [
        "SET TimeZone = 'Pacific/Kiritimati'; SET DateStyle = 'SQL, DMY'",
        "SET TimeZone = 'Etc/GMT+12'; SET DateStyle = 'German'",
        "SET TimeZone = 'America/St_Johns'; SET DateStyle = 'Postgres, YMD'",
        # Prints 'IST', which reads back as Israel time: 0006 put the cutoff 3.5 h ahead.
        "SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'Postgres'",
    ],
)
def test_the_callers_time_zone_and_date_style_cannot_move_the_cleanup_cutoff(
    head_db: str, roles: dict[str, Role], settings: str
) -> None:
    # search_path is pinned, other settings reach a SECURITY DEFINER function unchanged: the
    # cutoff it renders as a literal must mean the same instant whatever they are.
    with connect(head_db) as admin:
        without_triggers(admin)
        user = add_user(admin, f"tz_{abs(hash(settings))}")
        keep = {add_token(admin, t, user, "1 minute") for t in TOKEN_TABLES}
        gone = {add_token(admin, t, user, "-1 minute") for t in TOKEN_TABLES}
        with_triggers(admin)
    with connect(roles["maint"].dsn) as maint:
        maint.execute(settings)
        maint.execute("SELECT * FROM cleanup_all_expired_tokens()")
    with connect(head_db) as admin:
        left = {
            str(r[0])
            for t in TOKEN_TABLES
            for r in admin.execute(f"SELECT id FROM {t} WHERE user_id = %s", (user,))
        }
    assert left == keep
    assert not gone & left


def test_objects_planted_by_the_app_cannot_hijack_the_insert_trigger(
    head_db: str, roles: dict[str, Role]
) -> None:
    # The app's inserts run the SECURITY DEFINER trigger function: the app is its caller.
    app = roles["app"]
    with connect(head_db) as admin:
        admin.execute(f'CREATE SCHEMA "{app.name}" AUTHORIZATION "{app.name}"')
    user, _ = seed_garbage_and_live(head_db, "hijack_trigger")
    with connect(app.dsn) as conn:
        plant(conn, app.name)
        conn.execute("CREATE TEMP TABLE expiry_rule (table_name regclass, column_name name)")
        conn.execute(f'SET search_path = pg_temp, "{app.name}", pg_catalog, public')
        for table in TOKEN_TABLES:
            conn.execute(
                f"INSERT INTO public.{table} (user_id, token_hash, expires_at)"
                " VALUES (%s, md5(random()::text), pg_catalog.now() + interval '1 day')",
                (user,),
            )
    with connect(head_db) as admin:
        assert planted_calls(admin, app.name) == []
        # Each trigger did its usual batch: 10 used rows, or 5 expired refresh tokens.
        for table in ("password_reset_tokens", "email_verification_tokens"):
            used = f"SELECT count(*) FROM {table} WHERE user_id = %s AND used_at IS NOT NULL"
            assert scalar(admin, used, user) == 15 - 10
        expired = "SELECT count(*) FROM refresh_tokens WHERE user_id = %s AND expires_at < now()"
        assert scalar(admin, expired, user) == 0
        live = "SELECT count(*) FROM refresh_tokens WHERE user_id = %s AND expires_at > now()"
        assert scalar(admin, live, user) == 2
