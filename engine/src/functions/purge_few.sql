-- At most p_rows garbage rows of a rule, oldest first, skipping rows another transaction holds:
-- the insert trigger's bounded batch. Rows are locked before they are deleted, so the trigger
-- never waits, whatever the app holds; a lock beyond them (a foreign key's cascade into a row
-- the app holds) is waited for briefly (pgsweep.execute_delete), then the trigger gives up with
-- a warning. Left to the scheduled sweep: an orphan rule (it would lock its parent table inside
-- the app's insert), and a rule whose delete a deferred foreign key no dependent covers would
-- check (pgsweep.deferred_references: a garbage row it references would fail the app's own
-- COMMIT, out of the trigger's reach).
-- Dependents the rule has are acted on in the same statement (archiving_statement).
CREATE OR REPLACE FUNCTION pgsweep.purge_few(p_rule pgsweep.expiry_rule, p_rows integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_rule.kind = 'orphan' THEN
        RETURN 0;
    END IF;
    -- The same question as the caller's-transaction sweep asks (one query, in one place): a
    -- deferred key onto its table, or onto a table its 'delete' dependents delete from.
    IF EXISTS (SELECT FROM pgsweep.deferred_references(p_rule)) THEN
        RETURN 0;
    END IF;
    RETURN pgsweep.execute_delete(pgsweep.archiving_statement(p_rule, pgsweep.skip_locked_statement(
        p_rule.table_name, pgsweep.rule_condition(p_rule), p_rule.column_name, p_rows)));
END $$;
COMMENT ON FUNCTION pgsweep.purge_few(pgsweep.expiry_rule, integer) IS
    'Delete up to p_rows garbage rows of a rule, oldest first, skipping held rows';
