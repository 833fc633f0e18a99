-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- A rule that cannot run (rule_problem) is skipped with a warning; the others go on.
-- The run is recorded (pgsweep.run, docs/observability.md): its row is committed first, each
-- batch adds its counts in its own transaction, and the run ends 'succeeded', or 'failed' with
-- the error (recorded and committed, then raised again to the caller); a run killed mid-way is
-- later shown 'interrupted'. v_pauses and v_paused_for count the pauses between batches.
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
    v_run_id bigint;
    v_pauses integer := 0;
    v_paused_for interval := '0'::pg_catalog.interval;
    v_pauses_recorded integer := 0;
    v_paused_for_recorded interval := '0'::pg_catalog.interval;
    v_batch_start timestamptz;
    v_error text;
    v_state text;
    v_detail text;
    v_hint text;
BEGIN
    deleted := 0;
    -- As sweep_table: a named table without rules is an error, never a silent "0 rows".
    IF p_table IS NOT NULL AND NOT EXISTS (
            SELECT FROM pgsweep.expiry_rule r WHERE r.table_name OPERATOR(pg_catalog.=) p_table) THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    v_run_id := pgsweep.run_begin('procedure');
    COMMIT;
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_problem := pgsweep.rule_problem(v_rule);
        IF v_problem IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                v_problem;
            PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, 0, 0,
                                       p_error => 'skipped: ' OPERATOR(pg_catalog.||) v_problem);
            COMMIT;
            CONTINUE;
        END IF;
        v_from := NULL;
        v_rule_total := 0;
        LOOP
            v_batch_start := pg_catalog.clock_timestamp();
            -- The batch and its record in one subtransaction: an error undoes the batch and is
            -- recorded (after the block, where COMMIT is allowed) before it is raised again.
            BEGIN
                SELECT b.deleted, b.next_from INTO v_batch
                  FROM pgsweep.purge_range(v_rule, v_from, p_batch_size) AS b;
                PERFORM pgsweep.run_record(
                    v_run_id, v_rule.table_name, v_rule.column_name, v_batch.deleted, 1,
                    v_pauses OPERATOR(pg_catalog.-) v_pauses_recorded,
                    v_paused_for OPERATOR(pg_catalog.-) v_paused_for_recorded, v_batch_start);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT,
                                        v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
            END;
            IF v_error IS NOT NULL THEN
                PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, 0, 0,
                                           p_error => v_error);
                PERFORM pgsweep.run_end(v_run_id, 'failed',
                    pg_catalog.format('%s (%s): %s', v_rule.table_name, v_rule.column_name, v_error));
                COMMIT;
                -- Raised again as it came (an empty DETAIL or HINT would still be printed).
                IF v_detail OPERATOR(pg_catalog.<>) '' AND v_hint OPERATOR(pg_catalog.<>) '' THEN
                    RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_error,
                        DETAIL = v_detail, HINT = v_hint;
                ELSIF v_detail OPERATOR(pg_catalog.<>) '' THEN
                    RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_error, DETAIL = v_detail;
                ELSIF v_hint OPERATOR(pg_catalog.<>) '' THEN
                    RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_error, HINT = v_hint;
                END IF;
                RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_error;
            END IF;
            v_pauses_recorded := v_pauses;
            v_paused_for_recorded := v_paused_for;
            COMMIT;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_batch.deleted;
            EXIT WHEN v_batch.next_from IS NULL;
            v_from := v_batch.next_from;
            IF p_pause OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                PERFORM pg_catalog.pg_sleep_for(p_pause);
                v_pauses := v_pauses OPERATOR(pg_catalog.+) 1;
                v_paused_for := v_paused_for OPERATOR(pg_catalog.+) p_pause;
            END IF;
        END LOOP;
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name, v_rule.column_name;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    PERFORM pgsweep.run_end(v_run_id, 'succeeded');
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, one short transaction per batch, recorded in pgsweep.run; CALL outside a transaction block';
