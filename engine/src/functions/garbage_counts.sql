-- How many rows each rule would delete right now. Rules of a table are counted in order, each
-- row once: rule i counts rows matching it and none of the rules before it, so the per-table sum
-- is exactly what a sweep would delete in this transaction (barring rows others lock), and
-- every count is a range scan of rule i's own index (the earlier rules are only a filter).
-- A rule that cannot run (rule_problem) is skipped with a warning, as every consumer skips it.
CREATE OR REPLACE FUNCTION pgsweep.garbage_counts(p_table regclass DEFAULT NULL)
RETURNS TABLE (table_name regclass, column_name name, garbage bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Counted as the sweep deletes (pgsweep.execute_delete): a policy that hides rows errors here
-- too, rather than counting the children of parents it hides as orphans.
SET row_security = off
AS $$
DECLARE
    v_rule    pgsweep.expiry_rule;
    v_table   regclass;
    v_match   text;
    v_earlier text := '';
    v_found   boolean := false;
BEGIN
    /* Identifiers are quoted with %I or are regclass output; the cutoff is a literal built by
     * cutoff_literal with %L, all through rule_condition. plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name = p_table
         ORDER BY r.table_name::text, r.column_name
    LOOP
        v_found := true;
        IF pgsweep.rule_problem(v_rule) IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                pgsweep.rule_problem(v_rule);
            CONTINUE;
        END IF;
        IF v_table IS DISTINCT FROM v_rule.table_name THEN
            v_table := v_rule.table_name;
            v_earlier := '';
        END IF;
        v_match := pgsweep.rule_condition(v_rule);
        EXECUTE format('SELECT count(*) FROM %s WHERE %s%s', v_rule.table_name, v_match, v_earlier)
           INTO garbage;
        table_name := v_rule.table_name;
        column_name := v_rule.column_name;
        RETURN NEXT;
        v_earlier := v_earlier || format(' AND (%s) IS NOT TRUE', v_match);
    END LOOP;
    IF p_table IS NOT NULL AND NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.garbage_counts(regclass) IS
    'Rows each expiry rule would delete now (each row counted once per table), index-driven';
