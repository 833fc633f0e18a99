-- A purge's DELETE (p_delete, built by purge_statement or skip_locked_statement), made to move
-- the rows when the rule archives: in the same statement, each row deleted is inserted into
-- the rule's archive_to with every column of the table, archived_at (now()) and archived_by
-- (the rule, "table.column"), so nothing is lost between the two and nothing is archived that
-- was not deleted. ROW_COUNT is the rows inserted: the rows deleted. Otherwise p_delete itself.
CREATE OR REPLACE FUNCTION pgsweep.archiving_statement(p_rule pgsweep.expiry_rule, p_delete text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns text;
BEGIN
    IF p_rule.archive_to IS NULL THEN
        RETURN p_delete;
    END IF;
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_columns
      FROM pg_attribute a
     WHERE a.attrelid = p_rule.table_name AND a.attnum > 0 AND NOT a.attisdropped;
    RETURN format('WITH gone AS (%s RETURNING %s) INSERT INTO %s (%s, archived_at, archived_by)'
                  ' SELECT %s, now(), %L FROM gone',
                  p_delete, v_columns, p_rule.archive_to, v_columns, v_columns,
                  format('%s.%s', p_rule.table_name, p_rule.column_name));
END $$;
COMMENT ON FUNCTION pgsweep.archiving_statement(pgsweep.expiry_rule, text) IS
    'A purge''s DELETE, moving the rows into the rule''s archive in the same statement if it archives';
