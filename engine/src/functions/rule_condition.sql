-- The garbage of one rule as an SQL condition, within [p_from, p_before) of its column when
-- given. Bounds are text (a batch hands its end to the next), read back as the column's type.
--   age:       column < cutoff; for an epoch number also column >= the floor (2000-01-01 in the
--              rule's unit: see pgsweep.epoch_unit_problem);
--   condition: the condition alone;
--   orphan:    the key is not NULL and no parent row has it;
-- and the rule's condition, if any. Outside age rules the column may be NULL in garbage rows:
-- the last range of a sweep (a start, no end) includes them, as the probe sorts them last.
-- p_as_of_now: the cutoff as an expression of now() (cutoff_expression) rather than a literal,
-- for a condition kept and evaluated later (a view that hides expired rows).
CREATE OR REPLACE FUNCTION pgsweep.rule_condition(
    p_rule pgsweep.expiry_rule, p_from text DEFAULT NULL, p_before text DEFAULT NULL,
    p_as_of_now boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_column name := p_rule.column_name;
    v_type   regtype := pgsweep.column_type(p_rule.table_name, v_column);
    v_scale  integer := pgsweep.epoch_scale(p_rule);
    v_key    text := coalesce(p_rule.child_key, format('%I', v_column));
    v_parts  text[] := '{}'::text[];
BEGIN
    IF p_rule.kind = 'orphan' THEN
        -- The key is computed in a FROM subquery, which cannot see the parent's columns: a
        -- parent column of the same name never captures the child's.
        v_parts := v_parts || format(
            '(%1$s) IS NOT NULL AND NOT EXISTS (SELECT FROM (SELECT %1$s AS k) c'
            ' JOIN %2$s p ON p.%3$I = c.k)', v_key, p_rule.parent_table, p_rule.parent_key);
    ELSIF p_rule.kind = 'age' THEN
        v_parts := v_parts || format('%I < %s', v_column,
            CASE WHEN p_as_of_now THEN pgsweep.cutoff_expression(p_rule)
                 ELSE pgsweep.cutoff_literal(p_rule) END);
        IF v_scale IS NOT NULL THEN
            v_parts := v_parts || format('%I >= %s', v_column, 946684800::bigint * v_scale);
        END IF;
    END IF;
    IF p_rule.condition IS NOT NULL THEN
        v_parts := v_parts || format('(%s)', p_rule.condition);
    END IF;
    IF p_from IS NOT NULL AND p_before IS NULL AND p_rule.kind <> 'age' THEN
        v_parts := v_parts || format('(%I >= %L::%s OR %I IS NULL)', v_column, p_from, v_type, v_column);
    ELSIF p_from IS NOT NULL THEN
        v_parts := v_parts || format('%I >= %L::%s', v_column, p_from, v_type);
    END IF;
    IF p_before IS NOT NULL THEN
        v_parts := v_parts || format('%I < %L::%s', v_column, p_before, v_type);
    END IF;
    RETURN array_to_string(v_parts, ' AND ');
END $$;
COMMENT ON FUNCTION pgsweep.rule_condition(pgsweep.expiry_rule, text, text, boolean) IS
    'The rows a rule marks as garbage, optionally within [from, before), as an SQL condition';
