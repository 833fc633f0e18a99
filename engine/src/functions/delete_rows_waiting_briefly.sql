-- The single-pass DELETE, allowed to wait 20 ms for a row lock (well under deadlock_timeout,
-- so in a lock cycle it nearly always times out before the other side's deadlock check runs:
-- only an app that had already waited 980 ms to 1 s is checked first). The SET clause
-- ends with the function, error or not.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows_waiting_briefly(
    p_table regclass, p_condition text, p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '20ms'
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    /* purge_statement quotes every identifier (%I, regclass) and value (%L) it puts into the
     * condition; plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_statement(p_table, p_condition, false, p_rule);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows_waiting_briefly(regclass, text, pgsweep.expiry_rule) IS
    'DELETE the matching rows in one pass, waiting at most 20 ms for any lock';
