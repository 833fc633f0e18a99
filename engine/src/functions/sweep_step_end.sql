-- The end of a rule's part in a run, whatever ended it (pgsweep.sweep_step): said to the caller
-- (a WARNING for a rule skipped or failed, a NOTICE when it gave way), recorded in the run when
-- it did not finish ('skipped: ', 'failed: ', 'gave way: ' and the reason, so that status and
-- health name it), and the rule's advisory lock released when this session holds it (p_locked:
-- a batched run; sweep_table takes none), so that no outcome leaves the rule to this session.
CREATE OR REPLACE FUNCTION pgsweep.sweep_step_end(
    p_run_id bigint, p_table regclass, p_column name, p_locked boolean, p_outcome text,
    p_message text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_outcome IN ('skipped', 'failed') THEN
        RAISE WARNING 'pgsweep: rule %.% %: %', p_table, p_column, p_outcome, p_message;
    ELSIF p_outcome = 'gave_way' THEN
        RAISE NOTICE 'pgsweep: rule %.% gave way (the rest is left for the next run): %',
            p_table, p_column, p_message;
    ELSIF p_outcome = 'cancelled' THEN
        RAISE WARNING 'pgsweep: rule %.% cancelled: %', p_table, p_column, p_message;
    END IF;
    IF p_outcome <> 'done' AND p_message IS NOT NULL AND p_run_id IS NOT NULL THEN
        PERFORM pgsweep.run_record(p_run_id, p_table, p_column, 0, 0,
            p_error => CASE WHEN p_outcome = 'failed' THEN p_message
                            ELSE replace(p_outcome, '_', ' ') || ': ' || p_message END);
    END IF;
    IF p_locked AND pgsweep.rule_lock_holder(p_table, p_column) = pg_backend_pid() THEN
        PERFORM pgsweep.unlock_rule(p_table, p_column);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_step_end(bigint, regclass, name, boolean, text, text) IS
    'Say, record and release the end of a rule''s part in a run (pgsweep.sweep_step)';
