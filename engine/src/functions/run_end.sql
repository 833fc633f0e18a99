-- Close a run (run_close: its status 'succeeded', 'failed' or 'stopped', error, end time), then
-- ANALYZE each table it deleted a large share of, so the planner stops costing rows that are
-- gone. This function is SECURITY INVOKER on purpose: the ANALYZE runs with the caller's rights
-- (a table the caller may not analyze is skipped with ANALYZE's own warning), never with the
-- engine owner's, whatever table names a run recorded. ANALYZE reads a sample (300 x
-- default_statistics_target rows), not the table; it runs in this transaction, also inside a
-- caller's transaction (unlike VACUUM). Never VACUUM FULL: autovacuum reclaims the space. A
-- table whose lock is not granted within 100 ms (a VACUUM or an index build holds it) is left to
-- autovacuum, so that a caller holding the table's lock (sweep_table after dropping partitions)
-- never makes the app wait on it.
CREATE OR REPLACE FUNCTION pgsweep.run_end(
    p_run_id bigint, p_status text DEFAULT 'succeeded', p_error text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    v_table record;
BEGIN
    FOR v_table IN SELECT c.table_name, c.rows_deleted FROM pgsweep.run_close(p_run_id, p_status, p_error) c
    LOOP
        RAISE NOTICE 'pgsweep: % rows deleted from %: analyzing it', v_table.rows_deleted,
            v_table.table_name;
        BEGIN
            EXECUTE format('ANALYZE %s', v_table.table_name);
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pgsweep: % not analyzed: its lock was not granted at once',
                v_table.table_name
                USING HINT = 'Autovacuum analyzes it, or run ANALYZE yourself.';
        END;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.run_end(bigint, text, text) IS
    'Close a run with its status; ANALYZE, with the caller''s rights, the tables it deleted a large share of';
