-- 0008 down: puts back 0006's batched purge (pgsweep.purge in 1,000-row SKIP LOCKED batches,
-- pgsweep.sweep with 1,000-row batches) and 0006's cutoff_literal (rendered in the caller's
-- DateStyle, see the up script), and drops the functions 0008 added. No table row is
-- touched.
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0008_single_pass_purge_down.sql
-- Alembic runs this same file for revision 0008 (downgrade). Safe to run again.
-- A rollback script exists to remove what its revision added.
-- squawk-ignore-file ban-drop-function
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

-- 0006's definitions, word for word.
-- The cutoff of a rule as an SQL literal of the column's own type, so the planner sees a
-- constant it can match against the column's index.
CREATE OR REPLACE FUNCTION pgsweep.cutoff_literal(p_table regclass, p_column name, p_keep_for interval)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
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

-- Every batch of one rule, inside the caller's transaction. Stops when a batch comes back short:
-- the index range is exhausted (locked rows are left for the next run).
CREATE OR REPLACE FUNCTION pgsweep.purge(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0', p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total bigint := 0;
    v_after text;
    v_batch record;
BEGIN
    LOOP
        SELECT b.deleted, b.last_value INTO v_batch
          FROM pgsweep.purge_batch(p_table, p_column, p_keep_for, v_after, p_batch_size) AS b;
        v_total := v_total + v_batch.deleted;
        EXIT WHEN v_batch.deleted < p_batch_size;
        v_after := v_batch.last_value;
    END LOOP;
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.purge(regclass, name, interval, integer) IS
    'Delete every garbage row of one rule in batches, in the caller''s transaction';

-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- PostgreSQL forbids a SET search_path clause on a procedure that commits, so this body names
-- everything schema-qualified, operators included (OPERATOR(pg_catalog.=): an unqualified
-- "regclass = regclass" resolves to any exact-match operator planted on the caller's path,
-- which would then run with the caller's rights), and leaves all data work to the pinned
-- functions above.
CREATE OR REPLACE PROCEDURE pgsweep.sweep(
    p_table regclass DEFAULT NULL, p_batch_size integer DEFAULT 1000,
    p_pause interval DEFAULT '0', INOUT deleted bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_rule  record;
    v_batch record;
    v_after text;
    v_rule_total bigint;
BEGIN
    deleted := 0;
    FOR v_rule IN
        SELECT r.table_name, r.column_name, r.keep_for FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_after := NULL;
        v_rule_total := 0;
        LOOP
            SELECT b.deleted, b.last_value INTO v_batch
              FROM pgsweep.purge_batch(v_rule.table_name, v_rule.column_name, v_rule.keep_for,
                                       v_after, p_batch_size) AS b;
            COMMIT;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_batch.deleted;
            EXIT WHEN v_batch.deleted OPERATOR(pg_catalog.<) p_batch_size;
            v_after := v_batch.last_value;
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

DROP FUNCTION IF EXISTS pgsweep.purge_range(regclass, name, interval, text, integer);
DROP FUNCTION IF EXISTS pgsweep.batch_boundary_statement(regclass, name, text, integer);
DROP FUNCTION IF EXISTS pgsweep.delete_rows(regclass, text);
DROP FUNCTION IF EXISTS pgsweep.delete_rows_waiting_briefly(regclass, text);
DROP FUNCTION IF EXISTS pgsweep.purge_statement(regclass, text, boolean);
DROP FUNCTION IF EXISTS pgsweep.rule_condition(regclass, name, interval, text, text);

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback"):
-- refuse while a newer revision is recorded, else step the recorded version back to 0007.
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF EXISTS (SELECT FROM alembic_version WHERE version_num > '0008') THEN
            RAISE EXCEPTION 'alembic_version records a revision newer than 0008'
                USING HINT = 'Run the newer rollback scripts first, newest first.';
        END IF;
        UPDATE alembic_version SET version_num = '0007' WHERE version_num = '0008';
    END IF;
END $$;

COMMIT;
