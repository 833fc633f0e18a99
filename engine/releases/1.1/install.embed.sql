-- For a migration tool that runs this file inside its own transaction (Flyway, sqlx,
-- golang-migrate, Django RunSQL): GENERATED from the psql file of the same name.
-- pgsweep engine 1.1: installs the expiry engine (schema pgsweep) into any PostgreSQL 15
-- database. Running it again changes nothing. (An engine an application's migrations embedded,
-- as Matcha Time's revisions 0006-0008 did, is upgraded by that application's chain, which runs
-- this file once its own objects are out of the schema: engine/src/preflight.sql.)
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.1/install.sql
-- GENERATED from engine/src by `make engine`: edit the sources, never this file. Once released
-- it never changes (engine/releases/SHA256SUMS); a change is a new release.

-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF;
END $$;
-- Two installs at once (two deploy pods) take turns; the second finds the work done.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('pgsweep.install')); END $$;
-- Never step an engine back: a newer release is undone only by its own downgrade.sql.
DO $$
BEGIN
    IF to_regclass('pgsweep.release') IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pgsweep.release
                WHERE string_to_array(version, '.')::integer[] > '{1,1}'::integer[]) THEN
        RAISE EXCEPTION 'a newer pgsweep engine than 1.1 is installed'
            USING HINT = 'Use the pgsweep that installed it, or its downgrade.sql.';
    END IF;
END $$;

-- ---- preflight.sql ----------------------------------------
-- Before anything changes: an engine that an application's own migrations embedded (its rules
-- table without pgsweep.release: Matcha Time's revisions 0006-0008) is upgraded by that
-- application's chain, which moves its own objects out of the schema first and then runs this
-- file with pgsweep.adopt_embedded on. Run on its own, this file would take those objects' grants.
DO $$
BEGIN
    IF to_regclass('pgsweep.expiry_rule') IS NOT NULL AND to_regclass('pgsweep.release') IS NULL
       AND current_setting('pgsweep.adopt_embedded', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'this database has an engine embedded by an application''s migrations'
            USING HINT = 'Upgrade it with that application''s migration chain'
                         ' (Matcha Time: pgsweep upgrade, or alembic upgrade head).';
    END IF;
END $$;

-- ---- schema.sql ----------------------------------------
-- The engine's schema. Everything pgsweep installs lives here, apart from one event trigger
-- (event triggers belong to the database, not to a schema).
CREATE SCHEMA IF NOT EXISTS pgsweep;
COMMENT ON SCHEMA pgsweep IS 'pgsweep: expiry rules and the batched purge engine behind them';

-- ---- retired.sql ----------------------------------------
-- Routines earlier engines had and this one does not, dropped where present: the engine that
-- Matcha Time's revisions 0006-0008 embedded (before the engine installed on its own) called
-- its routines with (table, column, keep_for); since 1.0 they take the rule itself. On a new
-- database this does nothing.
DO $$
DECLARE
    v_routine regprocedure;
BEGIN
    FOR v_routine IN
        SELECT to_regprocedure(signature) FROM unnest(ARRAY[
            'pgsweep.purge_batch(regclass, name, interval, text, integer)',
            'pgsweep.purge_batch_statement(regclass, name, interval, text, integer)',
            'pgsweep.purge(regclass, name, interval, integer)',
            'pgsweep.purge_range(regclass, name, interval, text, integer)',
            'pgsweep.rule_condition(regclass, name, interval, text, text)',
            'pgsweep.cutoff_literal(regclass, name, interval)',
            'pgsweep.add_rule(regclass, name, interval)',
            -- 1.0's; 1.1 added the epoch unit and the condition.
            'pgsweep.add_rule(regclass, name, interval, text)',
            -- 1.0's; 1.1 passes the rule, so that a rule that archives moves its rows.
            'pgsweep.purge_statement(regclass, text, boolean)',
            'pgsweep.delete_rows(regclass, text)',
            'pgsweep.delete_rows_waiting_briefly(regclass, text)',
            -- 1.0's; 1.1 can give the cutoff as an expression of now() (for views).
            'pgsweep.rule_condition(pgsweep.expiry_rule, text, text)']) AS signature
         -- A signature naming the rule's row type is looked up only where the type exists
         -- (to_regprocedure raises on an unknown type).
         WHERE CASE WHEN signature LIKE '%pgsweep.expiry_rule%'
                         AND to_regtype('pgsweep.expiry_rule') IS NULL THEN false
                    ELSE to_regprocedure(signature) IS NOT NULL END
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_routine);
    END LOOP;
END $$;

-- ---- tables/expiry_rule.sql ----------------------------------------
-- One row per way a row of a table becomes garbage: once <column_name> < now() - keep_for.
-- timestamptz columns compare with that instant; timestamp and date columns hold wall-clock
-- values in value_zone (UTC unless the rule says otherwise), so the instant is read in that
-- zone and never in the session's or the server's TimeZone; numeric columns hold epoch seconds.
CREATE TABLE IF NOT EXISTS pgsweep.expiry_rule (
    table_name  regclass NOT NULL,
    column_name name     NOT NULL,
    keep_for    interval NOT NULL DEFAULT '0',
    value_zone  text,
    PRIMARY KEY (table_name, column_name),
    CONSTRAINT keep_for_not_negative CHECK (keep_for >= '0')
);
-- Rules written before 1.0 (by an embedded engine) had no zone: their timestamp and date
-- columns were read in the session's TimeZone, the server's default for the scheduled job. They
-- keep reading them so, now stated: the zone is the default TimeZone of this database's sessions.
DO $$
DECLARE
    v_zone text := (SELECT s.reset_val FROM pg_settings s WHERE s.name = 'TimeZone');
    v_rule record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                              AND attname = 'value_zone' AND NOT attisdropped) THEN
        ALTER TABLE pgsweep.expiry_rule ADD COLUMN value_zone text;
        FOR v_rule IN
            UPDATE pgsweep.expiry_rule r SET value_zone = v_zone
              FROM pg_attribute a
             WHERE a.attrelid = r.table_name AND a.attname = r.column_name
               AND a.atttypid IN ('timestamp'::regtype, 'date'::regtype)
            RETURNING r.table_name, r.column_name
        LOOP
            RAISE NOTICE 'pgsweep: rule %.% now states the zone its values were read in: %',
                v_rule.table_name, v_rule.column_name, v_zone
                USING HINT = 'If they hold UTC, SELECT pgsweep.add_rule(table, column, keep_for, ''UTC'').';
        END LOOP;
    END IF;
END $$;
-- Since 1.1 a rule has a kind (docs/rules.md):
--   age:       column_name < now() - keep_for (epoch_unit says how a number counts time);
--   condition: the rule's condition alone; column_name is the indexed column its batches walk;
--   orphan:    the parent_table row whose parent_key equals child_key (column_name when NULL)
--              no longer exists; column_name is the indexed column its batches walk.
-- Any kind may add a condition (validated and stored deparsed by pgsweep.checked_condition).
ALTER TABLE pgsweep.expiry_rule
    ADD COLUMN IF NOT EXISTS epoch_unit   text,
    ADD COLUMN IF NOT EXISTS kind         text NOT NULL DEFAULT 'age',
    ADD COLUMN IF NOT EXISTS condition    text,
    ADD COLUMN IF NOT EXISTS parent_table regclass,
    ADD COLUMN IF NOT EXISTS parent_key   name,
    ADD COLUMN IF NOT EXISTS child_key    text,
    ADD COLUMN IF NOT EXISTS archive_to   regclass;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'pgsweep.expiry_rule'::regclass
                                               AND conname = 'kind_known') THEN
        ALTER TABLE pgsweep.expiry_rule
            ADD CONSTRAINT epoch_unit_known CHECK (epoch_unit IN ('seconds', 'milliseconds')),
            ADD CONSTRAINT kind_known CHECK (kind IN ('age', 'condition', 'orphan')),
            ADD CONSTRAINT condition_rule_has_condition
                CHECK (kind <> 'condition' OR condition IS NOT NULL),
            ADD CONSTRAINT orphan_rule_has_parent
                CHECK ((kind = 'orphan') = (parent_table IS NOT NULL AND parent_key IS NOT NULL));
    END IF;
END $$;
COMMENT ON TABLE pgsweep.expiry_rule IS
    'A row of table_name is garbage once column_name < now() - keep_for (numbers: epoch seconds)';
COMMENT ON COLUMN pgsweep.expiry_rule.value_zone IS
    'The time zone the values of a timestamp or date column are in (NULL for other types)';
COMMENT ON COLUMN pgsweep.expiry_rule.epoch_unit IS
    'How a numeric column counts epoch time: seconds (NULL: seconds) or milliseconds';
COMMENT ON COLUMN pgsweep.expiry_rule.kind IS
    'age (column < now() - keep_for), condition (the condition alone) or orphan (parent gone)';
COMMENT ON COLUMN pgsweep.expiry_rule.condition IS
    'An SQL condition on the table''s own columns that a row must also meet (validated, deparsed)';
COMMENT ON COLUMN pgsweep.expiry_rule.parent_table IS 'Orphan rules: the table the parent rows are in';
COMMENT ON COLUMN pgsweep.expiry_rule.parent_key IS 'Orphan rules: the parent''s key column';
COMMENT ON COLUMN pgsweep.expiry_rule.child_key IS
    'Orphan rules: the expression of the child''s columns that gives the parent key (NULL: column_name)';
COMMENT ON COLUMN pgsweep.expiry_rule.archive_to IS
    'The table the rule''s rows move into as they are deleted (NULL: deleted only)';

-- ---- tables/release.sql ----------------------------------------
-- The engine releases applied to this database, newest last: the engine's own version record,
-- apart from any application's migration history (alembic_version, flyway_schema_history, …).
CREATE TABLE IF NOT EXISTS pgsweep.release (
    version     text        PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  name        NOT NULL DEFAULT current_user
);
COMMENT ON TABLE pgsweep.release IS
    'Engine releases applied to this database (pgsweep.version() is the newest)';

-- ---- functions/add_condition_rule.sql ----------------------------------------
-- A rule that is a condition alone: a row is garbage once p_condition holds for it
-- (used_at IS NOT NULL; coalesce(last_login_at, created_at) < now() - interval '6 months').
-- p_column names the column its batches walk in index order (it keys the rule, with the
-- table, in history and status): an index must lead with it, and some index must serve the
-- condition itself (an index on a column it tests, an expression index, a partial index), else
-- the rule is refused, naming the index to build.
CREATE OR REPLACE FUNCTION pgsweep.add_condition_rule(
    p_table regclass, p_column name, p_condition text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule pgsweep.expiry_rule;
BEGIN
    PERFORM pgsweep.column_type(p_table, p_column);
    IF p_condition IS NULL THEN
        RAISE EXCEPTION 'a condition rule needs a condition'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_rule := ROW(p_table, p_column, '0', NULL, NULL, 'condition',
                  pgsweep.checked_condition(p_table, p_condition), NULL, NULL, NULL, NULL);
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    IF pgsweep.unindexed_statement(format('SELECT FROM %s WHERE %s', p_table, v_rule.condition)) THEN
        RAISE EXCEPTION 'no valid index of % serves the condition %', p_table, v_rule.condition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Build one the condition can use, e.g. CREATE INDEX CONCURRENTLY'
                                ' ON %s ((%s)); or an index on the column or expression it'
                                ' compares with now().', p_table, v_rule.condition);
    END IF;
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_condition_rule(regclass, name, text) IS
    'Register (or update) a rule whose garbage is the rows meeting a condition';

-- ---- functions/add_orphan_rule.sql ----------------------------------------
-- A rule for orphans: a row of p_table is garbage once no row of p_parent has p_parent_key
-- equal to p_child_key, an expression of the row's columns (p_column itself when NULL; e.g.
-- nullif(split_part(key, ':', 2), '')::bigint for an id inside a cache key). A row whose key
-- is NULL has no parent to lose and is kept. p_column is the column the batches walk in index
-- order; the parent key needs an index leading with it, so each child is one index probe;
-- p_condition optionally narrows the rule (key LIKE 'user:%'). A key expression must never
-- fail on a value (a cast of non-digits would stop every sweep): narrow it or use nullif.
-- Deleting is safe against a parent being inserted concurrently: see pgsweep.hold_parents.
CREATE OR REPLACE FUNCTION pgsweep.add_orphan_rule(
    p_table regclass, p_column name, p_parent regclass, p_parent_key name,
    p_child_key text DEFAULT NULL, p_condition text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule pgsweep.expiry_rule;
    v_key  text;
BEGIN
    PERFORM pgsweep.column_type(p_table, p_column);
    PERFORM pgsweep.column_type(p_parent, p_parent_key);
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = p_parent AND c.relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '% is not a table', p_parent USING ERRCODE = 'wrong_object_type';
    END IF;
    -- The key expression is checked as the condition "(key) IS NOT NULL", whose deparsed form
    -- is always "(<key> IS NOT NULL)": the key is what lies between.
    IF p_child_key IS NOT NULL THEN
        v_key := pgsweep.checked_condition(p_table, format('(%s) IS NOT NULL', p_child_key));
        IF v_key NOT LIKE '(% IS NOT NULL)' THEN
            RAISE EXCEPTION 'the parent key expression % is not one expression', p_child_key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_key := substr(v_key, 2, length(v_key) - length('( IS NOT NULL)'));
    END IF;
    v_rule := ROW(p_table, p_column, '0', NULL, NULL, 'orphan',
                  pgsweep.checked_condition(p_table, p_condition), p_parent, p_parent_key, v_key, NULL);
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    PERFORM pgsweep.require_leading_index(p_parent, p_parent_key);
    -- The comparison must resolve (types that compare) before the rule is kept.
    EXECUTE format('SELECT FROM %s WHERE %s LIMIT 0', p_table, pgsweep.rule_condition(v_rule));
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_orphan_rule(regclass, name, regclass, name, text, text) IS
    'Register (or update) a rule whose garbage is the rows whose parent row is gone';

-- ---- functions/add_rule.sql ----------------------------------------
-- Bring a table under the lifecycle: checks the column's type, that an index leads with the
-- column (so every purge is index-driven) and, for a timestamp or date column, the zone its
-- values are in (UTC for a new rule; an update without a zone keeps the rule's); for a numeric
-- column, the unit of its epoch values (seconds for a new rule; an update without one keeps the
-- rule's), refused when most of the values already there are implausible in that unit
-- (pgsweep.epoch_unit_problem); an optional condition on the table's own columns that a row
-- must also meet (pgsweep.checked_condition). Then records (or updates) the rule. A
-- timestamptz or numeric column carries no zone, and a non-numeric one no unit, so giving one
-- is an error rather than a setting that does nothing.
CREATE OR REPLACE FUNCTION pgsweep.add_rule(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0', p_value_zone text DEFAULT NULL,
    p_epoch_unit text DEFAULT NULL, p_condition text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_table, p_column);
    v_old  pgsweep.expiry_rule;
    v_zone text;
    v_unit text;
    v_rule pgsweep.expiry_rule;
    v_problem text;
BEGIN
    SELECT r.* INTO v_old FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        -- Updating a rule without naming a zone keeps the zone it has.
        v_zone := coalesce(p_value_zone, v_old.value_zone, 'UTC');
        -- Zone names only: an abbreviation's meaning depends on the session's
        -- timezone_abbreviations ('IST' is India or Israel).
        IF NOT EXISTS (SELECT FROM pg_timezone_names WHERE name = v_zone) THEN
            RAISE EXCEPTION 'unknown time zone "%"', v_zone
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name one of pg_timezone_names, e.g. UTC or Europe/Berlin.';
        END IF;
    ELSIF p_value_zone IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % has type %, which carries no time zone to declare',
            p_column, p_table, v_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'value_zone is for timestamp (without time zone) and date columns.';
    END IF;
    IF v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                  'numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
        v_unit := coalesce(p_epoch_unit, v_old.epoch_unit, 'seconds');
        IF v_unit NOT IN ('seconds', 'milliseconds') THEN
            RAISE EXCEPTION 'unknown epoch unit "%"', v_unit
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Say seconds or milliseconds.';
        END IF;
    ELSIF p_epoch_unit IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % has type %, which holds no epoch number to give a unit',
            p_column, p_table, v_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'epoch_unit is for numeric columns (epoch seconds or milliseconds).';
    END IF;
    v_rule := ROW(p_table, p_column, coalesce(p_keep_for, '0'), v_zone, v_unit, 'age',
                  pgsweep.checked_condition(p_table, p_condition), NULL, NULL, NULL, NULL);
    PERFORM pgsweep.cutoff_literal(v_rule);
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    v_problem := pgsweep.epoch_unit_problem(v_rule);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % does not look like epoch %: %', p_column, p_table,
            v_unit, v_problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Declare the unit its values are in: pgsweep.add_rule(%L, %L, %L, '
                                'p_epoch_unit => %L).', p_table, p_column, v_rule.keep_for,
                                CASE v_unit WHEN 'seconds' THEN 'milliseconds' ELSE 'seconds' END);
    END IF;
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_rule(regclass, name, interval, text, text, text) IS
    'Register (or update) an age rule after checking its column type, index, zone, unit and condition';

-- ---- functions/archiving_statement.sql ----------------------------------------
-- A purge's DELETE (p_delete, built by purge_statement or skip_locked_statement), made to move
-- the rows when the rule archives: in the same statement, each row deleted is inserted into
-- the rule's archive_to with every column of the table, archived_at (now()) and archived_by
-- (the rule, "table.column"), so nothing is lost between the two and nothing is archived that
-- was not deleted. ROW_COUNT is the rows inserted: the rows deleted. Otherwise p_delete itself.
CREATE OR REPLACE FUNCTION pgsweep.archiving_statement(p_rule pgsweep.expiry_rule, p_delete text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns text;
BEGIN
    IF p_rule.archive_to IS NULL THEN
        RETURN p_delete;
    END IF;
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_columns
      FROM pg_attribute a
     WHERE a.attrelid = p_rule.table_name AND a.attnum > 0 AND NOT a.attisdropped;
    RETURN format('WITH gone AS (%s RETURNING %s) INSERT INTO %s (%s, archived_at, archived_by)'
                  ' SELECT %s, now(), %L FROM gone',
                  p_delete, v_columns, p_rule.archive_to, v_columns, v_columns,
                  format('%s.%s', p_rule.table_name, p_rule.column_name));
END $$;
COMMENT ON FUNCTION pgsweep.archiving_statement(pgsweep.expiry_rule, text) IS
    'A purge''s DELETE, moving the rows into the rule''s archive in the same statement if it archives';

-- ---- functions/batch_boundary_statement.sql ----------------------------------------
-- Where a sweep batch starting at the rows of p_condition ends: the value p_batch_size rows
-- further on in the rule's index (an index-only scan). No row: the batch is the rest.
CREATE OR REPLACE FUNCTION pgsweep.batch_boundary_statement(
    p_table regclass, p_column name, p_condition text, p_batch_size integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        'SELECT b.boundary::text'
        '  FROM (SELECT %1$I AS boundary FROM %2$s WHERE %3$s ORDER BY %1$I'
        '        OFFSET %4$s LIMIT 1) b',
        p_column, p_table, p_condition, p_batch_size)
$$;
COMMENT ON FUNCTION pgsweep.batch_boundary_statement(regclass, name, text, integer) IS
    'The probe that finds where a sweep batch ends (for EXPLAIN)';

-- ---- functions/checked_condition.sql ----------------------------------------
-- A rule's condition, checked and returned in the form the engine stores and runs: deparsed by
-- the server from its parse tree (one expression, columns unqualified, every function and type
-- outside pg_catalog schema-qualified). Refused unless provably safe to re-evaluate at delete
-- time, with the rights of whoever runs the sweep:
--   * it parses as a CHECK constraint on a copy of the table's columns: one boolean expression
--     over those columns only, no subquery, aggregate or window function;
--   * every function it calls (operators' functions included) is a pg_catalog function marked
--     immutable or stable; every operator is pg_catalog's;
--   * every type it names or reads (constants, casts, columns) is pg_catalog's or an enum, so
--     no user-written input, output or domain-check function runs;
--   * no whole-row reference, no row comparison, no ";".
-- The copy is a temporary table dropped before returning; the condition text is parsed with
-- the caller's rights (this function is not SECURITY DEFINER).
CREATE OR REPLACE FUNCTION pgsweep.checked_condition(p_table regclass, p_condition text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_copy text := format('pgsweep_condition_%s', p_table::oid);
    v_tree text;
    v_expr text;
    v_bad  text;
BEGIN
    IF p_condition IS NULL THEN
        RETURN NULL;
    END IF;
    IF strpos(p_condition, ';') > 0 THEN
        RAISE EXCEPTION 'a rule''s condition is one SQL expression and may not contain ";"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'In a string literal, write chr(59) for ";".';
    END IF;
    /* The table is regclass output, the copy's name quoted with %I; the condition is parsed
     * here on purpose, with the caller's rights, and only its deparsed form is kept.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('CREATE TEMP TABLE %I (LIKE %s)', v_copy, p_table);
    BEGIN
        EXECUTE format('ALTER TABLE pg_temp.%I ADD CONSTRAINT rule_condition CHECK (%s)',
                       v_copy, p_condition);
        SELECT c.conbin::text, pg_get_expr(c.conbin, c.conrelid) INTO STRICT v_tree, v_expr
          FROM pg_constraint c
         WHERE c.conrelid = format('pg_temp.%I', v_copy)::regclass;
    EXCEPTION WHEN OTHERS THEN
        EXECUTE format('DROP TABLE pg_temp.%I', v_copy);
        RAISE EXCEPTION 'condition of a rule on %: %', p_table, SQLERRM
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A condition is one boolean expression over the table''s own columns,'
                         ' e.g. status = ''suspended'' or used_at IS NOT NULL.';
    END;
    EXECUTE format('DROP TABLE pg_temp.%I', v_copy);
    v_bad := substring(v_tree FROM '\{(SUBLINK|AGGREF|WINDOWFUNC|PARAM|NEXTVALUEEXPR|ROWCOMPAREEXPR'
                                   '|COERCETODOMAIN|CURRENTOFEXPR|GROUPINGFUNC)');
    IF v_bad IS NOT NULL OR v_tree ~ ':varattno 0 ' THEN
        RAISE EXCEPTION 'condition of a rule on % uses what a rule may not: %', p_table,
            coalesce(lower(v_bad), 'a whole-row reference')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(DISTINCT format('%s (%s)', p.oid::regprocedure,
                                      CASE WHEN p.pronamespace <> 'pg_catalog'::regnamespace
                                           THEN 'not a pg_catalog function' ELSE 'volatile' END),
                      ', ')
      INTO v_bad
      FROM (SELECT m[1]::oid AS f
              FROM regexp_matches(v_tree, ':(?:funcid|opfuncid|hashfuncid|negfuncid) (\d+)', 'g') m
            UNION
            SELECT o.oprcode::oid FROM regexp_matches(v_tree, ':opno (\d+)', 'g') m
              JOIN pg_operator o ON o.oid = m[1]::oid) used
      JOIN pg_proc p ON p.oid = used.f
     WHERE p.pronamespace <> 'pg_catalog'::regnamespace OR p.provolatile = 'v' OR p.prokind <> 'f';
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % calls functions a sweep may not run: %',
            p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only immutable or stable pg_catalog functions and operators are allowed.';
    END IF;
    SELECT string_agg(DISTINCT o.oid::regoperator::text, ', ') INTO v_bad
      FROM regexp_matches(v_tree, ':opno (\d+)', 'g') m
      JOIN pg_operator o ON o.oid = m[1]::oid
     WHERE o.oprnamespace <> 'pg_catalog'::regnamespace;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % uses operators outside pg_catalog: %',
            p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(DISTINCT t.oid::regtype::text, ', ') INTO v_bad
      FROM regexp_matches(v_tree, ':[a-z_]*(?:type|typeid) (\d+)', 'g') m
      JOIN pg_type t ON t.oid = m[1]::oid
     WHERE t.typnamespace <> 'pg_catalog'::regnamespace AND t.typtype <> 'e';
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % uses types outside pg_catalog: %', p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Their input, output or check functions would run with the sweep''s rights.';
    END IF;
    RETURN v_expr;
END $$;
COMMENT ON FUNCTION pgsweep.checked_condition(regclass, text) IS
    'A rule condition checked as safe to re-run (pg_catalog immutable/stable only), deparsed';

-- ---- functions/column_type.sql ----------------------------------------
CREATE OR REPLACE FUNCTION pgsweep.column_type(p_table regclass, p_column name)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype;
BEGIN
    SELECT a.atttypid::regtype INTO v_type
      FROM pg_attribute a
     WHERE a.attrelid = p_table AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', p_column, p_table
            USING ERRCODE = 'undefined_column';
    END IF;
    RETURN v_type;
END $$;
COMMENT ON FUNCTION pgsweep.column_type(regclass, name) IS 'The type of a table column, or an error';

-- ---- functions/create_live_view.sql ----------------------------------------
-- A view of p_table without the rows its rules mark as garbage, so an app reading it never
-- serves an expired row even while the cleanup is behind (docs/rules.md). Named p_view, or
-- <schema>.<table>_live when NULL; created or replaced (run it again after changing the
-- table's rules: the view holds their conditions as they were). security_invoker: the reader's
-- own rights and row-level security apply, never the creator's. The cutoffs are expressions of
-- now() (rule_condition(..., p_as_of_now => true)), evaluated at each read. Returns the view.
CREATE OR REPLACE FUNCTION pgsweep.create_live_view(p_table regclass, p_view text DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  text;
    v_marks text;
BEGIN
    SELECT string_agg(format('(%s)', pgsweep.rule_condition(r, NULL, NULL, true)), ' OR '
                      ORDER BY r.column_name)
      INTO v_marks
      FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND pgsweep.rule_problem(r) IS NULL;
    IF v_marks IS NULL THEN
        RAISE EXCEPTION 'table % has no expiry rule that can run', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    SELECT coalesce(p_view, format('%I.%I', n.nspname, c.relname || '_live')) INTO v_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
    /* Every part is regclass output, %I-quoted or built by rule_condition from quoted parts.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS'
                   ' SELECT * FROM %s WHERE (%s) IS NOT TRUE', v_name, p_table, v_marks);
    EXECUTE format('COMMENT ON VIEW %s IS %L', v_name,
                   format('The rows of %s no pgsweep rule marks as garbage (pgsweep.create_live_view)',
                          p_table));
    RETURN to_regclass(v_name);
END $$;
COMMENT ON FUNCTION pgsweep.create_live_view(regclass, text) IS
    'Create (or refresh) a view of a table without the rows its rules mark as garbage';

-- ---- functions/cutoff_expression.sql ----------------------------------------
-- The cutoff of an age rule as an SQL expression of now(), for what is evaluated later (the
-- views that hide expired rows: pgsweep.create_live_view): the same instant as cutoff_literal,
-- now() - keep_for reckoned in UTC, in the column's type, zone and epoch unit. NULL for rules
-- that are not age rules.
CREATE OR REPLACE FUNCTION pgsweep.cutoff_expression(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    v_instant text := format('((now() AT TIME ZONE ''UTC'') - %L::interval) AT TIME ZONE ''UTC''',
                             p_rule.keep_for);
    v_scale   integer := CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    END IF;
    CASE
        WHEN v_type = 'timestamptz'::regtype THEN
            RETURN format('(%s)', v_instant);
        WHEN v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
            RETURN format('((%s) AT TIME ZONE %L)::%s', v_instant,
                          coalesce(p_rule.value_zone, 'UTC'), v_type);
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            RETURN format('ceil(extract(epoch FROM %s) * %s)::%s', v_instant, v_scale, v_type);
        ELSE
            RETURN format('(extract(epoch FROM %s) * %s)::%s', v_instant, v_scale, v_type);
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_expression(pgsweep.expiry_rule) IS
    'now() - keep_for as an SQL expression of now() in the column''s type (for views)';

-- ---- functions/cutoff_literal.sql ----------------------------------------
-- The cutoff of a rule as an SQL literal of the column's own type, so the planner sees a
-- constant it can match against the column's index. Rendered in DateStyle ISO: other styles
-- print zone abbreviations, which do not read back uniquely ('IST' for Asia/Kolkata reads back
-- as Israel time). now() - keep_for is reckoned in UTC (a day is 24 hours, whatever daylight
-- saving the session's zone observes), and a timestamp or date column takes that instant in the
-- rule's value_zone (UTC when unset): neither the session's nor the server's TimeZone moves it.
-- A number counts the rule's epoch_unit (seconds when unset). NULL for rules that are not age
-- rules (a condition or orphan rule has no cutoff).
CREATE OR REPLACE FUNCTION pgsweep.cutoff_literal(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET timezone = 'UTC'
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    v_instant timestamptz := now() - p_rule.keep_for;
    v_zone    text := coalesce(p_rule.value_zone, 'UTC');
    v_scale   integer := CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    END IF;
    CASE
        WHEN v_type = 'timestamptz'::regtype THEN
            RETURN format('%L::%s', v_instant, v_type);
        WHEN v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
            RETURN format('%L::%s', v_instant AT TIME ZONE v_zone, v_type);
        -- Whole units: "ttl < 1000.5" is "ttl < 1001" for an integer ttl, hence ceil.
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            RETURN format('%s::%s', ceil(extract(epoch FROM v_instant) * v_scale)::bigint, v_type);
        WHEN v_type IN ('numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
            RETURN format('%s::%s', extract(epoch FROM v_instant) * v_scale, v_type);
        ELSE
            RAISE EXCEPTION 'column "%" of % has type %, which cannot expire',
                p_rule.column_name, p_rule.table_name, v_type
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use a timestamp, date, or a number of epoch seconds or milliseconds.';
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_literal(pgsweep.expiry_rule) IS
    'now() - keep_for as a literal of the column''s type (numbers: in the rule''s epoch unit)';

-- ---- functions/delete_rows.sql ----------------------------------------
-- Delete the rows matching p_condition without making anyone wait for long: one pass when no
-- row is held (the common case), else SKIP LOCKED. The exception block is one subtransaction
-- per call, and a purge makes one call per rule or per committed batch, far below the 64 a
-- transaction may have before every snapshot in the cluster gets slower.
-- With the rule, a rule that archives moves the rows (pgsweep.archiving_statement); the count
-- is of rows deleted either way.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows(
    p_table regclass, p_condition text, p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    BEGIN
        RETURN pgsweep.delete_rows_waiting_briefly(p_table, p_condition, p_rule);
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        -- That pass is undone; take what is not held now.
        NULL;
    END;
    /* As in delete_rows_waiting_briefly.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_statement(p_table, p_condition, true, p_rule);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows(regclass, text, pgsweep.expiry_rule) IS
    'DELETE the matching rows in one pass, or with SKIP LOCKED when a row is held';

-- ---- functions/delete_rows_waiting_briefly.sql ----------------------------------------
-- The single-pass DELETE, allowed to wait 20 ms for a row lock (well under deadlock_timeout,
-- so in a lock cycle it nearly always times out before the other side's deadlock check runs:
-- only an app that had already waited 980 ms to 1 s is checked first). The SET clause
-- ends with the function, error or not.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows_waiting_briefly(
    p_table regclass, p_condition text, p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '20ms'
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    /* purge_statement quotes every identifier (%I, regclass) and value (%L) it puts into the
     * condition; plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_statement(p_table, p_condition, false, p_rule);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows_waiting_briefly(regclass, text, pgsweep.expiry_rule) IS
    'DELETE the matching rows in one pass, waiting at most 20 ms for any lock';

-- ---- functions/epoch_scale.sql ----------------------------------------
-- How many of a numeric rule column's units make a second (1 or 1000); NULL for a column that
-- holds no epoch number.
CREATE OR REPLACE FUNCTION pgsweep.epoch_scale(p_rule pgsweep.expiry_rule)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pgsweep.column_type(p_rule.table_name, p_rule.column_name) IN (
           'smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
           'numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
        RETURN CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.epoch_scale(pgsweep.expiry_rule) IS
    'Units per second of a numeric rule column (1: seconds, 1000: milliseconds), else NULL';

-- ---- functions/epoch_unit_problem.sql ----------------------------------------
-- Epoch values a rule never takes for garbage, and why a numeric column refuses a unit.
-- An epoch value before 2000-01-01 UTC or from the year 3000 on stands for no expiry instant an
-- application writes: it is a unit misread (seconds read as milliseconds land in 1970;
-- milliseconds read as seconds in the year 50000 and later) or a sentinel (0, -1). The sweep
-- never deletes a value before 2000 (rule_condition: the floor), so rows an app starts writing
-- in another unit after the rule was made, or sentinels, are kept rather than wiped; and a rule
-- is refused when most of a sample of the values already there (up to 1000) are implausible.
-- NULL: the rule is not an epoch age rule, or its values look right.
CREATE OR REPLACE FUNCTION pgsweep.epoch_unit_problem(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scale numeric := pgsweep.epoch_scale(p_rule);
    v_sample bigint;
    v_implausible bigint;
BEGIN
    IF v_scale IS NULL OR p_rule.kind <> 'age' THEN
        RETURN NULL;
    END IF;
    /* Identifiers through %I and regclass.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE v < %2$s OR v >= %3$s)'
                   '  FROM (SELECT %1$I::numeric AS v FROM %4$s WHERE %1$I IS NOT NULL LIMIT 1000) s',
                   p_rule.column_name, 946684800 * v_scale, 32503680000 * v_scale, p_rule.table_name)
       INTO v_sample, v_implausible;
    IF v_implausible * 2 > v_sample THEN
        RETURN format('%s of %s values sampled fall before 2000 or after 2999 read as %s',
                      v_implausible, v_sample, coalesce(p_rule.epoch_unit, 'seconds'));
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.epoch_unit_problem(pgsweep.expiry_rule) IS
    'Why most values of a numeric rule column are implausible in its epoch unit, or NULL';

-- ---- functions/forget_dropped_rules.sql ----------------------------------------
-- Event trigger (sql_drop): the rules of a table or column that was just dropped go with it,
-- and the one who dropped it is told (NOTICE). Without this a rule would point at nothing;
-- consumers would skip it (rule_problem) but it would linger, and an OID reused by a later
-- table could make it apply there. SECURITY DEFINER: whoever drops their own table needs no
-- grant on pgsweep.expiry_rule; it takes no argument and deletes only rules of dropped objects.
CREATE OR REPLACE FUNCTION pgsweep.forget_dropped_rules()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_gone record;
BEGIN
    -- The DELETE runs with the owner's rights and fires whatever triggers pgsweep.expiry_rule
    -- has: only when the function's owner owns the schema and the table, so that no one who
    -- could add such a trigger gains rights by it.
    IF NOT EXISTS (SELECT FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     JOIN pg_roles o ON o.rolname = current_user
                    WHERE c.oid = 'pgsweep.expiry_rule'::regclass
                      AND c.relowner = o.oid AND n.nspowner = o.oid) THEN
        RETURN;
    END IF;
    FOR v_gone IN
        DELETE FROM pgsweep.expiry_rule r
         USING pg_event_trigger_dropped_objects() d
         WHERE r.table_name::oid = d.objid
           AND (d.object_type = 'table'
                OR (d.object_type = 'table column' AND r.column_name = d.address_names[3]))
         RETURNING d.object_type, d.object_identity, r.column_name
    LOOP
        RAISE NOTICE 'pgsweep: expiry rule on column % removed with the dropped % %',
            v_gone.column_name, v_gone.object_type, v_gone.object_identity;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.forget_dropped_rules() IS
    'Event trigger: remove the expiry rules of dropped tables and columns';

-- ---- functions/garbage_counts.sql ----------------------------------------
-- How many rows each rule would delete right now. Rules of a table are counted in order, each
-- row once: rule i counts rows matching it and none of the rules before it, so the per-table sum
-- is exactly what a sweep would delete in this transaction (barring rows others lock), and
-- every count is a range scan of rule i's own index (the earlier rules are only a filter).
-- A rule that cannot run (rule_problem) is skipped with a warning, as every consumer skips it.
CREATE OR REPLACE FUNCTION pgsweep.garbage_counts(p_table regclass DEFAULT NULL)
RETURNS TABLE (table_name regclass, column_name name, garbage bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule    pgsweep.expiry_rule;
    v_table   regclass;
    v_match   text;
    v_earlier text := '';
    v_found   boolean := false;
BEGIN
    /* Identifiers are quoted with %I or are regclass output; the cutoff is a literal built by
     * cutoff_literal with %L, all through rule_condition. plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name = p_table
         ORDER BY r.table_name::text, r.column_name
    LOOP
        v_found := true;
        IF pgsweep.rule_problem(v_rule) IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                pgsweep.rule_problem(v_rule);
            CONTINUE;
        END IF;
        IF v_table IS DISTINCT FROM v_rule.table_name THEN
            v_table := v_rule.table_name;
            v_earlier := '';
        END IF;
        v_match := pgsweep.rule_condition(v_rule);
        EXECUTE format('SELECT count(*) FROM %s WHERE %s%s', v_rule.table_name, v_match, v_earlier)
           INTO garbage;
        table_name := v_rule.table_name;
        column_name := v_rule.column_name;
        RETURN NEXT;
        v_earlier := v_earlier || format(' AND (%s) IS NOT TRUE', v_match);
    END LOOP;
    IF p_table IS NOT NULL AND NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.garbage_counts(regclass) IS
    'Rows each expiry rule would delete now (each row counted once per table), index-driven';

-- ---- functions/hold_parents.sql ----------------------------------------
-- Before an orphan rule deletes, no parent may be on its way in: a READ COMMITTED NOT EXISTS
-- does not see a parent another transaction has inserted and not yet committed, and would
-- delete that parent's children. So the parent table is locked in SHARE mode (it waits for
-- every transaction writing to it to end, and keeps new writers out until this transaction
-- ends), and the DELETE that follows, with a snapshot taken after the lock, sees every parent
-- there is. The lock waits at most 100 ms (app writers queue behind it meanwhile); not
-- granted, the rule deletes nothing this time (a warning), and false is returned. Only under
-- READ COMMITTED: a REPEATABLE READ snapshot may predate the lock. Other rules: true, no lock.
CREATE OR REPLACE FUNCTION pgsweep.hold_parents(p_rule pgsweep.expiry_rule)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
BEGIN
    IF p_rule.kind <> 'orphan' THEN
        RETURN true;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE WARNING 'pgsweep: orphans of % not swept: only under READ COMMITTED',
            p_rule.table_name;
        RETURN false;
    END IF;
    BEGIN
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', p_rule.parent_table);
    EXCEPTION WHEN lock_not_available THEN
        RAISE WARNING 'pgsweep: orphans of % not swept this time: writers of % kept it busy',
            p_rule.table_name, p_rule.parent_table;
        RETURN false;
    END;
    RETURN true;
END $$;
COMMENT ON FUNCTION pgsweep.hold_parents(pgsweep.expiry_rule) IS
    'Lock an orphan rule''s parent table against writers before deleting (false: not granted)';

-- ---- functions/instant_expression.sql ----------------------------------------
-- The instant a value of the rule's column stands for, as an SQL expression over the column
-- (for ages and reports: "how long ago did this row expire"). The inverse of cutoff_literal;
-- NULL for rules that are not age rules.
CREATE OR REPLACE FUNCTION pgsweep.instant_expression(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    ELSIF v_type = 'timestamptz'::regtype THEN
        RETURN format('%I', p_rule.column_name);
    ELSIF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        RETURN format('(%I::timestamp AT TIME ZONE %L)', p_rule.column_name,
                      coalesce(p_rule.value_zone, 'UTC'));
    ELSIF p_rule.epoch_unit = 'milliseconds' THEN
        RETURN format('to_timestamp(%I::double precision / 1000)', p_rule.column_name);
    END IF;
    RETURN format('to_timestamp(%I::double precision)', p_rule.column_name);
END $$;
COMMENT ON FUNCTION pgsweep.instant_expression(pgsweep.expiry_rule) IS
    'The instant a value of the rule''s column stands for, as an SQL expression';

-- ---- functions/pg_cron_unusable_reason.sql ----------------------------------------
-- NULL when cron.schedule() can be called from this database; otherwise the reason.
CREATE OR REPLACE FUNCTION pgsweep.pg_cron_unusable_reason()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cron_database text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron') THEN
        RETURN 'pg_cron is not installed on this server';
    END IF;
    -- cron.database_name is readable by superusers and pg_read_all_settings only.
    BEGIN
        v_cron_database := current_setting('cron.database_name', true);
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN format('role %s may not read cron.database_name (pg_read_all_settings)', current_user);
    END;
    -- The setting exists only once the library is loaded (shared_preload_libraries).
    IF v_cron_database IS NULL OR v_cron_database = '' THEN
        RETURN 'pg_cron is not loaded (it must be in shared_preload_libraries)';
    END IF;
    IF v_cron_database <> current_database() THEN
        RETURN format('this database (%s) is not cron.database_name (%s)',
                      current_database(), v_cron_database);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN 'the pg_cron extension is not created in this database (CREATE EXTENSION pg_cron)';
    END IF;
    IF NOT has_schema_privilege('cron', 'USAGE')
       OR NOT has_function_privilege('cron.schedule(text, text, text)', 'EXECUTE') THEN
        RETURN format('role %s may not use cron.schedule()', current_user);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.pg_cron_unusable_reason() IS
    'Why pg_cron cannot schedule jobs from this database, or NULL when it can';

-- ---- functions/purge_few.sql ----------------------------------------
-- At most p_rows garbage rows of a rule, oldest first, skipping rows another transaction holds:
-- the insert trigger's bounded batch. Rows are locked before they are deleted, so the trigger
-- never waits, whatever the app holds. An orphan rule is left to the scheduled sweep: it would
-- lock its parent table inside the app's insert.
CREATE OR REPLACE FUNCTION pgsweep.purge_few(p_rule pgsweep.expiry_rule, p_rows integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted integer;
BEGIN
    IF p_rule.kind = 'orphan' THEN
        RETURN 0;
    END IF;
    /* skip_locked_statement and rule_condition quote every identifier (%I, regclass) and
     * value (%L).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.archiving_statement(p_rule, pgsweep.skip_locked_statement(
        p_rule.table_name, pgsweep.rule_condition(p_rule), p_rule.column_name, p_rows));
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.purge_few(pgsweep.expiry_rule, integer) IS
    'Delete up to p_rows garbage rows of a rule, oldest first, skipping held rows';

-- ---- functions/purge_range.sql ----------------------------------------
-- One batch of CALL pgsweep.sweep(): the rule's garbage from p_from (the start, when NULL) up to
-- the boundary, deleted in one pass. next_from is where the next batch starts, NULL when the
-- rule has no garbage left. An empty range means every row from p_from to the boundary shares
-- the boundary's value (tokens issued by one statement) or is held: then up to p_batch_size
-- rows of that value go by ctid, skipping held ones. The next batch probes again from the
-- value; once only held rows are left at it, the sweep moves past it.
CREATE OR REPLACE FUNCTION pgsweep.purge_range(
    p_rule pgsweep.expiry_rule, p_from text, p_batch_size integer,
    OUT deleted bigint, OUT next_from text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- next_from is a value of the column as text, read back by the next batch: render it in a form
-- that reads back exactly whatever the caller's settings (see cutoff_literal).
SET datestyle = 'ISO, YMD'
SET extra_float_digits = 3
AS $$
DECLARE
    v_table     regclass := p_rule.table_name;
    v_column    name := p_rule.column_name;
    v_condition text;
    v_type      regtype;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pgsweep.hold_parents(p_rule) THEN
        deleted := 0;
        RETURN;
    END IF;
    v_condition := pgsweep.rule_condition(p_rule, p_from);
    /* Built by batch_boundary_statement and rule_condition from quoted parts (%I, %L, regclass).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.batch_boundary_statement(v_table, v_column, v_condition, p_batch_size)
       INTO next_from;
    IF next_from IS NULL THEN
        deleted := pgsweep.delete_rows(v_table, v_condition, p_rule);
        RETURN;
    END IF;
    deleted := pgsweep.delete_rows(v_table, pgsweep.rule_condition(p_rule, p_from, next_from), p_rule);
    IF deleted > 0 THEN
        RETURN;
    END IF;
    v_type := pgsweep.column_type(v_table, v_column);
    EXECUTE pgsweep.archiving_statement(p_rule, pgsweep.skip_locked_statement(
        v_table, format('%s AND %I = %L::%s', v_condition, v_column, next_from, v_type),
        NULL, p_batch_size));
    GET DIAGNOSTICS deleted = ROW_COUNT;
    IF deleted = 0 THEN
        -- Every row left at this value is held (they wait for the next run): the next value.
        -- (Fewer than a batch but more than none: the next probe finds a range past the value,
        -- or none; moving on already could skip a row whose update committed mid-statement.)
        EXECUTE format('SELECT min(%1$I)::text FROM %2$s WHERE %3$s AND %1$I > %4$L::%5$s',
                       v_column, v_table, v_condition, next_from, v_type)
           INTO next_from;
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.purge_range(pgsweep.expiry_rule, text, integer) IS
    'Delete one sweep batch of a rule in one pass; returns the count and where the next starts';

-- ---- functions/purge_rule.sql ----------------------------------------
-- Every garbage row of one rule, in the caller's transaction: one DELETE, planned with its
-- cutoff (the rule's index for a few rows, a sequential scan for a backlog).
CREATE OR REPLACE FUNCTION pgsweep.purge_rule(p_rule pgsweep.expiry_rule)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pgsweep.hold_parents(p_rule) THEN
        RETURN 0;
    END IF;
    RETURN pgsweep.delete_rows(p_rule.table_name, pgsweep.rule_condition(p_rule), p_rule);
END $$;
COMMENT ON FUNCTION pgsweep.purge_rule(pgsweep.expiry_rule) IS
    'Delete every garbage row of one rule with one DELETE, in the caller''s transaction';

-- ---- functions/purge_statement.sql ----------------------------------------
-- The DELETE of the rows matching p_condition. With p_skip_locked the rows are first taken
-- with FOR UPDATE SKIP LOCKED (skip_locked_statement): rows another transaction holds are left
-- alone, at the price of a second visit to every row and a WAL record for each lock. A function
-- of its own so that EXPLAIN (pgsweep verify, the tests) can inspect exactly the statement a
-- purge runs. Given the rule, and the rule archives, the rows deleted go into its archive in
-- the same statement (pgsweep.archiving_statement).
CREATE OR REPLACE FUNCTION pgsweep.purge_statement(
    p_table regclass, p_condition text, p_skip_locked boolean,
    p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_skip_locked THEN
        RETURN pgsweep.archiving_statement(p_rule, pgsweep.skip_locked_statement(p_table, p_condition));
    END IF;
    RETURN pgsweep.archiving_statement(p_rule, format('DELETE FROM %s WHERE %s', p_table, p_condition));
END $$;
COMMENT ON FUNCTION pgsweep.purge_statement(regclass, text, boolean, pgsweep.expiry_rule) IS
    'The DELETE a purge runs for a condition, with or without SKIP LOCKED, archiving (for EXPLAIN)';

-- ---- functions/remove_rule.sql ----------------------------------------
-- Take a rule (or, with no column, every rule of the table) out of the lifecycle; returns how
-- many were removed. The table's rows are untouched.
CREATE OR REPLACE FUNCTION pgsweep.remove_rule(p_table regclass, p_column name DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_removed integer;
BEGIN
    DELETE FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND (p_column IS NULL OR r.column_name = p_column);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN v_removed;
END $$;
COMMENT ON FUNCTION pgsweep.remove_rule(regclass, name) IS
    'Remove a table''s rule on a column (or all its rules); returns how many';

-- ---- functions/require_leading_index.sql ----------------------------------------
-- Refuse (naming the index to build) unless a valid index of p_table leads with p_column: every
-- rule's batches walk its column in index order.
CREATE OR REPLACE FUNCTION pgsweep.require_leading_index(p_table regclass, p_column name)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND a.attname = p_column AND i.indisvalid)
    THEN
        RAISE EXCEPTION 'no valid index on % leads with column "%"', p_table, p_column
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('CREATE INDEX CONCURRENTLY ON %s (%I);', p_table, p_column);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.require_leading_index(regclass, name) IS
    'Raise, naming the index to build, unless an index of the table leads with the column';

-- ---- functions/rule_condition.sql ----------------------------------------
-- The garbage of one rule as an SQL condition, within [p_from, p_before) of its column when
-- given. Bounds are text (a batch hands its end to the next), read back as the column's type.
--   age:       column < cutoff; for an epoch number also column >= the floor (2000-01-01 in the
--              rule's unit: see pgsweep.epoch_unit_problem);
--   condition: the condition alone;
--   orphan:    the key is not NULL and no parent row has it;
-- and the rule's condition, if any. Outside age rules the column may be NULL in garbage rows:
-- the last range of a sweep (a start, no end) includes them, as the probe sorts them last.
-- The parent's columns are renamed in the orphan's subquery, so that no parent column captures
-- a child column of the same name in the key: for a key column the planner makes it an
-- anti-join; a key expression probes the parent's index row by row.
-- p_as_of_now: the cutoff as an expression of now() (cutoff_expression) rather than a literal,
-- for a condition kept and evaluated later (a view that hides expired rows).
CREATE OR REPLACE FUNCTION pgsweep.rule_condition(
    p_rule pgsweep.expiry_rule, p_from text DEFAULT NULL, p_before text DEFAULT NULL,
    p_as_of_now boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_column name := p_rule.column_name;
    v_type   regtype := pgsweep.column_type(p_rule.table_name, v_column);
    v_scale  integer := pgsweep.epoch_scale(p_rule);
    v_key    text := coalesce(p_rule.child_key, format('%I', v_column));
    v_parts  text[] := '{}'::text[];
    v_aliases text;
    v_parent_key text;
BEGIN
    IF p_rule.kind = 'orphan' THEN
        -- The parent's columns are renamed pgsweep_p1, pgsweep_p2, ... in the subquery, so that
        -- no parent column captures a child column of the same name in the key; the planner
        -- still turns NOT EXISTS into an anti-join.
        SELECT string_agg(format('pgsweep_p%s', a.n), ', ' ORDER BY a.n),
               max(format('pgsweep_p%s', a.n)) FILTER (WHERE a.attname = p_rule.parent_key)
          INTO v_aliases, v_parent_key
          FROM (SELECT pa.attname, row_number() OVER (ORDER BY pa.attnum) AS n
                  FROM pg_attribute pa
                 WHERE pa.attrelid = p_rule.parent_table AND pa.attnum > 0
                   AND NOT pa.attisdropped) a;
        IF p_rule.child_key IS NULL THEN
            v_parts := v_parts || format(
                '%1$s IS NOT NULL AND NOT EXISTS (SELECT FROM %2$s AS p (%3$s) WHERE p.%4$s = %1$s)',
                v_key, p_rule.parent_table, v_aliases, v_parent_key);
        ELSE
            -- A key expression is computed once per child, then probes the parent's index.
            v_parts := v_parts || format(
                '(%1$s) IS NOT NULL AND NOT EXISTS (SELECT FROM (SELECT %1$s AS k) c'
                ' JOIN %2$s AS p (%3$s) ON p.%4$s = c.k)',
                v_key, p_rule.parent_table, v_aliases, v_parent_key);
        END IF;
    ELSIF p_rule.kind = 'age' THEN
        -- Separate statements: the executor checks the right to run every function an
        -- expression names, even one a CASE never reaches.
        IF p_as_of_now THEN
            v_parts := v_parts || format('%I < %s', v_column, pgsweep.cutoff_expression(p_rule));
        ELSE
            v_parts := v_parts || format('%I < %s', v_column, pgsweep.cutoff_literal(p_rule));
        END IF;
        IF v_scale IS NOT NULL THEN
            v_parts := v_parts || format('%I >= %s', v_column, 946684800::bigint * v_scale);
        END IF;
    END IF;
    IF p_rule.condition IS NOT NULL THEN
        v_parts := v_parts || format('(%s)', p_rule.condition);
    END IF;
    -- NULLs of the walked column can be garbage only outside age rules, in a column that allows
    -- them, and (orphans) when the key is an expression rather than the column itself.
    IF p_from IS NOT NULL AND p_before IS NULL AND p_rule.kind <> 'age'
       AND NOT (p_rule.kind = 'orphan' AND p_rule.child_key IS NULL)
       AND NOT (SELECT a.attnotnull FROM pg_attribute a
                 WHERE a.attrelid = p_rule.table_name AND a.attname = v_column) THEN
        v_parts := v_parts || format('(%I >= %L::%s OR %I IS NULL)', v_column, p_from, v_type, v_column);
    ELSIF p_from IS NOT NULL THEN
        v_parts := v_parts || format('%I >= %L::%s', v_column, p_from, v_type);
    END IF;
    IF p_before IS NOT NULL THEN
        v_parts := v_parts || format('%I < %L::%s', v_column, p_before, v_type);
    END IF;
    RETURN array_to_string(v_parts, ' AND ');
END $$;
COMMENT ON FUNCTION pgsweep.rule_condition(pgsweep.expiry_rule, text, text, boolean) IS
    'The rows a rule marks as garbage, optionally within [from, before), as an SQL condition';

-- ---- functions/rule_problem.sql ----------------------------------------
-- Why a rule cannot run now, or NULL when it can: its table or column is gone (dropped, or the
-- column renamed, where no event trigger removed the rule at the time) or the column's type
-- changed to one that cannot expire. Every consumer skips such a rule, says so, and goes on
-- with the others; pgsweep verify fails it.
CREATE OR REPLACE FUNCTION pgsweep.rule_problem(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM pg_class c
                          WHERE c.oid = p_rule.table_name AND c.relkind IN ('r', 'p'))
            THEN format('table %s no longer exists', p_rule.table_name::oid)
        WHEN a.atttypid IS NULL
            THEN format('column %I of %s no longer exists', p_rule.column_name, p_rule.table_name)
        WHEN p_rule.kind = 'orphan' AND NOT EXISTS (
                 SELECT FROM pg_attribute pa
                  WHERE pa.attrelid = p_rule.parent_table AND pa.attname = p_rule.parent_key
                    AND pa.attnum > 0 AND NOT pa.attisdropped)
            THEN format('parent key %I of %s no longer exists', p_rule.parent_key,
                        p_rule.parent_table::oid)
        WHEN p_rule.kind = 'age' AND a.atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype,
                                'smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                                'numeric'::regtype, 'double precision'::regtype, 'real'::regtype)
            THEN format('column %I of %s has type %s, which cannot expire',
                        p_rule.column_name, p_rule.table_name, a.atttypid::regtype)
    END
      FROM (SELECT NULL) AS one
      LEFT JOIN pg_attribute a
             ON a.attrelid = p_rule.table_name AND a.attname = p_rule.column_name
            AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION pgsweep.rule_problem(pgsweep.expiry_rule) IS
    'Why a rule cannot run (its table or column is gone, or cannot expire), or NULL';

-- ---- functions/save_rule.sql ----------------------------------------
-- Record a checked rule, replacing the one with its (table, column) if any.
CREATE OR REPLACE FUNCTION pgsweep.save_rule(p_rule pgsweep.expiry_rule)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO pgsweep.expiry_rule AS r
           (table_name, column_name, keep_for, value_zone, epoch_unit, kind, condition,
            parent_table, parent_key, child_key, archive_to)
    VALUES (p_rule.table_name, p_rule.column_name, p_rule.keep_for, p_rule.value_zone,
            p_rule.epoch_unit, p_rule.kind, p_rule.condition, p_rule.parent_table,
            p_rule.parent_key, p_rule.child_key, p_rule.archive_to)
    ON CONFLICT (table_name, column_name) DO UPDATE
       SET keep_for = excluded.keep_for, value_zone = excluded.value_zone,
           epoch_unit = excluded.epoch_unit, kind = excluded.kind,
           condition = excluded.condition, parent_table = excluded.parent_table,
           parent_key = excluded.parent_key, child_key = excluded.child_key;
    -- archive_to is the rule's own setting (pgsweep.set_archive): re-registering keeps it.
END $$;
COMMENT ON FUNCTION pgsweep.save_rule(pgsweep.expiry_rule) IS
    'Insert or replace a rule that its add_ function has checked';

-- ---- functions/set_archive.sql ----------------------------------------
-- Make a rule move its rows into an archive table as it deletes them (docs/rules.md), or, with
-- p_archive => '' , stop archiving. The archive is p_archive, or <schema>.<table>_archive when
-- NULL; created when missing (the table's columns, then archived_at timestamptz and
-- archived_by text, and an index on archived_at so that the archive can have its own rule:
-- pgsweep.add_rule(archive, 'archived_at', '90 days')); when it exists, checked: every column
-- of the table, same name and type, plus those two, and the same owner as the table (its
-- triggers run with the sweep's rights, as the table's own do). Returns the archive.
CREATE OR REPLACE FUNCTION pgsweep.set_archive(
    p_table regclass, p_column name, p_archive text DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_archive regclass;
    v_name    text;
    v_missing text;
BEGIN
    IF NOT EXISTS (SELECT FROM pgsweep.expiry_rule r
                    WHERE r.table_name = p_table AND r.column_name = p_column) THEN
        RAISE EXCEPTION 'table % has no rule on column "%"', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one first (pgsweep.add_rule).';
    END IF;
    IF p_archive = '' THEN
        UPDATE pgsweep.expiry_rule r SET archive_to = NULL
         WHERE r.table_name = p_table AND r.column_name = p_column;
        RETURN NULL;
    END IF;
    SELECT coalesce(p_archive, format('%I.%I', n.nspname, c.relname || '_archive')) INTO v_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
    v_archive := to_regclass(v_name);
    IF v_archive IS NULL THEN
        /* The table is regclass output, the archive's name came through to_regclass's parser
         * rules: it is created as the name it would resolve to.
         * @plpgsql_check_options: security_warnings = false
         */
        EXECUTE format('CREATE TABLE %s (LIKE %s)', v_name, p_table);
        v_archive := to_regclass(v_name);
        EXECUTE format('ALTER TABLE %s ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),'
                       ' ADD COLUMN archived_by text NOT NULL', v_archive);
        EXECUTE format('CREATE INDEX ON %s (archived_at)', v_archive);
    END IF;
    IF v_archive = p_table THEN
        RAISE EXCEPTION 'a table cannot be its own archive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('%I %s', t.attname, format_type(t.atttypid, t.atttypmod)), ', ')
      INTO v_missing
      FROM (SELECT a.attname, a.atttypid, a.atttypmod FROM pg_attribute a
             WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
            UNION ALL SELECT 'archived_at', 'timestamptz'::regtype, -1
            UNION ALL SELECT 'archived_by', 'text'::regtype, -1) t
     WHERE NOT EXISTS (SELECT FROM pg_attribute b
                        WHERE b.attrelid = v_archive AND b.attname = t.attname
                          AND b.atttypid = t.atttypid AND NOT b.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'archive % lacks columns of % it must hold: %', v_archive, p_table, v_missing
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF (SELECT c.relowner FROM pg_class c WHERE c.oid = v_archive)
       IS DISTINCT FROM (SELECT c.relowner FROM pg_class c WHERE c.oid = p_table) THEN
        RAISE EXCEPTION 'archive % has another owner than %', v_archive, p_table
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Its triggers would run with the sweep''s rights: give it the table''s owner.';
    END IF;
    UPDATE pgsweep.expiry_rule r SET archive_to = v_archive
     WHERE r.table_name = p_table AND r.column_name = p_column;
    RETURN v_archive;
END $$;
COMMENT ON FUNCTION pgsweep.set_archive(regclass, name, text) IS
    'Make a rule archive the rows it deletes (creating or checking the archive table), or stop';

-- ---- functions/skip_locked_statement.sql ----------------------------------------
-- The DELETE of the rows matching p_condition that no other transaction holds (taken first with
-- FOR UPDATE SKIP LOCKED), optionally the first p_limit of them in p_order. A row is named by
-- its table and ctid together: in a partitioned table (or one with inheritance children) two
-- partitions have rows at the same ctid, so a ctid alone would also delete a live row of
-- another partition. The ctid list still drives a TID scan; the pair makes it exact.
CREATE OR REPLACE FUNCTION pgsweep.skip_locked_statement(
    p_table regclass, p_condition text, p_order name DEFAULT NULL, p_limit integer DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        'WITH picked AS MATERIALIZED ('
        'SELECT tableoid AS t, ctid AS c FROM %1$s WHERE %2$s%3$s%4$s FOR UPDATE SKIP LOCKED) '
        'DELETE FROM %1$s WHERE ctid = ANY (ARRAY(SELECT p.c FROM picked p))'
        ' AND (tableoid, ctid) IN (SELECT p.t, p.c FROM picked p)',
        p_table, p_condition,
        CASE WHEN p_order IS NOT NULL THEN format(' ORDER BY %I', p_order) ELSE '' END,
        CASE WHEN p_limit IS NOT NULL THEN format(' LIMIT %s', p_limit) ELSE '' END)
$$;
COMMENT ON FUNCTION pgsweep.skip_locked_statement(regclass, text, name, integer) IS
    'The DELETE of the matching rows no one holds (by table and ctid), optionally the first N';

-- ---- functions/sweep_on_insert.sql ----------------------------------------
-- AFTER INSERT ... FOR EACH STATEMENT: one bounded batch of one rule of the table.
--   TG_ARGV[0]: the rule column to sweep; TG_ARGV[1]: rows per sweep (default 10);
--   TG_ARGV[2]: insert statements of the session that skip the sweep after a short batch
--   (default 50).
-- Only sweep rules whose rows the app never updates again (see docs, "Triggers"): SKIP LOCKED
-- keeps the trigger from waiting, and choosing such rows keeps the app from waiting on it.
-- A sweep costs a freshly planned statement even when it finds nothing, about as much as the
-- insert itself (make bench, S4). So a batch that comes back short, meaning the garbage is
-- gone, lets the session's next inserts skip the sweep; a full batch means there is more, and
-- the next insert sweeps again. The countdown is a session setting, transactional like any.
-- SECURITY DEFINER so the app's role needs no grant on pgsweep; it can delete only rows the
-- table's own rule marks as garbage, and only in tables the engine's owner owns (whose DELETE
-- triggers run with those same rights). Errors become warnings: an insert never fails for it.
CREATE OR REPLACE FUNCTION pgsweep.sweep_on_insert()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule     pgsweep.expiry_rule;
    v_rows     integer := coalesce(TG_ARGV[1]::integer, 10);
    v_skip     integer := coalesce(TG_ARGV[2]::integer, 50);
    -- One countdown per table and rule column in this session.
    v_countdown_setting text :=
        format('pgsweep.skip_%s_%s', TG_RELID::oid, left(md5(TG_ARGV[0]), 8));
    v_countdown integer :=
        coalesce(nullif(current_setting(v_countdown_setting, true), '')::integer, 0);
    v_deleted  integer;
BEGIN
    -- Under REPEATABLE READ or SERIALIZABLE, locking a row changed since the snapshot raises a
    -- serialization error; leave the work to the scheduled cleanup.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN NULL;
    END IF;
    IF v_countdown > 0 THEN
        PERFORM set_config(v_countdown_setting, (v_countdown - 1)::text, false);
        RETURN NULL;
    END IF;
    -- The DELETE runs with the function owner's rights, and so do the DELETE triggers of the
    -- table it fires: on a table someone else owns, its owner's triggers would run with rights
    -- that owner may lack. Sweep only the engine owner's own tables.
    IF NOT EXISTS (SELECT FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner
                    WHERE c.oid = TG_RELID AND o.rolname = current_user) THEN
        RAISE WARNING 'pgsweep: opportunistic cleanup of % skipped: the table is not owned by %',
            TG_RELID::regclass, current_user
            USING HINT = 'The scheduled sweep still cleans it; or have the engine''s owner own it.';
        PERFORM set_config(v_countdown_setting, v_skip::text, false);
        RETURN NULL;
    END IF;
    SELECT r.* INTO v_rule FROM pgsweep.expiry_rule r
     WHERE r.table_name = TG_RELID AND r.column_name = TG_ARGV[0];
    IF FOUND THEN
        BEGIN
            v_deleted := pgsweep.purge_few(v_rule, v_rows);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pgsweep: opportunistic cleanup of % skipped: %', TG_RELID::regclass, SQLERRM;
        END;
    END IF;
    PERFORM set_config(v_countdown_setting,
                       CASE WHEN coalesce(v_deleted, 0) < v_rows THEN v_skip ELSE 0 END::text, false);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_on_insert() IS
    'Insert trigger: delete one small batch of one expiry rule of the table (args: column, rows, skip)';

-- ---- functions/sweep_table.sql ----------------------------------------
-- All rules of one table, in the caller's transaction, one DELETE per rule. A table without
-- rules is an error, never a silent "0 rows"; a rule that cannot run (rule_problem) is skipped
-- with a warning. p_batch_size is checked and otherwise unused (each rule is one DELETE); it
-- stays so that callers of the embedded engine keep working.
CREATE OR REPLACE FUNCTION pgsweep.sweep_table(p_table regclass, p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total bigint := 0;
    v_rule  pgsweep.expiry_rule;
    v_found boolean := false;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r WHERE r.table_name = p_table ORDER BY r.column_name
    LOOP
        v_found := true;
        IF pgsweep.rule_problem(v_rule) IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                pgsweep.rule_problem(v_rule);
            CONTINUE;
        END IF;
        v_total := v_total + pgsweep.purge_rule(v_rule);
    END LOOP;
    IF NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_table(regclass, integer) IS
    'Delete the garbage of every rule of a table, in the caller''s transaction';

-- ---- functions/unindexed_statement.sql ----------------------------------------
-- Whether the plan of p_statement reads some table without an index condition (a sequential
-- scan, or an index walked end to end) even when sequential scans are off: then no index can
-- serve it. Planned, never executed.
CREATE OR REPLACE FUNCTION pgsweep.unindexed_statement(p_statement text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    v_plan jsonb;
BEGIN
    /* Statements built by the engine from quoted parts.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_statement INTO v_plan;
    RETURN jsonb_path_exists(v_plan,
        '$.** ? (@."Node Type" == "Seq Scan" || ((@."Node Type" == "Index Scan"'
        ' || @."Node Type" == "Index Only Scan" || @."Node Type" == "Bitmap Index Scan")'
        ' && !exists(@."Index Cond")))');
END $$;
COMMENT ON FUNCTION pgsweep.unindexed_statement(text) IS
    'True when no index can serve a statement (a table scanned without an index condition)';

-- ---- functions/version.sql ----------------------------------------
-- The engine release installed here: the newest row of pgsweep.release.
CREATE OR REPLACE FUNCTION pgsweep.version()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.version FROM pgsweep.release r
     ORDER BY string_to_array(r.version, '.')::integer[] DESC LIMIT 1
$$;
COMMENT ON FUNCTION pgsweep.version() IS 'The engine release installed in this database';

-- ---- procedures/sweep.sql ----------------------------------------
-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- A rule that cannot run (rule_problem) is skipped with a warning; the others go on.
-- PostgreSQL forbids a SET search_path clause on a procedure that commits, so this body names
-- everything schema-qualified, operators included (OPERATOR(pg_catalog.=): an unqualified
-- "regclass = regclass" resolves to any exact-match operator planted on the caller's path,
-- which would then run with the caller's rights), and leaves all data work to the pinned
-- functions.
CREATE OR REPLACE PROCEDURE pgsweep.sweep(
    p_table regclass DEFAULT NULL, p_batch_size integer DEFAULT 5000,
    p_pause interval DEFAULT '0', INOUT deleted bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_rule  pgsweep.expiry_rule;
    v_batch record;
    v_from  text;
    v_problem text;
    v_rule_total bigint;
    v_found boolean := false;
BEGIN
    deleted := 0;
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_found := true;
        v_problem := pgsweep.rule_problem(v_rule);
        IF v_problem IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                v_problem;
            CONTINUE;
        END IF;
        v_from := NULL;
        v_rule_total := 0;
        LOOP
            SELECT b.deleted, b.next_from INTO v_batch
              FROM pgsweep.purge_range(v_rule, v_from, p_batch_size) AS b;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_batch.deleted;
            EXIT WHEN v_batch.next_from IS NULL;
            v_from := v_batch.next_from;
            IF p_pause OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                PERFORM pg_catalog.pg_sleep_for(p_pause);
            END IF;
        END LOOP;
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name, v_rule.column_name;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    -- As sweep_table: a named table without rules is an error, never a silent "0 rows".
    IF p_table IS NOT NULL AND NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, one short transaction per batch; CALL outside a transaction block';

-- ---- views/rules.sql ----------------------------------------
-- Every rule, with what an operator asks first: the column's type, the zone its values are in,
-- and why the rule cannot run, if it cannot (NULL: it runs); since 1.1 (appended) its kind, epoch
-- unit, condition and, for orphans, its parent. The pgsweep command reads this.
CREATE OR REPLACE VIEW pgsweep.rules AS
SELECT r.table_name::text AS table_name,
       r.column_name,
       r.keep_for,
       r.value_zone,
       a.atttypid::regtype AS column_type,
       pgsweep.rule_problem(r) AS problem,
       r.kind,
       r.epoch_unit,
       r.condition,
       r.parent_table::text AS parent_table,
       r.parent_key,
       r.child_key,
       r.archive_to::text AS archive_to
  FROM pgsweep.expiry_rule r
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = r.table_name AND a.attname = r.column_name
        AND a.attnum > 0 AND NOT a.attisdropped;
COMMENT ON VIEW pgsweep.rules IS
    'Expiry rules with their column type, value zone and problem (NULL: the rule runs)';

-- ---- event_triggers/forget_dropped_rules.sql ----------------------------------------
-- The event trigger behind pgsweep.forget_dropped_rules(). Creating an event trigger needs a
-- superuser; without one the engine still installs, consumers skip rules whose table or column
-- is gone (pgsweep.rule_problem) and pgsweep verify reports them, and this says so.
-- The trigger fires on every DROP in the database, whoever runs it, superusers included: it is
-- created only when a superuser also owns the function it calls, the rule table and the schema.
-- An engine installed by another role (who may replace that function, or add a trigger to that
-- table, at will) gets none, even when a superuser runs this again.
DO $$
DECLARE
    v_owner name := (SELECT r.rolname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
                      WHERE p.oid = 'pgsweep.forget_dropped_rules()'::regprocedure);
BEGIN
    IF EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'pgsweep_forget_dropped_rules') THEN
        RETURN;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'pgsweep: event trigger pgsweep_forget_dropped_rules not created (needs a superuser)'
            USING HINT = 'Rules of dropped tables are skipped and reported by pgsweep verify instead.';
    ELSIF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = v_owner)
          -- The function deletes from pgsweep.expiry_rule, firing its triggers: whoever owns
          -- that table or its schema must be that same superuser (the function checks it too).
          OR (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
               WHERE c.oid = 'pgsweep.expiry_rule'::regclass) IS DISTINCT FROM v_owner
          OR (SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
               WHERE n.nspname = 'pgsweep') IS DISTINCT FROM v_owner THEN
        RAISE NOTICE 'pgsweep: event trigger pgsweep_forget_dropped_rules not created: the engine belongs to % (its function), % (its rule table) and % (its schema), not to one superuser',
            v_owner,
            (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
              WHERE c.oid = 'pgsweep.expiry_rule'::regclass),
            (SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
              WHERE n.nspname = 'pgsweep')
            USING HINT = 'A trigger that runs on every DROP may only call a superuser''s function.'
                         ' Rules of dropped tables are skipped and reported by pgsweep verify instead.';
    ELSE
        CREATE EVENT TRIGGER pgsweep_forget_dropped_rules ON sql_drop
            EXECUTE FUNCTION pgsweep.forget_dropped_rules();
    END IF;
END $$;

-- ---- grants.sql ----------------------------------------
-- Nothing that deletes is executable by PUBLIC; roles are granted what they need explicitly
-- (docs, "Roles"). PUBLIC may use the schema, to name its objects, and reads none of its tables.
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA pgsweep FROM PUBLIC;
GRANT USAGE ON SCHEMA pgsweep TO PUBLIC;

INSERT INTO pgsweep.release (version) VALUES ('1.1') ON CONFLICT (version) DO NOTHING;

