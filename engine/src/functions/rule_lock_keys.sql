-- Never two runs of one rule at once (two pg_cron jobs, a job and pgsweep run, two containers):
-- every consumer that deletes batch by batch holds a session-level advisory lock per rule while
-- it works on it. Its key is two integers, as pg_locks shows them (locktype 'advisory',
-- objsubid 2): classid the table's oid (as a signed integer: the same 32 bits) and objid
-- hashtext('pgsweep.rule:' || column), so that pg_locks.classid::regclass names the table.
-- Session-level, because CALL pgsweep.sweep() commits per batch; released when the rule is done
-- (or the session ends).
CREATE OR REPLACE FUNCTION pgsweep.rule_lock_keys(
    p_table regclass, p_column name, OUT classid integer, OUT objid integer)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_table::oid::integer, hashtext('pgsweep.rule:' || p_column)
$$;
COMMENT ON FUNCTION pgsweep.rule_lock_keys(regclass, name) IS
    'The advisory lock keys of a rule (pg_locks.classid, objid)';
