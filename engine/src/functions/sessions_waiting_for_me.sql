-- How many sessions wait for a lock this session holds (pg_blocking_pids). A sweep asks at the
-- end of a batch, before it commits: an app query that met a row the batch deleted waits now.
CREATE OR REPLACE FUNCTION pgsweep.sessions_waiting_for_me()
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(DISTINCT l.pid)::integer FROM pg_locks l
     WHERE NOT l.granted AND l.pid <> pg_backend_pid()
       AND pg_backend_pid() = ANY (pg_blocking_pids(l.pid))
$$;
COMMENT ON FUNCTION pgsweep.sessions_waiting_for_me() IS
    'The sessions waiting for a lock this session holds (a sweep batch before its commit)';
