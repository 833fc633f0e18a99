-- Take a rule (or, with no column, every rule of the table) out of the lifecycle; returns how
-- many were removed. The table's rows are untouched.
CREATE OR REPLACE FUNCTION pgsweep.remove_rule(p_table regclass, p_column name DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_removed integer;
BEGIN
    DELETE FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND (p_column IS NULL OR r.column_name = p_column);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN v_removed;
END $$;
COMMENT ON FUNCTION pgsweep.remove_rule(regclass, name) IS
    'Remove a table''s rule on a column (or all its rules); returns how many';
