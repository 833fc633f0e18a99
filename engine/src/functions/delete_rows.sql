-- Delete the rows matching p_condition without making anyone wait for long: one pass when no
-- row is held (the common case), else SKIP LOCKED. The exception block is one subtransaction
-- per call, and a purge makes one call per rule or per committed batch, far below the 64 a
-- transaction may have before every snapshot in the cluster gets slower.
-- With the rule, a rule that archives moves the rows (pgsweep.archiving_statement); the count
-- is of rows deleted either way.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows(
    p_table regclass, p_condition text, p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    BEGIN
        RETURN pgsweep.delete_rows_waiting_briefly(p_table, p_condition, p_rule);
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        -- That pass is undone; take what is not held now.
        NULL;
    END;
    /* As in delete_rows_waiting_briefly.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_statement(p_table, p_condition, true, p_rule);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows(regclass, text, pgsweep.expiry_rule) IS
    'DELETE the matching rows in one pass, or with SKIP LOCKED when a row is held';
