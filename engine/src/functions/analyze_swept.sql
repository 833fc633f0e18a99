-- ANALYZE the tables a closed run deleted a large share of (pgsweep.run_close's answer), so the
-- planner stops costing rows that are gone. SECURITY INVOKER on purpose: with the caller's
-- rights (a table the caller may not analyze is skipped with ANALYZE's own warning), never
-- with the engine owner's. Called once the run's status is committed (CALL pgsweep.sweep()
-- commits it first), so a cancel during an ANALYZE leaves no run open. A table whose lock is
-- not granted within 100 ms (a VACUUM or an index build holds it) is left to autovacuum, so
-- that a caller holding the table's lock never makes the app wait on it.
CREATE OR REPLACE FUNCTION pgsweep.analyze_swept(p_tables regclass[], p_rows numeric[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_tables), 0) LOOP
        RAISE NOTICE 'pgsweep: % rows deleted from %: analyzing it', p_rows[i], p_tables[i];
        BEGIN
            EXECUTE format('ANALYZE %s', p_tables[i]);
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pgsweep: % not analyzed: its lock was not granted at once', p_tables[i]
                USING HINT = 'Autovacuum analyzes it, or run ANALYZE yourself.';
        END;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.analyze_swept(regclass[], numeric[]) IS
    'ANALYZE, with the caller''s rights, the tables a closed run deleted a large share of';
