-- Epoch values a rule never takes for garbage, and why a numeric column refuses a unit.
-- An epoch value before 2000-01-01 UTC or from the year 3000 on stands for no expiry instant an
-- application writes: it is a unit misread (seconds read as milliseconds land in 1970;
-- milliseconds read as seconds in the year 50000 and later) or a sentinel (0, -1). The sweep
-- never deletes a value before 2000 (rule_condition: the floor), so rows an app starts writing
-- in another unit after the rule was made, or sentinels, are kept rather than wiped; and a rule
-- is refused when most of a sample of the values already there (up to 1000) are implausible.
-- NULL: the rule is not an epoch age rule, or its values look right.
CREATE OR REPLACE FUNCTION pgsweep.epoch_unit_problem(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scale numeric := pgsweep.epoch_scale(p_rule);
    v_sample bigint;
    v_implausible bigint;
BEGIN
    IF v_scale IS NULL OR p_rule.kind <> 'age' THEN
        RETURN NULL;
    END IF;
    /* Identifiers through %I and regclass.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE v < %2$s OR v >= %3$s)'
                   '  FROM (SELECT %1$I::numeric AS v FROM %4$s WHERE %1$I IS NOT NULL LIMIT 1000) s',
                   p_rule.column_name, 946684800 * v_scale, 32503680000 * v_scale, p_rule.table_name)
       INTO v_sample, v_implausible;
    IF v_implausible * 2 > v_sample THEN
        RETURN format('%s of %s values sampled fall before 2000 or after 2999 read as %s',
                      v_implausible, v_sample, coalesce(p_rule.epoch_unit, 'seconds'));
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.epoch_unit_problem(pgsweep.expiry_rule) IS
    'Why most values of a numeric rule column are implausible in its epoch unit, or NULL';
