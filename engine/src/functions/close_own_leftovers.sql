-- What a cancel (pg_cancel_backend, statement_timeout) that struck CALL pgsweep.sweep() outside
-- its exception handlers left to its own session: right after a COMMIT, or between a step and
-- the next (PostgreSQL forbids a handler around a COMMIT, so no procedure can catch those). Its
-- run is still 'running' and holds the run's advisory lock, and the rule it was on its rule's
-- lock, so other sessions skip that rule for as long as this session lives (a pooled
-- connection: days). run_begin calls this first, so the session's next run closes them: each
-- such run of this very session (its pid and backend_start) becomes 'interrupted' with the
-- reason, its lock released, and every rule lock this session still holds is released (no run
-- of its own is live at a run_begin of another statement: a session runs one run at a time, and
-- a call nested in a live run's statement finds that run's mark, pgsweep.open_run_mark, and
-- closes nothing). Returns the runs closed.
CREATE OR REPLACE FUNCTION pgsweep.close_own_leftovers()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_db     oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    v_run    record;
    v_lock   record;
    v_closed integer := 0;
BEGIN
    -- The session's open run is live in this very statement (a function call nested in its
    -- batch, through an app's trigger): nothing of this session is a leftover now.
    IF current_setting('pgsweep.open_run', true) LIKE '%@%'
       AND split_part(current_setting('pgsweep.open_run', true), '@', 2)
           = split_part(pgsweep.open_run_mark(0), '@', 2) THEN
        RETURN 0;
    END IF;
    PERFORM set_config('pgsweep.open_run', '', false);
    FOR v_run IN
        UPDATE pgsweep.run r
           SET status = 'interrupted',
               ended_at = coalesce((SELECT max(rr.ended_at) FROM pgsweep.run_rule rr
                                     WHERE rr.run_id = r.run_id), r.started_at),
               error = 'cut short in its session outside the engine''s handlers (a cancel or'
                       ' statement_timeout right after a commit); closed by the session''s next run'
         WHERE r.status = 'running' AND r.pid = pg_backend_pid()
           AND r.backend_start IS NOT DISTINCT FROM (SELECT a.backend_start FROM pg_stat_activity a
                                                      WHERE a.pid = pg_backend_pid())
        RETURNING r.run_id
    LOOP
        v_closed := v_closed + 1;
        WHILE pgsweep.run_alive(v_run.run_id, pg_backend_pid()) LOOP
            PERFORM pg_advisory_unlock(1886614391, (v_run.run_id % 2147483648)::integer);
        END LOOP;
    END LOOP;
    -- A session lock taken n times is held until n unlocks: one row in pg_locks all along.
    FOR v_lock IN
        SELECT k.classid, k.objid
          FROM pgsweep.expiry_rule e, pgsweep.rule_lock_keys(e.table_name, e.column_name) k
         WHERE EXISTS (SELECT FROM pg_locks l
                        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                          AND l.pid = pg_backend_pid() AND l.database = v_db
                          AND l.classid = k.classid::oid AND l.objid = k.objid::oid)
    LOOP
        LOOP
            PERFORM pg_advisory_unlock(v_lock.classid, v_lock.objid);
            EXIT WHEN NOT EXISTS (SELECT FROM pg_locks l
                                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                                     AND l.pid = pg_backend_pid() AND l.database = v_db
                                     AND l.classid = v_lock.classid::oid
                                     AND l.objid = v_lock.objid::oid);
        END LOOP;
    END LOOP;
    RETURN v_closed;
END $$;
COMMENT ON FUNCTION pgsweep.close_own_leftovers() IS
    'Close the runs this session left running and release the rule locks it still holds';
