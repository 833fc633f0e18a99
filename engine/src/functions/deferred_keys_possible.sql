-- Whether pgsweep.deferred_references can find anything for a rule, answered from pg_trigger's
-- index on the table (pg_constraint has none on the referenced table): false for the usual
-- case, a plain table that no deferrable key's action trigger is on (deferrable, not only
-- initially deferred: the app may defer one itself), with no 'delete'
-- dependent whose table would need looking at. A plain boolean, so that a caller skips the
-- set-returning call when it would return nothing.
CREATE OR REPLACE FUNCTION pgsweep.deferred_keys_possible(p_rule pgsweep.expiry_rule)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN NOT coalesce(
        (SELECT c.relkind = 'r' AND NOT EXISTS (
                    SELECT FROM pg_trigger t
                     WHERE t.tgrelid = c.oid AND t.tgconstraint <> 0 AND t.tgdeferrable)
           FROM pg_class c WHERE c.oid = p_rule.table_name)
        AND NOT EXISTS (SELECT FROM pgsweep.rule_dependent d
                         WHERE d.table_name = p_rule.table_name
                           AND d.column_name = p_rule.column_name AND d.action = 'delete'),
        false);
END $$;
COMMENT ON FUNCTION pgsweep.deferred_keys_possible(pgsweep.expiry_rule) IS
    'Whether a rule''s table or its ''delete'' dependents may have deferred keys (false: none)';
