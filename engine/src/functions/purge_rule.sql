-- Every garbage row of one rule, in the caller's transaction: one DELETE, planned with its
-- cutoff (the rule's index for a few rows, a sequential scan for a backlog); the garbage a
-- deferred key references stays (pgsweep.deferred_references, pgsweep.purge_rule_leaving).
CREATE OR REPLACE FUNCTION pgsweep.purge_rule(p_rule pgsweep.expiry_rule)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgsweep.purge_rule_leaving(
        p_rule, ARRAY(SELECT d.constraint_oid FROM pgsweep.deferred_references(p_rule) d
                       WHERE NOT d.on_dependent));
END $$;
COMMENT ON FUNCTION pgsweep.purge_rule(pgsweep.expiry_rule) IS
    'Delete every garbage row of one rule with one DELETE, in the caller''s transaction';
