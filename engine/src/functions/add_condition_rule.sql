-- A rule that is a condition alone: a row is garbage once p_condition holds for it
-- (used_at IS NOT NULL; coalesce(last_login_at, created_at) < now() - interval '6 months').
-- p_column names the column its batches walk in index order (it keys the rule, with the
-- table, in history and status): an index must lead with it, and some index must serve the
-- condition itself (an index on a column it tests, an expression index, a partial index), else
-- the rule is refused, naming the index to build.
CREATE OR REPLACE FUNCTION pgsweep.add_condition_rule(
    p_table regclass, p_column name, p_condition text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule pgsweep.expiry_rule;
BEGIN
    PERFORM pgsweep.column_type(p_table, p_column);
    IF p_condition IS NULL THEN
        RAISE EXCEPTION 'a condition rule needs a condition'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Field by field: the columns not named here (lag_target, …) stay NULL.
    v_rule.table_name := p_table;
    v_rule.column_name := p_column;
    v_rule.keep_for := '0';
    v_rule.kind := 'condition';
    v_rule.condition := pgsweep.checked_condition(p_table, p_condition);
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    IF pgsweep.unindexed_statement(format('SELECT FROM %s WHERE %s', p_table, v_rule.condition)) THEN
        RAISE EXCEPTION 'no valid index of % serves the condition %', p_table, v_rule.condition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Build one the condition can use, e.g. CREATE INDEX CONCURRENTLY'
                                ' ON %s ((%s)); or an index on the column or expression it'
                                ' compares with now().', p_table, v_rule.condition);
    END IF;
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_condition_rule(regclass, name, text) IS
    'Register (or update) a rule whose garbage is the rows meeting a condition';
