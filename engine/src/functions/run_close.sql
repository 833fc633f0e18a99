-- The part of run_end that writes the history, with the engine's rights (SECURITY DEFINER, like
-- run_begin): the run's status ('succeeded', 'failed', 'stopped'), error and end time, the
-- release of a committing run's advisory lock; returns the tables the run deleted a large share
-- of (analyze_share() of pg_class.reltuples, or any rows of a table never analyzed), which
-- run_end then ANALYZEs with the caller's own rights, never these. A pending run (run_begin with
-- p_commits false) that succeeded with nothing written ends as one row of pgsweep.idle_run.
-- Only the session that began a run may end it.
CREATE OR REPLACE FUNCTION pgsweep.run_close(p_run_id bigint, p_status text, p_error text)
RETURNS TABLE (table_name regclass, rows_deleted numeric)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state jsonb := pgsweep.pending_run();
    v_pending boolean := (v_state ->> 'run_id')::bigint IS NOT DISTINCT FROM p_run_id;
BEGIN
    IF v_pending THEN
        PERFORM set_config('pgsweep.pending_run', '', true);
        IF NOT (v_state ->> 'written')::boolean THEN
            IF p_status = 'succeeded' AND p_error IS NULL THEN
                -- run_record keeps one entry per rule: no grouping here.
                INSERT INTO pgsweep.idle_run
                       (run_id, started_at, invoked_by, table_names, column_names, batches)
                SELECT p_run_id, (v_state ->> 'started_at')::timestamptz, v_state ->> 'invoked_by',
                       coalesce(array_agg(e.table_name), '{}'),
                       coalesce(array_agg(e.column_name), '{}'),
                       coalesce(array_agg(e.batches), '{}')
                  FROM jsonb_to_recordset(v_state -> 'rules')
                           AS e(table_name text, column_name name, batches bigint);
                -- A database swept only by an app's calls that mostly find nothing still has its
                -- history tidied: one idle run in 4096 does it (a few ms, so about a
                -- microsecond per call), where a deleting call would do it one time in 64.
                IF p_run_id % 4096 = 0 AND pg_try_advisory_xact_lock(1886614391, 0) THEN
                    PERFORM pgsweep.run_housekeeping();
                END IF;
                RETURN;
            END IF;
            PERFORM pgsweep.run_write_pending(v_state);
            PERFORM set_config('pgsweep.pending_run', '', true);
        END IF;
    END IF;
    PERFORM pgsweep.require_own_run(p_run_id);
    IF v_pending AND p_run_id % 64 = 0 AND pg_try_advisory_xact_lock(1886614391, 0) THEN
        -- One written in-transaction run in 64 tidies the history (committing runs do at
        -- run_begin), so that a database swept only by function calls is tidied too: by a call
        -- that deleted (and wrote anyway), never by one that deleted nothing, and at its end,
        -- outside every rule's own step.
        PERFORM pgsweep.run_housekeeping();
    END IF;
    UPDATE pgsweep.run r
       SET status = p_status, error = p_error, ended_at = clock_timestamp()
     WHERE r.run_id = p_run_id;
    -- Only a committing run holds the lock (a pending run never took it): no pg_locks look-up
    -- for the others.
    IF NOT v_pending THEN
        PERFORM pg_advisory_unlock(1886614391, (p_run_id % 2147483648)::integer)
          FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
           AND l.classid = 1886614391::oid
           AND l.objid = (p_run_id % 2147483648)::integer::oid AND l.objsubid = 2;
    END IF;
    RETURN QUERY
    SELECT t.oid::regclass, t.deleted
      FROM (SELECT to_regclass(rr.table_name) AS oid, sum(rr.rows_deleted) AS deleted
              FROM pgsweep.run_rule rr WHERE rr.run_id = p_run_id
             GROUP BY rr.table_name) t
      JOIN pg_class c ON c.oid = t.oid
     WHERE t.deleted > 0
       AND (c.reltuples < 0 OR t.deleted >= pgsweep.analyze_share() * c.reltuples);
END $$;
COMMENT ON FUNCTION pgsweep.run_close(bigint, text, text) IS
    'Close a run with its status; return the tables it deleted a large share of';
