-- How many of a numeric rule column's units make a second (1 or 1000); NULL for a column that
-- holds no epoch number.
CREATE OR REPLACE FUNCTION pgsweep.epoch_scale(p_rule pgsweep.expiry_rule)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pgsweep.column_type(p_rule.table_name, p_rule.column_name) IN (
           'smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
           'numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
        RETURN CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.epoch_scale(pgsweep.expiry_rule) IS
    'Units per second of a numeric rule column (1: seconds, 1000: milliseconds), else NULL';
