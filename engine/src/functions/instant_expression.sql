-- The instant a value of the rule's column stands for, as an SQL expression over the column
-- (for ages and reports: "how long ago did this row expire"). The inverse of cutoff_literal;
-- NULL for rules that are not age rules. A wall-clock value repeated or skipped by a
-- daylight-saving change reads as the later of its two instants (what AT TIME ZONE gives), the
-- reading cutoff_literal deletes by: a row counted as garbage is one the sweep deletes, and its
-- age is never overstated.
CREATE OR REPLACE FUNCTION pgsweep.instant_expression(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    ELSIF v_type = 'timestamptz'::regtype THEN
        RETURN format('%I', p_rule.column_name);
    ELSIF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        RETURN format('(%I::timestamp AT TIME ZONE %L)', p_rule.column_name,
                      coalesce(p_rule.value_zone, 'UTC'));
    ELSIF p_rule.epoch_unit = 'milliseconds' THEN
        RETURN format('to_timestamp(%I::double precision / 1000)', p_rule.column_name);
    END IF;
    RETURN format('to_timestamp(%I::double precision)', p_rule.column_name);
END $$;
COMMENT ON FUNCTION pgsweep.instant_expression(pgsweep.expiry_rule) IS
    'The instant a value of the rule''s column stands for, as an SQL expression';
