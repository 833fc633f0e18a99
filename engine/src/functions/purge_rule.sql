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
    RETURN pgsweep.delete_rows(p_rule.table_name, pgsweep.rule_condition(p_rule), p_rule);
END $$;
COMMENT ON FUNCTION pgsweep.purge_rule(pgsweep.expiry_rule) IS
    'Delete every garbage row of one rule with one DELETE, in the caller''s transaction';
