-- The history is written only by the session that began a run: run_record and run_end are
-- SECURITY DEFINER, so without this check any role allowed to sweep could close or inflate
-- another session's run (or have run_end analyze tables with the engine owner's rights).
CREATE OR REPLACE FUNCTION pgsweep.require_own_run(p_run_id bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- This very session: its pid and, where the run recorded it, its backend_start (a later
    -- session given the same pid is another session). Still open: a run once closed is history,
    -- never re-closed or added to (1.3 let a role re-close its run with any status and text).
    IF NOT EXISTS (SELECT FROM pgsweep.run r
                    WHERE r.run_id = p_run_id AND r.pid = pg_backend_pid()
                      AND (r.backend_start IS NULL
                           OR r.backend_start = (SELECT a.backend_start FROM pg_stat_activity a
                                                  WHERE a.pid = pg_backend_pid()))) THEN
        RAISE EXCEPTION 'pgsweep: run % was not begun by this session', p_run_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT FROM pgsweep.run r WHERE r.run_id = p_run_id AND r.status = 'running') THEN
        RAISE EXCEPTION 'pgsweep: run % is closed already', p_run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.require_own_run(bigint) IS
    'Refuse to record into a run another session began';
