-- Release a rule's lock taken by pgsweep.lock_rule (true when this session held it).
CREATE OR REPLACE FUNCTION pgsweep.unlock_rule(p_table regclass, p_column name)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_advisory_unlock(k.classid, k.objid) FROM pgsweep.rule_lock_keys(p_table, p_column) k
$$;
COMMENT ON FUNCTION pgsweep.unlock_rule(regclass, name) IS
    'Release the advisory lock of a rule taken by pgsweep.lock_rule';
