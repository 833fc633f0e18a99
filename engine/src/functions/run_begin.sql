-- Start recording a cleanup run; returns its run_id for run_record and run_end. p_invoked_by is
-- what the caller is ('procedure', 'function', 'cli'); a pg_cron session records 'scheduler',
-- and a session may state its own with the setting pgsweep.invoked_by (the pgsweep command sets
-- 'cli').
-- A run that commits before it ends (p_commits: the procedure, client-driven batches) writes its
-- row at once and holds a session advisory lock until run_end, so that once its session is gone
-- it shows as 'interrupted' (run_alive); before it, what this session's own earlier run left
-- open (pgsweep.close_own_leftovers: a cancel outside the procedure's handlers), then cheap
-- housekeeping (run_housekeeping, skipped when another run_begin is doing it).
-- A run inside one transaction (p_commits false: sweep_table) writes nothing yet: its run_id and
-- the rules recorded so far are kept in the transaction's setting pgsweep.pending_run, and only
-- a record that deleted, archived, paused or failed writes the run (run_write_pending); one that
-- did none of that ends as a single row of pgsweep.idle_run (run_close). It never tidies the
-- history: a call that deletes nothing does no housekeeping (run_close does it for one written
-- function run in 64).
-- run_begin, run_record and run_close are SECURITY DEFINER: a role allowed to sweep (EXECUTE on
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
        CASE WHEN current_setting('application_name') = 'pg_cron' THEN 'scheduler' END);
    v_pending jsonb := pgsweep.pending_run();
    v_run_id bigint;
BEGIN
    IF v_pending IS NOT NULL AND NOT (v_pending ->> 'written')::boolean THEN
        -- Two open runs in one transaction: the older is written in full, as any other.
        PERFORM pgsweep.run_write_pending(v_pending);
    END IF;
    -- A run this session began and never closed (a cancel outside the procedure's handlers),
    -- and the rule locks it left: closed and released before anything else. A committing run
    -- always looks (one look at pg_locks per run); an in-transaction one (the app's calls) only
    -- when this session's last committing run is not known to have ended.
    IF p_commits OR current_setting('pgsweep.open_run', true) <> '' THEN
        PERFORM pgsweep.close_own_leftovers();
    END IF;
    IF NOT p_commits THEN
        v_run_id := nextval('pgsweep.run_run_id_seq');
        PERFORM set_config('pgsweep.pending_run',
                           jsonb_build_object('run_id', v_run_id,
                                              'invoked_by', coalesce(v_invoked_by, p_invoked_by),
                                              'started_at', clock_timestamp(),
                                              'written', false, 'rules', '[]'::jsonb)::text,
                           true);
        RETURN v_run_id;
    END IF;
    IF pg_try_advisory_xact_lock(1886614391, 0) THEN
        PERFORM pgsweep.run_housekeeping();
    END IF;
    INSERT INTO pgsweep.run (invoked_by, pid, backend_start)
    SELECT coalesce(v_invoked_by,
                    CASE WHEN a.backend_type = 'pg_cron' THEN 'scheduler' END, p_invoked_by),
           pg_backend_pid(), a.backend_start
      FROM (SELECT) AS one
      LEFT JOIN pg_stat_activity a ON a.pid = pg_backend_pid()
    RETURNING run_id INTO v_run_id;
    PERFORM pg_advisory_lock(1886614391, (v_run_id % 2147483648)::integer);
    -- Session-wide (not undone by the commit that follows): emptied when the run ends. With
    -- the statement it is live in (pgsweep.open_run_mark), so that a call nested in it (an
    -- app's trigger calling a cleanup function) never takes it for a leftover.
    PERFORM set_config('pgsweep.open_run', pgsweep.open_run_mark(v_run_id), false);
    RETURN v_run_id;
END $$;
COMMENT ON FUNCTION pgsweep.run_begin(text, boolean) IS
    'Record the start of a cleanup run (and tidy the history); returns its run_id';
