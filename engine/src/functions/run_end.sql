-- Close a run (run_close: its status 'succeeded', 'failed' or 'stopped', error, end time), then
-- ANALYZE each table it deleted a large share of (pgsweep.analyze_swept, with the caller's
-- rights), so the planner stops costing rows that are gone. ANALYZE reads a sample (300 x
-- default_statistics_target rows), not the table; it runs in this transaction, also inside a
-- caller's transaction (unlike VACUUM). Never VACUUM FULL: autovacuum reclaims the space.
-- CALL pgsweep.sweep() does not call this: it commits the run's close before it analyzes, so
-- that a cancel during an ANALYZE cannot leave the run open. This function is SECURITY INVOKER
-- on purpose (analyze_swept), and its lock_timeout bounds only what it waits for itself.
CREATE OR REPLACE FUNCTION pgsweep.run_end(
    p_run_id bigint, p_status text DEFAULT 'succeeded', p_error text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    v_tables regclass[];
    v_rows   numeric[];
BEGIN
    SELECT array_agg(c.table_name), array_agg(c.rows_deleted) INTO v_tables, v_rows
      FROM pgsweep.run_close(p_run_id, p_status, p_error) c;
    -- The run run_begin flagged as this session's open one is closed (close_own_leftovers).
    IF split_part(current_setting('pgsweep.open_run', true), '@', 1) = p_run_id::text THEN
        PERFORM set_config('pgsweep.open_run', '', false);
    END IF;
    IF v_tables IS NOT NULL THEN
        PERFORM pgsweep.analyze_swept(v_tables, v_rows);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.run_end(bigint, text, text) IS
    'Close a run with its status; ANALYZE, with the caller''s rights, the tables it deleted a large share of';
