-- The deferrable foreign keys (NO ACTION; INITIALLY DEFERRED is what Django creates) that no
-- dependent of the rule handles and that would check, at the caller's COMMIT, rows a delete of
-- the rule takes: keys onto its table (on_dependent false) or onto a table its 'delete'
-- dependents delete from (on_dependent true). Only NO ACTION can be deferred: every other
-- action is taken at once. In the caller's transaction (pgsweep.sweep_table and the functions
-- built on it) the engine may neither make them IMMEDIATE (the app's own pending checks would
-- fire early) nor leave them to fail the app's COMMIT: the garbage they reference stays
-- (purge_rule), and a rule whose dependents' tables have them is left to the batched sweep,
-- which checks them in its own transaction (sweep_step: SET CONSTRAINTS ALL IMMEDIATE).
CREATE OR REPLACE FUNCTION pgsweep.deferred_references(p_rule pgsweep.expiry_rule)
RETURNS TABLE (constraint_oid oid, on_dependent boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The usual case (deferred_keys_possible): nothing to look up in pg_constraint.
    IF NOT pgsweep.deferred_keys_possible(p_rule) THEN
        RETURN;
    END IF;
    -- Every deferrable key, not only those declared INITIALLY DEFERRED: the app may defer an
    -- INITIALLY IMMEDIATE one (SET CONSTRAINTS ... DEFERRED), and no query tells its mode in
    -- this transaction. With the clones of a key onto a partition (conparentid <> 0): a rule on
    -- a leaf partition is referenced through the clone of the key onto its partitioned parent.
    -- A clone of a key a dependent handles is handled with it.
    RETURN QUERY
    WITH RECURSIVE handled AS (
        SELECT d.constraint_oid AS oid FROM pgsweep.rule_dependents(p_rule) d
        UNION
        SELECT k.oid FROM pg_constraint k JOIN handled h ON k.conparentid = h.oid
    )
    SELECT c.oid, c.confrelid <> p_rule.table_name
      FROM pg_constraint c
     WHERE c.contype = 'f' AND c.condeferrable AND c.confdeltype = 'a'
       AND (c.confrelid = p_rule.table_name
            OR c.confrelid IN (SELECT d.referencing_table FROM pgsweep.rule_dependents(p_rule) d
                                WHERE d.action = 'delete' AND d.referenced_table = p_rule.table_name))
       AND c.oid NOT IN (SELECT h.oid FROM handled h)
     ORDER BY c.oid;
END $$;
COMMENT ON FUNCTION pgsweep.deferred_references(pgsweep.expiry_rule) IS
    'The deferred NO ACTION keys no dependent handles onto what a rule''s delete takes';
