-- Every DELETE the engine builds (purge_statement, skip_locked_statement, archiving_statement)
-- runs here, the one place that says how it may wait and what it may see:
--   lock_timeout 20 ms: a lock the statement must wait for (a row the app holds, a foreign
--     key's cascade into a row the app holds or has updated, a trigger's lock) is waited for at
--     most that long, well under deadlock_timeout, so in a lock cycle it is almost always the
--     cleanup that gives way (only an app that had already waited 980 ms to 1 s is checked
--     first); then lock_not_available (55P03) goes to the caller;
--   row_security off: a garbage condition read through a policy gives a wrong answer (an
--     orphan rule would take a child whose parent the policy hides for a missing parent), so a
--     role a policy applies to gets the error "query would be affected by row-level security
--     policy" instead; a table's owner (without FORCE) or a BYPASSRLS role runs as before.
-- Both SET clauses end with the function, error or not. Returns the statement's ROW_COUNT.
CREATE OR REPLACE FUNCTION pgsweep.execute_delete(p_statement text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '20ms'
SET row_security = off
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    /* Only the engine's statement builders call this (PUBLIC has no EXECUTE); they quote every
     * identifier (%I, regclass) and value (%L) they put into the statement.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE p_statement;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.execute_delete(text) IS
    'Run a purge''s DELETE waiting at most 20 ms for a lock, with row security off (error, not a wrong answer)';
