-- Delete the rows matching p_condition without making anyone wait for long: one pass when no
-- row is held (the common case), else SKIP LOCKED. The exception block is one subtransaction
-- per call, and a purge makes one call per rule or per committed batch, far below the 64 a
-- transaction may have before every snapshot in the cluster gets slower.
-- The SKIP LOCKED pass skips the rows the app holds, but can still wait on a lock beyond them
-- (a cascade into a child row the app holds, or has updated and not committed): it waits as
-- briefly as the first pass (pgsweep.execute_delete), and when it too times out the
-- lock_not_available error goes to the caller, which gives way for this time (never waiting
-- without limit while the app's next UPDATE of those rows queues behind the sweep).
-- With the rule, a rule that archives moves the rows, and its dependents are handled
-- (pgsweep.archiving_statement); the count is of rows deleted either way.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows(
    p_table regclass, p_condition text, p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    BEGIN
        RETURN pgsweep.delete_rows_waiting_briefly(p_table, p_condition, p_rule);
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        -- That pass is undone; take what is not held now.
        NULL;
    END;
    RETURN pgsweep.execute_delete(pgsweep.purge_statement(p_table, p_condition, true, p_rule));
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows(regclass, text, pgsweep.expiry_rule) IS
    'DELETE the matching rows in one pass, or with SKIP LOCKED when a row is held (55P03 if that waits too)';
