-- SET CONSTRAINTS ... IMMEDIATE for the deferred foreign keys that reference what a rule's
-- batch deletes: its table, and the tables its 'delete' dependents delete from. Returns how
-- many. Run by hold_parents before every batch. (SET CONSTRAINTS names a constraint by schema
-- and name; another table's constraint of the same name in that schema is set too.)
CREATE OR REPLACE FUNCTION pgsweep.check_constraints_now(p_rule pgsweep.expiry_rule)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_names text;
    v_count integer;
BEGIN
    -- The usual case, answered from pg_trigger's index on the table (pg_constraint has none on
    -- the referenced table): a plain table whose referencing keys are all checked at once (a
    -- deferrable key's action triggers on the referenced table are deferrable too), and no
    -- 'delete' dependent whose table's keys would need looking at.
    IF (SELECT c.relkind = 'r' AND NOT EXISTS (
                   SELECT FROM pg_trigger t
                    WHERE t.tgrelid = c.oid AND t.tgconstraint <> 0 AND t.tginitdeferred)
          FROM pg_class c WHERE c.oid = p_rule.table_name)
       AND NOT EXISTS (SELECT FROM pgsweep.rule_dependent d
                        WHERE d.table_name = p_rule.table_name AND d.column_name = p_rule.column_name
                          AND d.action = 'delete') THEN
        RETURN 0;
    END IF;
    SELECT string_agg(DISTINCT format('%I.%I', n.nspname, c.conname), ', '), count(DISTINCT c.oid)
      INTO v_names, v_count
      FROM pg_constraint c
      JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE c.contype = 'f' AND c.condeferrable AND c.condeferred
       AND (c.confrelid = p_rule.table_name
            OR c.confrelid IN (SELECT d.referencing_table FROM pgsweep.rule_dependents(p_rule) d
                                WHERE d.action = 'delete' AND d.referenced_table = p_rule.table_name));
    IF v_names IS NOT NULL THEN
        /* Every name is quoted with %I above.
         * @plpgsql_check_options: security_warnings = false
         */
        EXECUTE 'SET CONSTRAINTS ' || v_names || ' IMMEDIATE';
    END IF;
    RETURN v_count;
END $$;
COMMENT ON FUNCTION pgsweep.check_constraints_now(pgsweep.expiry_rule) IS
    'Make the deferred foreign keys on what a rule deletes IMMEDIATE for this transaction';
