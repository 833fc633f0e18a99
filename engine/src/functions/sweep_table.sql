-- All rules of one table, in the caller's transaction, one DELETE per rule. A table without
-- rules is an error, never a silent "0 rows"; a rule that cannot run (rule_problem) is skipped
-- with a warning. p_batch_size is checked and otherwise unused (each rule is one DELETE); it
-- stays so that callers of the embedded engine keep working. The run is recorded in the
-- caller's transaction ('function'; pgsweep.run): it commits with the deletes, or vanishes with
-- them when the caller rolls back (an error included).
CREATE OR REPLACE FUNCTION pgsweep.sweep_table(p_table regclass, p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total bigint := 0;
    v_rule  pgsweep.expiry_rule;
    v_deleted bigint;
    v_run_id bigint;
    v_start timestamptz;
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
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r WHERE r.table_name = p_table ORDER BY r.column_name
    LOOP
        IF pgsweep.rule_problem(v_rule) IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                pgsweep.rule_problem(v_rule);
            PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, 0, 0,
                                       p_error => 'skipped: ' || pgsweep.rule_problem(v_rule));
            CONTINUE;
        END IF;
        v_start := clock_timestamp();
        -- Whole partitions past the cutoff first; the parent's lock lasts until the caller commits.
        v_deleted := (SELECT d.rows FROM pgsweep.drop_expired_partitions(v_rule) d)
                     + pgsweep.purge_rule(v_rule);
        PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, v_deleted, 1,
                                   p_since => v_start,
                                   p_archived => CASE WHEN v_rule.archive_to IS NOT NULL
                                                      THEN v_deleted ELSE 0 END);
        v_total := v_total + v_deleted;
    END LOOP;
    PERFORM pgsweep.run_end(v_run_id, 'succeeded');
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_table(regclass, integer) IS
    'Delete the garbage of every rule of a table, in the caller''s transaction';
