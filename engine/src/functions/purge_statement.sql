-- The DELETE of the rows matching p_condition. With p_skip_locked the rows are first taken
-- with FOR UPDATE SKIP LOCKED (skip_locked_statement): rows another transaction holds are left
-- alone, at the price of a second visit to every row and a WAL record for each lock. A function
-- of its own so that EXPLAIN (pgsweep verify, the tests) can inspect exactly the statement a
-- purge runs. Given the rule, and the rule archives, the rows deleted go into its archive in
-- the same statement (pgsweep.archiving_statement).
CREATE OR REPLACE FUNCTION pgsweep.purge_statement(
    p_table regclass, p_condition text, p_skip_locked boolean,
    p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_skip_locked THEN
        RETURN pgsweep.archiving_statement(p_rule, pgsweep.skip_locked_statement(p_table, p_condition));
    END IF;
    RETURN pgsweep.archiving_statement(p_rule, format('DELETE FROM %s WHERE %s', p_table, p_condition));
END $$;
COMMENT ON FUNCTION pgsweep.purge_statement(regclass, text, boolean, pgsweep.expiry_rule) IS
    'The DELETE a purge runs for a condition, with or without SKIP LOCKED, archiving (for EXPLAIN)';
