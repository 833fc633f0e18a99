CREATE OR REPLACE FUNCTION pgsweep.column_type(p_table regclass, p_column name)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype;
BEGIN
    SELECT a.atttypid::regtype INTO v_type
      FROM pg_attribute a
     WHERE a.attrelid = p_table AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', p_column, p_table
            USING ERRCODE = 'undefined_column';
    END IF;
    RETURN v_type;
END $$;
COMMENT ON FUNCTION pgsweep.column_type(regclass, name) IS 'The type of a table column, or an error';
