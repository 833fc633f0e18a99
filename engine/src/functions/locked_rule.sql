-- A rule as it is now, with its row locked (FOR SHARE) until the caller's transaction ends: a
-- sweep step reads its rule through this, so that a rule changed or removed while a run is on
-- it (a longer keep_for, remove_rule) takes effect from the next step on and never halfway
-- through one; the change waits for the step's commit (one batch). The row lock needs UPDATE on
-- pgsweep.expiry_rule, which a sweeping role does not have: hence SECURITY DEFINER, reading only
-- this one row. A change not committed within 1 s (a session that changed the rule and keeps
-- its transaction open) makes the step skip the rule this time: lock_not_available to the step.
-- NULL when the rule no longer exists.
CREATE OR REPLACE FUNCTION pgsweep.locked_rule(p_table regclass, p_column name)
RETURNS pgsweep.expiry_rule
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
AS $$
    SELECT r.* FROM pgsweep.expiry_rule r
     WHERE r.table_name OPERATOR(pg_catalog.=) p_table AND r.column_name OPERATOR(pg_catalog.=) p_column
       FOR SHARE
$$;
COMMENT ON FUNCTION pgsweep.locked_rule(regclass, name) IS
    'A rule, its row locked against change until the transaction ends (NULL: removed)';
