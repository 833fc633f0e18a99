-- 0009 down: back to the engine 0006-0008 embedded. Drops what engine release 1.0 added (the
-- release record, the rules view, the event trigger and the routines that take the rule
-- itself), puts back the embedded engine's routines as 0006-0008 left them (word for word),
-- moves deck progress back into pgsweep and points 0007's job back at
-- cleanup_all_expired_tokens(). Rules and their keep_for are kept; a value_zone is dropped
-- (the embedded engine read timestamp columns in the session's TimeZone). No app row is touched.
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0009_standalone_engine_down.sql
-- Alembic runs this same file for revision 0009 (downgrade). Safe to run again.
-- A rollback script exists to remove what its revision added.
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-column, ban-drop-view
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

-- Refuse while a newer revision is recorded (README, "Rollback").
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic'
       AND EXISTS (SELECT FROM alembic_version WHERE version_num > '0009') THEN
        RAISE EXCEPTION 'alembic_version records a revision newer than 0009'
            USING HINT = 'Run the newer rollback scripts first, newest first.';
    END IF;
END $$;

-- 0007's job back to the contract function.
DO $$
DECLARE
    v_jobid bigint;
BEGIN
    IF to_regclass('cron.job') IS NULL OR to_regclass('pgsweep.scheduled_job') IS NULL THEN
        RETURN;
    END IF;
    SELECT c.jobid INTO v_jobid FROM cron.job c
      JOIN pgsweep.scheduled_job s ON s.jobid = c.jobid AND s.jobname = c.jobname
     WHERE c.jobname = 'cleanup-expired-tokens' AND c.command = 'CALL pgsweep.sweep();';
    IF v_jobid IS NOT NULL THEN
        PERFORM cron.alter_job(v_jobid, command => 'SELECT cleanup_all_expired_tokens();');
    END IF;
END $$;

-- What engine release 1.0 added.
DROP EVENT TRIGGER IF EXISTS pgsweep_forget_dropped_rules;
DROP FUNCTION IF EXISTS pgsweep.forget_dropped_rules();
DROP VIEW IF EXISTS pgsweep.rules;
DROP FUNCTION IF EXISTS pgsweep.version();
DROP TABLE IF EXISTS pgsweep.release;
DROP FUNCTION IF EXISTS pgsweep.rule_problem(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.instant_expression(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.purge_rule(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.purge_few(pgsweep.expiry_rule, integer);
DROP FUNCTION IF EXISTS pgsweep.purge_range(pgsweep.expiry_rule, text, integer);
DROP FUNCTION IF EXISTS pgsweep.rule_condition(pgsweep.expiry_rule, text, text);
DROP FUNCTION IF EXISTS pgsweep.cutoff_literal(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.remove_rule(regclass, name);
DROP FUNCTION IF EXISTS pgsweep.add_rule(regclass, name, interval, text);
DROP FUNCTION IF EXISTS pgsweep.skip_locked_statement(regclass, text, name, integer);
-- The embedded engine reads a timestamp or date column in the session's TimeZone: say which
-- rules will be read in another zone than they state now.
DO $$
DECLARE
    v_rule record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                              AND attname = 'value_zone' AND NOT attisdropped) THEN
        RETURN;
    END IF;
    FOR v_rule IN
        EXECUTE 'SELECT table_name, column_name, value_zone FROM pgsweep.expiry_rule'
                ' WHERE value_zone IS DISTINCT FROM NULL AND value_zone <> current_setting(''TimeZone'')'
    LOOP
        RAISE WARNING 'pgsweep: rule %.% states zone %; the embedded engine will read it in the session''s TimeZone (here %)',
            v_rule.table_name, v_rule.column_name, v_rule.value_zone, current_setting('TimeZone');
    END LOOP;
END $$;
ALTER TABLE pgsweep.expiry_rule DROP COLUMN IF EXISTS value_zone;

-- The embedded engine's routines, and deck progress, as 0006-0008 left them.
-- pgsweep.pg_cron_unusable_reason: as in 0007.
-- NULL when cron.schedule() can be called from this database; otherwise the reason.
CREATE OR REPLACE FUNCTION pgsweep.pg_cron_unusable_reason()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cron_database text := current_setting('cron.database_name', true);
BEGIN
    IF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron') THEN
        RETURN 'pg_cron is not installed on this server';
    END IF;
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

-- pgsweep.purge_statement: as in 0008.
-- The DELETE of the rows matching p_condition. With p_skip_locked the rows are first taken
-- with FOR UPDATE SKIP LOCKED: rows another transaction holds are left alone, at the price of a
-- second visit to every row and a WAL record for each lock. A function of its own so that
-- EXPLAIN (pgsweep verify, the tests) can inspect exactly the statement a purge runs.
CREATE OR REPLACE FUNCTION pgsweep.purge_statement(
    p_table regclass, p_condition text, p_skip_locked boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_skip_locked
        THEN format('DELETE FROM %1$s WHERE ctid = ANY (ARRAY('
                    'SELECT ctid FROM %1$s WHERE %2$s FOR UPDATE SKIP LOCKED))', p_table, p_condition)
        ELSE format('DELETE FROM %s WHERE %s', p_table, p_condition)
    END
$$;
COMMENT ON FUNCTION pgsweep.purge_statement(regclass, text, boolean) IS
    'The DELETE a purge runs for a condition, with or without SKIP LOCKED (for EXPLAIN)';

-- pgsweep.cutoff_literal: as in 0008.
-- The cutoff of a rule, as 0006 wrote it, now rendered in DateStyle ISO. 0006 rendered it in the
-- caller's DateStyle; under Postgres or SQL style a timestamptz prints with its zone's
-- abbreviation, and abbreviations do not read back uniquely: 'IST' printed for Asia/Kolkata
-- (+05:30) reads back as Israel time (+02), a cutoff 3.5 hours in the future, inside live rows.
-- ISO prints a numeric offset, which every DateStyle reads back exactly. (Timestamp and date
-- columns still take the instant in the caller's TimeZone, as in 0006.)
CREATE OR REPLACE FUNCTION pgsweep.cutoff_literal(p_table regclass, p_column name, p_keep_for interval)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_table, p_column);
    v_instant timestamptz := now() - p_keep_for;
BEGIN
    CASE
        WHEN v_type IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
            RETURN format('%L::%s', v_instant, v_type);
        -- Whole seconds: "ttl < 1000.5" is "ttl < 1001" for an integer ttl, hence ceil.
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            RETURN format('%s::%s', ceil(extract(epoch FROM v_instant))::bigint, v_type);
        WHEN v_type IN ('numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
            RETURN format('%s::%s', extract(epoch FROM v_instant), v_type);
        ELSE
            RAISE EXCEPTION 'column "%" of % has type %, which cannot expire', p_column, p_table, v_type
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use a timestamp, date, or a number of epoch seconds.';
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_literal(regclass, name, interval) IS
    'now() - keep_for as a literal of the column''s type (epoch seconds for numbers)';

-- pgsweep.rule_condition: as in 0008.
-- The garbage of one rule as an SQL condition: column < cutoff, within [p_from, p_before) when
-- given. Bounds are text (a batch hands its end to the next), read back as the column's type.
CREATE OR REPLACE FUNCTION pgsweep.rule_condition(
    p_table regclass, p_column name, p_keep_for interval,
    p_from text DEFAULT NULL, p_before text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type      regtype := pgsweep.column_type(p_table, p_column);
    v_condition text := format('%I < %s', p_column, pgsweep.cutoff_literal(p_table, p_column, p_keep_for));
BEGIN
    IF p_from IS NOT NULL THEN
        v_condition := v_condition || format(' AND %I >= %L::%s', p_column, p_from, v_type);
    END IF;
    IF p_before IS NOT NULL THEN
        v_condition := v_condition || format(' AND %I < %L::%s', p_column, p_before, v_type);
    END IF;
    RETURN v_condition;
END $$;
COMMENT ON FUNCTION pgsweep.rule_condition(regclass, name, interval, text, text) IS
    'The rows a rule marks as garbage, optionally within [from, before), as an SQL condition';

-- pgsweep.purge_batch_statement: as in 0006.
-- One batch, one statement: lock up to p_batch_size garbage rows in index order, skipping rows
-- another transaction holds, and delete them by ctid. p_after (the last value of the previous
-- batch) makes the next batch start where this one ended instead of rescanning rows already
-- deleted in this transaction. A function of its own so that EXPLAIN (pgsweep verify, the
-- tests) can inspect exactly the statement the purge runs.
CREATE OR REPLACE FUNCTION pgsweep.purge_batch_statement(
    p_table regclass, p_column name, p_keep_for interval, p_after text, p_batch_size integer)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_after text := '';
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_after IS NOT NULL THEN
        v_after := format('AND %I >= %L::%s', p_column, p_after, pgsweep.column_type(p_table, p_column));
    END IF;
    RETURN format(
        'WITH gone AS (
             DELETE FROM %1$s
              WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM %1$s
                     WHERE %2$I < %3$s %4$s
                     ORDER BY %2$I
                     LIMIT %5$s
                       FOR UPDATE SKIP LOCKED))
             RETURNING %2$I AS value)
         SELECT count(*)::integer, max(value)::text FROM gone',
        p_table, p_column, pgsweep.cutoff_literal(p_table, p_column, p_keep_for), v_after,
        p_batch_size);
END $$;
COMMENT ON FUNCTION pgsweep.purge_batch_statement(regclass, name, interval, text, integer) IS
    'The DELETE one purge batch runs (for EXPLAIN)';

-- pgsweep.purge_batch: as in 0006.
CREATE OR REPLACE FUNCTION pgsweep.purge_batch(
    p_table regclass, p_column name, p_keep_for interval, p_after text, p_batch_size integer,
    OUT deleted integer, OUT last_value text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* The statement is built by purge_batch_statement, which quotes every identifier (%I,
     * regclass) and value (%L); plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_batch_statement(p_table, p_column, p_keep_for, p_after, p_batch_size)
       INTO deleted, last_value;
END $$;
COMMENT ON FUNCTION pgsweep.purge_batch(regclass, name, interval, text, integer) IS
    'Delete one batch of garbage rows (skipping locked ones); returns the count and the last value';

-- pgsweep.purge_range: as in 0008.
-- One batch of CALL pgsweep.sweep(): the rule's garbage from p_from (the start, when NULL) up to
-- the boundary, deleted in one pass. next_from is where the next batch starts, NULL when the
-- rule has no garbage left. An empty range means every row from p_from to the boundary shares
-- the boundary's value (tokens issued by one statement) or is held: then up to p_batch_size
-- rows of that value go by ctid, skipping held ones. The next batch probes again from the
-- value; once only held rows are left at it, the sweep moves past it.
CREATE OR REPLACE FUNCTION pgsweep.purge_range(
    p_table regclass, p_column name, p_keep_for interval, p_from text, p_batch_size integer,
    OUT deleted bigint, OUT next_from text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp


SET datestyle = 'ISO, YMD'
SET extra_float_digits = 3
AS $$
DECLARE
    v_condition text;
    v_type      regtype;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_condition := pgsweep.rule_condition(p_table, p_column, p_keep_for, p_from);
    /* Built by batch_boundary_statement and rule_condition from quoted parts (%I, %L, regclass).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.batch_boundary_statement(p_table, p_column, v_condition, p_batch_size)
       INTO next_from;
    IF next_from IS NULL THEN
        deleted := pgsweep.delete_rows(p_table, v_condition);
        RETURN;
    END IF;
    deleted := pgsweep.delete_rows(
        p_table, pgsweep.rule_condition(p_table, p_column, p_keep_for, p_from, next_from));
    IF deleted > 0 THEN
        RETURN;
    END IF;
    v_type := pgsweep.column_type(p_table, p_column);
    EXECUTE format('DELETE FROM %1$s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %1$s'
                   ' WHERE %2$s AND %3$I = %4$L::%5$s LIMIT %6$s FOR UPDATE SKIP LOCKED))',
                   p_table, v_condition, p_column, next_from, v_type, p_batch_size);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    IF deleted = 0 THEN
        -- Every row left at this value is held (they wait for the next run): the next value.
        -- (Fewer than a batch but more than none: the next probe finds a range past the value,
        -- or none; moving on already could skip a row whose update committed mid-statement.)
        EXECUTE format('SELECT min(%1$I)::text FROM %2$s WHERE %3$s AND %1$I > %4$L::%5$s',
                       p_column, p_table, v_condition, next_from, v_type)
           INTO next_from;
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.purge_range(regclass, name, interval, text, integer) IS
    'Delete one sweep batch of a rule in one pass; returns the count and where the next starts';

-- pgsweep.purge: as in 0008.
-- Every garbage row of one rule, in the caller's transaction: one DELETE. p_batch_size is
-- checked and otherwise unused since 0008; it stays so that 0006's callers keep working.
CREATE OR REPLACE FUNCTION pgsweep.purge(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0', p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN pgsweep.delete_rows(p_table, pgsweep.rule_condition(p_table, p_column, p_keep_for));
END $$;
COMMENT ON FUNCTION pgsweep.purge(regclass, name, interval, integer) IS
    'Delete every garbage row of one rule with one DELETE, in the caller''s transaction';

-- pgsweep.sweep_table: as in 0006.
-- All rules of one table, in the caller's transaction. A table without rules is an error,
-- never a silent "0 rows".
CREATE OR REPLACE FUNCTION pgsweep.sweep_table(p_table regclass, p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total bigint := 0;
    v_rule  record;
BEGIN
    FOR v_rule IN
        SELECT r.column_name, r.keep_for FROM pgsweep.expiry_rule r
         WHERE r.table_name = p_table ORDER BY r.column_name
    LOOP
        v_total := v_total + pgsweep.purge(p_table, v_rule.column_name, v_rule.keep_for, p_batch_size);
    END LOOP;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_table(regclass, integer) IS
    'Delete the garbage of every rule of a table, in the caller''s transaction';

-- pgsweep.add_rule: as in 0006.
-- Bring a table under the lifecycle: validates the column type and that an index leads with
-- the column (so the purge is index-driven), then records (or updates) the rule.
CREATE OR REPLACE FUNCTION pgsweep.add_rule(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgsweep.cutoff_literal(p_table, p_column, coalesce(p_keep_for, '0'));
    IF NOT EXISTS (
        SELECT FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND a.attname = p_column AND i.indisvalid)
    THEN
        RAISE EXCEPTION 'no valid index on % leads with column "%"', p_table, p_column
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('CREATE INDEX CONCURRENTLY ON %s (%I);', p_table, p_column);
    END IF;
    INSERT INTO pgsweep.expiry_rule (table_name, column_name, keep_for)
    VALUES (p_table, p_column, coalesce(p_keep_for, '0'))
    ON CONFLICT (table_name, column_name) DO UPDATE SET keep_for = excluded.keep_for;
END $$;
COMMENT ON FUNCTION pgsweep.add_rule(regclass, name, interval) IS
    'Register (or update) an expiry rule after checking its column type and index';

-- pgsweep.sweep_on_insert: as in 0006.
-- AFTER INSERT ... FOR EACH STATEMENT: one bounded batch of one rule of the table.
--   TG_ARGV[0]: the rule column to sweep; TG_ARGV[1]: rows per sweep (default 10);
--   TG_ARGV[2]: insert statements of the session that skip the sweep after a short batch
--   (default 50).
-- Only sweep rules whose rows the app never updates again (see README, "Triggers"): SKIP LOCKED
-- keeps the trigger from waiting, and choosing such rows keeps the app from waiting on it.
-- A sweep costs a freshly planned statement even when it finds nothing, about as much as the
-- insert itself (make bench, S4). So a batch that comes back short, meaning the garbage is
-- gone, lets the session's next inserts skip the sweep; a full batch means there is more, and
-- the next insert sweeps again. The countdown is a session setting, transactional like any.
-- SECURITY DEFINER so the app's role needs no grant on pgsweep; it can delete only rows the
-- table's own rule marks as garbage. Errors become warnings: an insert never fails for it.
CREATE OR REPLACE FUNCTION pgsweep.sweep_on_insert()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keep_for interval;
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
    SELECT r.keep_for INTO v_keep_for FROM pgsweep.expiry_rule r
     WHERE r.table_name = TG_RELID AND r.column_name = TG_ARGV[0];
    IF FOUND THEN
        BEGIN
            SELECT b.deleted INTO v_deleted
              FROM pgsweep.purge_batch(TG_RELID, TG_ARGV[0], v_keep_for, NULL, v_rows) AS b;
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

-- pgsweep.sweep: as in 0008.
-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- PostgreSQL forbids a SET search_path clause on a procedure that commits, so this body names
-- everything schema-qualified, operators included (OPERATOR(pg_catalog.=): an unqualified
-- "regclass = regclass" resolves to any exact-match operator planted on the caller's path,
-- which would then run with the caller's rights), and leaves all data work to the pinned
-- functions above.
CREATE OR REPLACE PROCEDURE pgsweep.sweep(
    p_table regclass DEFAULT NULL, p_batch_size integer DEFAULT 5000,
    p_pause interval DEFAULT '0', INOUT deleted bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_rule  record;
    v_batch record;
    v_from  text;
    v_rule_total bigint;
BEGIN
    deleted := 0;
    FOR v_rule IN
        SELECT r.table_name, r.column_name, r.keep_for FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_from := NULL;
        v_rule_total := 0;
        LOOP
            SELECT b.deleted, b.next_from INTO v_batch
              FROM pgsweep.purge_range(v_rule.table_name, v_rule.column_name, v_rule.keep_for,
                                       v_from, p_batch_size) AS b;
            COMMIT;
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
    IF p_table IS NOT NULL AND NOT FOUND THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, one short transaction per batch; CALL outside a transaction block';

-- pgsweep.garbage_counts: as in 0007.
-- How many rows each rule would delete right now. Rules of a table are counted in order, each
-- row once: rule i counts rows matching it and none of the rules before it, so the per-table sum
-- is exactly what sweep_table would delete in this transaction (barring rows others lock), and
-- every count is a range scan of rule i's own index (the earlier rules are only a filter).
CREATE OR REPLACE FUNCTION pgsweep.garbage_counts(p_table regclass DEFAULT NULL)
RETURNS TABLE (table_name regclass, column_name name, garbage bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule    record;
    v_table   regclass;
    v_match   text;
    v_earlier text := '';
BEGIN
    /* Identifiers are quoted with %I or are regclass output; the cutoff is a literal built by
     * cutoff_literal with %L. plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    FOR v_rule IN
        SELECT r.table_name, r.column_name, r.keep_for FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name = p_table
         ORDER BY r.table_name::text, r.column_name
    LOOP
        IF v_table IS DISTINCT FROM v_rule.table_name THEN
            v_table := v_rule.table_name;
            v_earlier := '';
        END IF;
        v_match := format('%I < %s', v_rule.column_name,
                          pgsweep.cutoff_literal(v_rule.table_name, v_rule.column_name, v_rule.keep_for));
        EXECUTE format('SELECT count(*) FROM %s WHERE %s%s', v_rule.table_name, v_match, v_earlier)
           INTO garbage;
        table_name := v_rule.table_name;
        column_name := v_rule.column_name;
        RETURN NEXT;
        v_earlier := v_earlier || format(' AND (%s) IS NOT TRUE', v_match);
    END LOOP;
    IF p_table IS NOT NULL AND v_table IS NULL THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.garbage_counts(regclass) IS
    'Rows each expiry rule would delete now (each row counted once per table), index-driven';

-- pgsweep.deck_progress: as in 0006.
-- Share of a user's decks: the progress figures of each deck in p_deck_ids.
CREATE OR REPLACE FUNCTION pgsweep.deck_progress(p_user_id uuid, p_deck_ids uuid[])
RETURNS TABLE (deck_id uuid, total_cards integer, mastered_cards integer, cards_due_today integer,
               total_practices integer, last_practiced_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.deck_id,
           count(df.flashcard_id)::integer,
           count(ucp.mastered_at)::integer,
           (count(*) FILTER (WHERE ucp.next_review_at <= now()))::integer,
           coalesce(sum(ucp.times_correct + ucp.times_wrong), 0)::integer,
           max(ucp.last_review_at)
      FROM unnest(p_deck_ids) AS d (deck_id)
      LEFT JOIN public.deck_flashcards df ON df.deck_id = d.deck_id
      LEFT JOIN public.user_card_progress ucp
             ON ucp.user_id = p_user_id AND ucp.flashcard_id = df.flashcard_id
     GROUP BY d.deck_id
$$;
COMMENT ON FUNCTION pgsweep.deck_progress(uuid, uuid[]) IS
    'Progress figures of a user''s decks, computed from deck_flashcards and user_card_progress';

-- public.refresh_deck_progress: as in 0006.
CREATE OR REPLACE FUNCTION public.refresh_deck_progress(p_user_id uuid, p_deck_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_user_id IS NULL OR p_deck_id IS NULL THEN
        RAISE EXCEPTION 'refresh_deck_progress(user, deck): user and deck may not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO public.user_deck_progress AS udp (
        user_id, deck_id, total_cards, mastered_cards, cards_due_today,
        total_practices, last_practiced_at, updated_at)
    SELECT p_user_id, p.deck_id, p.total_cards, p.mastered_cards, p.cards_due_today,
           p.total_practices, p.last_practiced_at, now()
      FROM pgsweep.deck_progress(p_user_id, ARRAY[p_deck_id]) AS p
    ON CONFLICT (user_id, deck_id) DO UPDATE
       SET total_cards = excluded.total_cards,
           mastered_cards = excluded.mastered_cards,
           cards_due_today = excluded.cards_due_today,
           total_practices = excluded.total_practices,
           last_practiced_at = excluded.last_practiced_at,
           updated_at = excluded.updated_at;
END $$;
COMMENT ON FUNCTION public.refresh_deck_progress(uuid, uuid) IS
    'Recompute one user''s progress row for one deck (upsert)';

-- public.refresh_stale_deck_progress: as in 0006.
CREATE OR REPLACE FUNCTION public.refresh_stale_deck_progress(p_user_id uuid)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_refreshed integer;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'refresh_stale_deck_progress(user): the user may not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- One statement for all stale decks (not a call per deck).
    UPDATE public.user_deck_progress udp
       SET total_cards = p.total_cards,
           mastered_cards = p.mastered_cards,
           cards_due_today = p.cards_due_today,
           total_practices = p.total_practices,
           last_practiced_at = p.last_practiced_at,
           updated_at = now()
      FROM pgsweep.deck_progress(
               p_user_id,
               ARRAY(SELECT s.deck_id FROM public.user_deck_progress s
                      WHERE s.user_id = p_user_id
                        AND (s.updated_at IS NULL OR s.updated_at < now() - interval '1 hour'))) AS p
     WHERE udp.user_id = p_user_id AND udp.deck_id = p.deck_id;
    GET DIAGNOSTICS v_refreshed = ROW_COUNT;
    RETURN v_refreshed;
END $$;
COMMENT ON FUNCTION public.refresh_stale_deck_progress(uuid) IS
    'Recompute the user''s deck-progress rows older than one hour (or never set); returns how many';


DROP FUNCTION IF EXISTS public.deck_progress(uuid, uuid[]);

-- As 0006: nothing that deletes is executable by PUBLIC; deck_progress is.
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA pgsweep FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgsweep.deck_progress(uuid, uuid[]) TO PUBLIC;

-- Step the recorded version back to 0008 (under Alembic, Alembic does it).
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0008' WHERE version_num = '0009';
    END IF;
END $$;

COMMIT;
