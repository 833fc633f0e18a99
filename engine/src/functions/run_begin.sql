-- Start recording a cleanup run; returns its run_id for run_record and run_end. p_invoked_by is
-- what the caller is ('procedure', 'function', 'cli'); a pg_cron session records 'scheduler',
-- and a session may state its own with the setting pgsweep.invoked_by (the pgsweep command sets
-- 'cli'). A run that commits before it ends (p_commits: the procedure, client-driven batches)
-- holds a session advisory lock until run_end, so that once its session is gone it shows as
-- 'interrupted' (run_alive). Before the run, cheap housekeeping (skipped when another run_begin
-- is doing it): mark interrupted runs, prune history past history_retention(), fold the insert
-- trigger's sweeps into their day's 'trigger' run.
-- run_begin, run_record and run_end are SECURITY DEFINER: a role allowed to sweep (EXECUTE on
-- the engine's routines, DELETE on its tables) records its runs without any right on the history
-- tables, which only the engine writes; the run names the session's role (session_user).
CREATE OR REPLACE FUNCTION pgsweep.run_begin(p_invoked_by text, p_commits boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_invoked_by text := coalesce(
        nullif(current_setting('pgsweep.invoked_by', true), ''),
        CASE WHEN current_setting('application_name') = 'pg_cron'
                  OR EXISTS (SELECT FROM pg_stat_activity a
                              WHERE a.pid = pg_backend_pid() AND a.backend_type = 'pg_cron')
             THEN 'scheduler' END,
        p_invoked_by);
    v_run_id bigint;
BEGIN
    IF pg_try_advisory_xact_lock(1886614391, 0) THEN
        PERFORM pgsweep.run_housekeeping();
    END IF;
    INSERT INTO pgsweep.run (invoked_by, pid, backend_start)
    SELECT v_invoked_by, pg_backend_pid(),
           (SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = pg_backend_pid())
    RETURNING run_id INTO v_run_id;
    IF p_commits THEN
        PERFORM pg_advisory_lock(1886614391, (v_run_id % 2147483648)::integer);
    END IF;
    RETURN v_run_id;
END $$;
COMMENT ON FUNCTION pgsweep.run_begin(text, boolean) IS
    'Record the start of a cleanup run (and tidy the history); returns its run_id';
