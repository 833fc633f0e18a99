-- Keep the partitions a rule takes out of its table (expired_partitions) as plain tables in
-- p_schema instead of dropping them; NULL drops them again. The schema must exist.
CREATE OR REPLACE FUNCTION pgsweep.set_partition_archive(
    p_table regclass, p_column name, p_schema name)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_schema IS NOT NULL AND to_regnamespace(quote_ident(p_schema)) IS NULL THEN
        RAISE EXCEPTION 'schema "%" does not exist', p_schema
            USING ERRCODE = 'invalid_schema_name',
                  HINT = format('CREATE SCHEMA %I;', p_schema);
    END IF;
    UPDATE pgsweep.expiry_rule r SET partition_archive_schema = p_schema
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no expiry rule on column "%"', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.set_partition_archive(regclass, name, name) IS
    'Move a rule''s expired partitions into this schema instead of dropping them (NULL: drop)';
