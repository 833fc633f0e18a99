-- The single-pass DELETE, allowed to wait briefly for a row lock (pgsweep.execute_delete says
-- how long, and why it runs with row security off).
CREATE OR REPLACE FUNCTION pgsweep.delete_rows_waiting_briefly(
    p_table regclass, p_condition text, p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgsweep.execute_delete(pgsweep.purge_statement(p_table, p_condition, false, p_rule));
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows_waiting_briefly(regclass, text, pgsweep.expiry_rule) IS
    'DELETE the matching rows in one pass, waiting at most 20 ms for any lock';
