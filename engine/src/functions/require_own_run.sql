-- The history is written only by the session that began a run: run_record and run_end are
-- SECURITY DEFINER, so without this check any role allowed to sweep could close or inflate
-- another session's run (or have run_end analyze tables with the engine owner's rights).
CREATE OR REPLACE FUNCTION pgsweep.require_own_run(p_run_id bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pgsweep.run r
                    WHERE r.run_id = p_run_id AND r.pid = pg_backend_pid()) THEN
        RAISE EXCEPTION 'pgsweep: run % was not begun by this session', p_run_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.require_own_run(bigint) IS
    'Refuse to record into a run another session began';
