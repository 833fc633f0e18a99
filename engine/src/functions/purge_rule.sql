-- Every garbage row of one rule, in the caller's transaction: one DELETE, planned with its
-- cutoff (the rule's index for a few rows, a sequential scan for a backlog).
CREATE OR REPLACE FUNCTION pgsweep.purge_rule(p_rule pgsweep.expiry_rule)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pgsweep.hold_parents(p_rule) THEN
        RETURN 0;
    END IF;
    RETURN pgsweep.delete_rows(
        p_rule.table_name,
        pgsweep.rule_condition(p_rule)
            || coalesce((SELECT string_agg(' AND NOT ' || pgsweep.referenced_condition(d.constraint_oid),
                                           '' ORDER BY d.constraint_oid)
                           FROM pgsweep.deferred_references(p_rule) d WHERE NOT d.on_dependent), ''),
        p_rule);
END $$;
COMMENT ON FUNCTION pgsweep.purge_rule(pgsweep.expiry_rule) IS
    'Delete every garbage row of one rule with one DELETE, in the caller''s transaction';
