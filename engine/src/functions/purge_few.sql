-- At most p_rows garbage rows of a rule, oldest first, skipping rows another transaction holds:
-- the insert trigger's bounded batch. Rows are locked before they are deleted, so the trigger
-- never waits, whatever the app holds; a lock beyond them (a foreign key's cascade into a row
-- the app holds) is waited for at most 20 ms, then the trigger gives up with a warning. An
-- orphan rule is left to the scheduled sweep: it would lock its parent table inside the app's
-- insert.
CREATE OR REPLACE FUNCTION pgsweep.purge_few(p_rule pgsweep.expiry_rule, p_rows integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '20ms'
AS $$
DECLARE
    v_deleted integer;
BEGIN
    IF p_rule.kind = 'orphan' THEN
        RETURN 0;
    END IF;
    /* skip_locked_statement and rule_condition quote every identifier (%I, regclass) and
     * value (%L).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.archiving_statement(p_rule, pgsweep.skip_locked_statement(
        p_rule.table_name, pgsweep.rule_condition(p_rule), p_rule.column_name, p_rows));
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.purge_few(pgsweep.expiry_rule, integer) IS
    'Delete up to p_rows garbage rows of a rule, oldest first, skipping held rows';
