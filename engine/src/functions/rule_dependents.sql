-- A rule's dependents whose foreign key still exists (a dropped key or table is nothing to act
-- on), with the columns on both sides in key order: first those referencing the rule's table,
-- then those one level further (referencing a 'delete' dependent's table).
CREATE OR REPLACE FUNCTION pgsweep.rule_dependents(p_rule pgsweep.expiry_rule)
RETURNS TABLE (referencing_table regclass, constraint_name name, action text,
               referenced_table regclass, referencing_columns name[], referenced_columns name[],
               constraint_oid oid)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL, not SQL: every batch asks (rule_condition, the statement builders), and PL/pgSQL
-- keeps the plans a SQL function with a SET clause would make again at each call; a rule with no
-- dependent (nearly every rule) is answered by one index probe.
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pgsweep.rule_dependent d
                    WHERE d.table_name = p_rule.table_name AND d.column_name = p_rule.column_name) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT d.referencing_table, d.constraint_name, d.action, c.confrelid::regclass,
           ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k (n, i)
                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
           ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k (n, i)
                   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),
           c.oid
      FROM pgsweep.rule_dependent d
      JOIN pg_constraint c
        ON c.conrelid = d.referencing_table AND c.conname = d.constraint_name
       AND c.contype = 'f' AND c.conparentid = 0
     WHERE d.table_name = p_rule.table_name AND d.column_name = p_rule.column_name
     ORDER BY c.confrelid <> p_rule.table_name, d.referencing_table::text, d.constraint_name;
END $$;
COMMENT ON FUNCTION pgsweep.rule_dependents(pgsweep.expiry_rule) IS
    'A rule''s dependents whose foreign key exists, with its columns, nearest level first';
