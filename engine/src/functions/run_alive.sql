-- Whether the session of a 'running' run still holds the run's advisory lock (taken by
-- run_begin for runs that commit before they end). pg_locks shows every session's locks to
-- every role, where pg_stat_activity hides other roles' backend_start; a dead session has
-- released its locks, so a run whose lock is gone was interrupted (killed, or its server
-- restarted).
CREATE OR REPLACE FUNCTION pgsweep.run_alive(p_run_id bigint, p_pid bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.pid = p_pid
           AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
           AND l.classid = 1886614391::oid
           AND l.objid = (p_run_id % 2147483648)::integer::oid AND l.objsubid = 2)
$$;
COMMENT ON FUNCTION pgsweep.run_alive(bigint, bigint) IS
    'Whether the session running a run is still there (it holds the run''s advisory lock)';
