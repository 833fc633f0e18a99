-- All rules of one table, in the caller's transaction, one DELETE per rule (pgsweep.sweep_step
-- with no batch size), in pgsweep.run_order. A table without rules is an error, never a silent
-- "0 rows". A rule that cannot run is skipped with a warning; an orphan rule is left to the
-- batched sweep (its parent's lock would last until the caller commits); a rule that fails is
-- undone alone, said in a WARNING and recorded, and the other rules are still swept: the total
-- is of the rules that ran. A cancel is raised again. p_batch_size is checked and otherwise
-- unused (each rule is one DELETE); it stays so that callers of the embedded engine keep
-- working. The run is recorded in the caller's transaction ('function'; pgsweep.run): it
-- commits with the deletes, or vanishes with them when the caller rolls back.
CREATE OR REPLACE FUNCTION pgsweep.sweep_table(p_table regclass, p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total    bigint := 0;
    v_rule     record;
    v_step     record;
    v_run_id   bigint;
    v_failures text[] := '{}'::text[];
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM pgsweep.expiry_rule r WHERE r.table_name = p_table) THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    v_run_id := pgsweep.run_begin('function', false);
    FOR v_rule IN SELECT o.table_name, o.column_name FROM pgsweep.run_order(p_table) o LOOP
        -- An assignment, not SELECT ... FROM: no function scan to set up per rule.
        v_step := pgsweep.sweep_step(v_run_id, v_rule.table_name, v_rule.column_name, NULL, NULL);
        IF v_step.outcome = 'cancelled' THEN
            RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = v_step.message;
        ELSIF v_step.outcome = 'failed' THEN
            v_failures := v_failures || format('%s (%s): %s', v_rule.table_name,
                                               v_rule.column_name, v_step.message);
        END IF;
        v_total := v_total + v_step.deleted + v_step.removed_whole;
    END LOOP;
    IF cardinality(v_failures) > 0 THEN
        PERFORM pgsweep.run_end(v_run_id, 'failed', format('%s rule(s) failed: %s',
            cardinality(v_failures), array_to_string(v_failures, '; ')));
    ELSE
        PERFORM pgsweep.run_end(v_run_id, 'succeeded');
    END IF;
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_table(regclass, integer) IS
    'Delete the garbage of every rule of a table, in the caller''s transaction';
