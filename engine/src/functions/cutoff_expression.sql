-- The cutoff of an age rule as an SQL expression of now(), for what is evaluated later (the
-- views that hide expired rows: pgsweep.create_live_view): the same instant as cutoff_literal,
-- now() - keep_for reckoned in UTC, in the column's type, zone and epoch unit (a wall-clock
-- cutoff through pgsweep.wall_clock_cutoff, as cutoff_literal's). NULL for rules that are not
-- age rules.
CREATE OR REPLACE FUNCTION pgsweep.cutoff_expression(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    v_instant text := format('((now() AT TIME ZONE ''UTC'') - %L::interval) AT TIME ZONE ''UTC''',
                             p_rule.keep_for);
    v_scale   integer := CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
    v_largest numeric := CASE v_type WHEN 'smallint'::regtype THEN 32767
                                     WHEN 'integer'::regtype THEN 2147483647
                                     ELSE 9223372036854775807 END;
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    END IF;
    CASE
        WHEN v_type = 'timestamptz'::regtype THEN
            RETURN format('(%s)', v_instant);
        WHEN v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
            RETURN format('pgsweep.wall_clock_cutoff(%s, %L)::%s', v_instant,
                          coalesce(p_rule.value_zone, 'UTC'), v_type);
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            -- Clamped to the type's range, as cutoff_literal's.
            RETURN format('greatest(least(ceil(extract(epoch FROM %s) * %s), %s), %s)::%s',
                          v_instant, v_scale, v_largest, -v_largest - 1, v_type);
        ELSE
            RETURN format('(extract(epoch FROM %s) * %s)::%s', v_instant, v_scale, v_type);
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_expression(pgsweep.expiry_rule) IS
    'now() - keep_for as an SQL expression of now() in the column''s type (for views)';
