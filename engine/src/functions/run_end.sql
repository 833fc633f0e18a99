-- Close a run: its status ('succeeded', 'failed'), error, end time; and ANALYZE each table it deleted a large share of
-- (analyze_share() of pg_class.reltuples, or any rows of a table never analyzed), so the
-- planner stops costing rows that are gone. ANALYZE reads a sample (300 x
-- default_statistics_target rows), not the table; it runs in this transaction, also inside a
-- caller's transaction (unlike VACUUM). Never VACUUM FULL: autovacuum reclaims the space.
-- A table the caller may not analyze is skipped with ANALYZE's own warning; one whose lock is
-- not granted within 100 ms (a VACUUM or an index build holds it) is left to autovacuum, so
-- that a caller holding the table's lock (sweep_table after dropping partitions) never makes
-- the app wait on it. Only the session that began a run may end it.
CREATE OR REPLACE FUNCTION pgsweep.run_end(
    p_run_id bigint, p_status text DEFAULT 'succeeded', p_error text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    v_table record;
BEGIN
    PERFORM pgsweep.require_own_run(p_run_id);
    UPDATE pgsweep.run r
       SET status = p_status, error = p_error, ended_at = clock_timestamp()
     WHERE r.run_id = p_run_id;
    FOR v_table IN
        SELECT t.oid::regclass AS rel, t.deleted
          FROM (SELECT to_regclass(rr.table_name) AS oid, sum(rr.rows_deleted) AS deleted
                  FROM pgsweep.run_rule rr WHERE rr.run_id = p_run_id
                 GROUP BY rr.table_name) t
          JOIN pg_class c ON c.oid = t.oid
         WHERE t.deleted > 0
           AND (c.reltuples < 0 OR t.deleted >= pgsweep.analyze_share() * c.reltuples)
    LOOP
        RAISE NOTICE 'pgsweep: % rows deleted from %: analyzing it', v_table.deleted, v_table.rel;
        BEGIN
            EXECUTE format('ANALYZE %s', v_table.rel);
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pgsweep: % not analyzed: its lock was not granted at once', v_table.rel
                USING HINT = 'Autovacuum analyzes it, or run ANALYZE yourself.';
        END;
    END LOOP;
    PERFORM pg_advisory_unlock(1886614391, (p_run_id % 2147483648)::integer)
      FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.classid = 1886614391::oid
       AND l.objid = (p_run_id % 2147483648)::integer::oid AND l.objsubid = 2;
END $$;
COMMENT ON FUNCTION pgsweep.run_end(bigint, text, text) IS
    'Close a run with its status; ANALYZE the tables it deleted a large share of';
