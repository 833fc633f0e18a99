-- Why this session cannot take a rule's lock (pgsweep.lock_rule gave up): the session holding
-- it and its run (the run's advisory lock, taken by run_begin: pg_locks shows it to every
-- role, where the history and pg_stat_activity may be hidden). Whether that run is still
-- working cannot be told from here (a CALL pgsweep.sweep() cancelled right after a commit
-- leaves its run's lock too, in a session that may sit idle in a pool for days, and pgsweep
-- cleanup is idle between its batches), so both ways out are said: that session frees the rule
-- at its next run (close_own_leftovers), or ending its pid does. Recorded
-- as the rule's 'skipped: ' reason, so pgsweep status, health and the history name it.
CREATE OR REPLACE FUNCTION pgsweep.rule_lock_problem(p_table regclass, p_column name)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_pid integer := pgsweep.rule_lock_holder(p_table, p_column);
    v_run bigint := (SELECT min(l.objid::bigint) FROM pg_locks l
                      WHERE l.locktype = 'advisory' AND l.granted AND l.pid = v_pid
                        AND l.objsubid = 2 AND l.classid = 1886614391::oid
                        AND l.database = (SELECT d.oid FROM pg_database d
                                           WHERE d.datname = current_database()));
BEGIN
    IF v_pid IS NULL THEN
        RETURN 'another run is working on it';
    ELSIF v_run IS NOT NULL THEN
        -- Alive or a leftover alike (a client between batches is idle too): both are said.
        RETURN format('another run is working on it (pid %s, run %s); if that session is idle'
                      ' (a pooled connection whose sweep was cancelled), its next run frees the'
                      ' rule, or end it: SELECT pg_terminate_backend(%s)', v_pid, v_run, v_pid);
    END IF;
    RETURN format('another run is working on it (pid %s, with no run in progress: a leftover);'
                  ' that session frees it at its next run, or end it:'
                  ' SELECT pg_terminate_backend(%s)', v_pid, v_pid);
END $$;
COMMENT ON FUNCTION pgsweep.rule_lock_problem(regclass, name) IS
    'Why a rule''s lock is not free: the run and pid holding it, and how to free it';
