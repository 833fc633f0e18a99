-- Set the expiry lag a rule may reach before verify and health go red (NULL: back to
-- default_lag_target()). A function of its own so add_rule keeps its signature.
CREATE OR REPLACE FUNCTION pgsweep.set_lag_target(p_table regclass, p_column name, p_lag_target interval)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_lag_target < '0'::interval THEN
        RAISE EXCEPTION 'a lag target must not be negative, not %', p_lag_target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE pgsweep.expiry_rule r SET lag_target = p_lag_target
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no expiry rule on %.%', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.set_lag_target(regclass, name, interval) IS
    'Set (or with NULL reset) the lag target of one expiry rule';
