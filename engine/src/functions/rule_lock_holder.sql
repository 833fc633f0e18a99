-- The session that holds a rule's lock (pgsweep.rule_lock_keys) now, or NULL.
CREATE OR REPLACE FUNCTION pgsweep.rule_lock_holder(p_table regclass, p_column name)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT l.pid FROM pg_locks l, pgsweep.rule_lock_keys(p_table, p_column) k
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
               AND l.database = (SELECT d.oid FROM pg_database d
                                  WHERE d.datname = current_database())
               AND l.classid = k.classid::oid AND l.objid = k.objid::oid
             LIMIT 1);
END $$;
COMMENT ON FUNCTION pgsweep.rule_lock_holder(regclass, name) IS
    'The backend pid of the run working on a rule now, or NULL';
