-- A rule for orphans: a row of p_table is garbage once no row of p_parent has p_parent_key
-- equal to p_child_key, an expression of the row's columns (p_column itself when NULL; e.g.
-- nullif(split_part(key, ':', 2), '')::bigint for an id inside a cache key). A row whose key
-- is NULL has no parent to lose and is kept. p_column is the column the batches walk in index
-- order; the parent key needs an index leading with it, so each child is one index probe;
-- p_condition optionally narrows the rule (key LIKE 'user:%'). A key expression must never
-- fail on a value (a cast of non-digits would stop every sweep): narrow it or use nullif.
-- Deleting is safe against a parent being inserted concurrently: see pgsweep.hold_parents.
CREATE OR REPLACE FUNCTION pgsweep.add_orphan_rule(
    p_table regclass, p_column name, p_parent regclass, p_parent_key name,
    p_child_key text DEFAULT NULL, p_condition text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule pgsweep.expiry_rule;
    v_key  text;
BEGIN
    PERFORM pgsweep.column_type(p_table, p_column);
    PERFORM pgsweep.column_type(p_parent, p_parent_key);
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = p_parent AND c.relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '% is not a table', p_parent USING ERRCODE = 'wrong_object_type';
    END IF;
    -- The key expression is checked as the condition "(key) IS NOT NULL", whose deparsed form
    -- is always "(<key> IS NOT NULL)": the key is what lies between.
    IF p_child_key IS NOT NULL THEN
        v_key := pgsweep.checked_condition(p_table, format('(%s) IS NOT NULL', p_child_key));
        IF v_key NOT LIKE '(% IS NOT NULL)' THEN
            RAISE EXCEPTION 'the parent key expression % is not one expression', p_child_key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_key := substr(v_key, 2, length(v_key) - length('( IS NOT NULL)'));
    END IF;
    -- Field by field: the columns not named here (lag_target, …) stay NULL.
    v_rule.table_name := p_table;
    v_rule.column_name := p_column;
    v_rule.keep_for := '0';
    v_rule.kind := 'orphan';
    v_rule.condition := pgsweep.checked_condition(p_table, p_condition);
    v_rule.parent_table := p_parent;
    v_rule.parent_key := p_parent_key;
    v_rule.child_key := v_key;
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    PERFORM pgsweep.require_leading_index(p_parent, p_parent_key);
    -- The comparison must resolve (types that compare) before the rule is kept.
    EXECUTE format('SELECT FROM %s WHERE %s LIMIT 0', p_table, pgsweep.rule_condition(v_rule));
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_orphan_rule(regclass, name, regclass, name, text, text) IS
    'Register (or update) a rule whose garbage is the rows whose parent row is gone';
