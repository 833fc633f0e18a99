-- How many sessions wait for a lock this session holds (pg_blocking_pids). A sweep asks at the
-- end of a batch, before it commits: an app query that met a row the batch deleted waits now.
-- Only sessions waiting for a lock are asked about (pg_stat_get_activity: reading pg_locks
-- instead costs half a millisecond a batch); another role's sessions show their wait only to
-- a member of pg_read_all_stats (pg_monitor).
CREATE OR REPLACE FUNCTION pgsweep.sessions_waiting_for_me()
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pg_stat_get_activity(NULL) a
     WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
       AND pg_backend_pid() = ANY (pg_blocking_pids(a.pid))
$$;
COMMENT ON FUNCTION pgsweep.sessions_waiting_for_me() IS
    'The sessions waiting for a lock this session holds (a sweep batch before its commit)';
