-- purge_rule with the rule's deferred keys onto its own table already known (p_deferred: the
-- constraint oids of pgsweep.deferred_references(p_rule) that are not on a dependent, in any
-- order): the garbage a row of theirs references stays. pgsweep.sweep_step asks
-- deferred_references once per rule and hands its answer here, rather than have it asked again.
CREATE OR REPLACE FUNCTION pgsweep.purge_rule_leaving(p_rule pgsweep.expiry_rule, p_deferred oid[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Only an orphan rule has a parent to hold (hold_parents says true for any other).
    IF p_rule.kind = 'orphan' AND NOT pgsweep.hold_parents(p_rule) THEN
        RETURN 0;
    END IF;
    RETURN pgsweep.delete_rows(
        p_rule.table_name,
        pgsweep.rule_condition(p_rule)
            || CASE WHEN cardinality(p_deferred) > 0 THEN
                   coalesce((SELECT string_agg(' AND NOT ' || pgsweep.referenced_condition(k.oid),
                                               '' ORDER BY k.oid)
                               FROM unnest(p_deferred) AS k(oid)), '')
               ELSE '' END,
        p_rule);
END $$;
COMMENT ON FUNCTION pgsweep.purge_rule_leaving(pgsweep.expiry_rule, oid[]) IS
    'Delete every garbage row of one rule but those the given deferred keys reference, in one DELETE';
