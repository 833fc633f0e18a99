-- 0008_single_pass_purge: delete garbage in one pass over its rows, without a lock pass first.
--   * cleanup_expired_*() and cleanup_all_expired_tokens() run in one transaction, where batches
--     bound nothing (every deleted row stays locked until commit). Each expiry rule is now one
--     DELETE, planned with its cutoff: the rule's index for a few rows, a sequential scan for a
--     backlog, as the planner judges.
--   * CALL pgsweep.sweep() commits each batch. A batch is now a range of the rule's column: an
--     index-only probe finds where the batch ends, one DELETE removes the range. 5,000 rows per
--     batch by default (was 1,000: the fixed cost of a batch dominated).
--   * The cutoff is rendered in DateStyle ISO: 0006 rendered it in the caller's DateStyle, which
--     for some time zones read back hours off (see cutoff_literal below).
--   * A DELETE that meets a row another transaction holds waits at most 20 ms; then that pass is
--     undone and the same rows are taken with FOR UPDATE SKIP LOCKED, as 0006 always did. Held
--     rows are left for the next run, and in a lock cycle with the app this side almost always
--     gives way (README, "Triggers", on the 20 ms window where it does not).
-- The opportunistic insert triggers keep 0006's small SKIP LOCKED batches: an insert never waits.
-- Why and by how much: README, "Performance" (make bench, S2 and S3).
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0008_single_pass_purge.sql
-- Alembic runs this same file for revision 0008. Safe to run again.
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

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

-- The single-pass DELETE, allowed to wait 20 ms for a row lock (well under deadlock_timeout,
-- so in a lock cycle it nearly always times out before the other side's deadlock check runs:
-- only an app that had already waited 980 ms to 1 s is checked first). The SET clause
-- ends with the function, error or not.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows_waiting_briefly(p_table regclass, p_condition text)
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
    EXECUTE pgsweep.purge_statement(p_table, p_condition, false);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows_waiting_briefly(regclass, text) IS
    'DELETE the matching rows in one pass, waiting at most 20 ms for any lock';

-- Delete the rows matching p_condition without making anyone wait for long: one pass when no
-- row is held (the common case), else SKIP LOCKED. The exception block is one subtransaction
-- per call, and a purge makes one call per rule or per committed batch, far below the 64 a
-- transaction may have before every snapshot in the cluster gets slower.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows(p_table regclass, p_condition text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    BEGIN
        RETURN pgsweep.delete_rows_waiting_briefly(p_table, p_condition);
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        -- That pass is undone; take what is not held now.
        NULL;
    END;
    /* As in delete_rows_waiting_briefly.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_statement(p_table, p_condition, true);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows(regclass, text) IS
    'DELETE the matching rows in one pass, or with SKIP LOCKED when a row is held';

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
-- next_from is a value of the column as text, read back by the next batch: render it in a form
-- that reads back exactly whatever the caller's settings (see cutoff_literal).
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

-- As 0006: nothing that deletes is executable by PUBLIC (README, "Roles").
REVOKE EXECUTE ON FUNCTION pgsweep.rule_condition(regclass, name, interval, text, text),
                           pgsweep.purge_statement(regclass, text, boolean),
                           pgsweep.delete_rows_waiting_briefly(regclass, text),
                           pgsweep.delete_rows(regclass, text),
                           pgsweep.batch_boundary_statement(regclass, name, text, integer),
                           pgsweep.purge_range(regclass, name, interval, text, integer)
    FROM PUBLIC;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0008' WHERE version_num = '0007';
    END IF;
END $$;

COMMIT;
