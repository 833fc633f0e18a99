-- The garbage of one rule as an SQL condition: column < cutoff, within [p_from, p_before) when
-- given. Bounds are text (a batch hands its end to the next), read back as the column's type.
CREATE OR REPLACE FUNCTION pgsweep.rule_condition(
    p_rule pgsweep.expiry_rule, p_from text DEFAULT NULL, p_before text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_column    name := p_rule.column_name;
    v_type      regtype := pgsweep.column_type(p_rule.table_name, v_column);
    v_condition text := format('%I < %s', v_column, pgsweep.cutoff_literal(p_rule));
BEGIN
    IF p_from IS NOT NULL THEN
        v_condition := v_condition || format(' AND %I >= %L::%s', v_column, p_from, v_type);
    END IF;
    IF p_before IS NOT NULL THEN
        v_condition := v_condition || format(' AND %I < %L::%s', v_column, p_before, v_type);
    END IF;
    RETURN v_condition;
END $$;
COMMENT ON FUNCTION pgsweep.rule_condition(pgsweep.expiry_rule, text, text) IS
    'The rows a rule marks as garbage, optionally within [from, before), as an SQL condition';
