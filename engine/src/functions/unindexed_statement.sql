-- Whether the plan of p_statement reads some table without an index condition (a sequential
-- scan, or an index walked end to end) even when sequential scans are off: then no index can
-- serve it. Planned, never executed.
CREATE OR REPLACE FUNCTION pgsweep.unindexed_statement(p_statement text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    v_plan jsonb;
BEGIN
    /* Statements built by the engine from quoted parts.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_statement INTO v_plan;
    RETURN jsonb_path_exists(v_plan,
        '$.** ? (@."Node Type" == "Seq Scan" || ((@."Node Type" == "Index Scan"'
        ' || @."Node Type" == "Index Only Scan" || @."Node Type" == "Bitmap Index Scan")'
        ' && !exists(@."Index Cond")))');
END $$;
COMMENT ON FUNCTION pgsweep.unindexed_statement(text) IS
    'True when no index can serve a statement (a table scanned without an index condition)';
