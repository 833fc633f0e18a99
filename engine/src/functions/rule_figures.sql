-- The figures of pgsweep.rule_status that read the rule's table. Their cost follows the garbage,
-- not the table: garbage (exact: the rows rule_condition marks, a range of the rule's index),
-- its oldest and newest instants and the smallest value of the column (the ends of that index).
-- The table's rows, and those whose column is NULL (they never expire), are counted exactly up
-- to exact_count_limit() rows (pg_class.reltuples); a larger table is never scanned for them:
-- they are the planner's estimates (reltuples, and pg_stats.null_frac of the column), and
-- estimated says so. NULLs when the rule cannot run (rule_problem).
CREATE OR REPLACE FUNCTION pgsweep.rule_figures(
    p_rule pgsweep.expiry_rule,
    OUT rows_total bigint, OUT rows_never_expire bigint, OUT estimated boolean,
    OUT garbage bigint, OUT oldest_garbage_at timestamptz, OUT newest_garbage_at timestamptz,
    OUT oldest_row_at timestamptz, OUT cutoff_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   regclass := p_rule.table_name;
    v_column  name := p_rule.column_name;
    v_instant text;
    v_tuples  double precision;
    v_unknown boolean;
    v_bytes   bigint;
BEGIN
    IF pgsweep.rule_problem(p_rule) IS NOT NULL THEN
        RETURN;
    END IF;
    -- A condition or orphan rule has no instant (instant_expression is NULL): its garbage is
    -- counted, and it has no ages, no cutoff and no oldest row to tell.
    v_instant := coalesce(pgsweep.instant_expression(p_rule), 'NULL::timestamptz');
    IF p_rule.kind = 'age' THEN
        cutoff_at := now() - p_rule.keep_for;
    END IF;
    /* Identifiers are quoted with %I or are regclass output; rule_condition and
     * instant_expression quote what they put in (%I, %L).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('SELECT count(*), min(%1$s), max(%1$s) FROM %2$s WHERE %3$s',
                   v_instant, v_table, pgsweep.rule_condition(p_rule))
       INTO garbage, oldest_garbage_at, newest_garbage_at;
    IF p_rule.kind = 'age' THEN
        EXECUTE format('SELECT %1$s FROM (SELECT %2$I FROM %3$s WHERE %2$I IS NOT NULL'
                       ' ORDER BY %2$I LIMIT 1) s', v_instant, v_column, v_table)
           INTO oldest_row_at;
    END IF;
    -- A partitioned table's rows are its partitions'.
    SELECT sum(greatest(c.reltuples, 0)), bool_or(c.reltuples < 0),
           sum(pg_relation_size(c.oid))
      INTO v_tuples, v_unknown, v_bytes
      FROM pg_class c
     WHERE c.oid = v_table AND c.relkind <> 'p'
        OR c.oid IN (SELECT t.relid FROM pg_partition_tree(v_table) t WHERE t.isleaf);
    IF v_tuples <= pgsweep.exact_count_limit()
       AND (NOT v_unknown OR v_bytes <= pgsweep.exact_count_limit() * 100) THEN
        -- Small (or never analyzed, and no larger than 100 bytes a row would make it).
        EXECUTE format('SELECT count(*), count(*) FILTER (WHERE %I IS NULL) FROM %s',
                       v_column, v_table)
           INTO rows_total, rows_never_expire;
        estimated := false;
        RETURN;
    END IF;
    -- Never analyzed and large: its row count is unknown (NULL) until ANALYZE.
    rows_total := CASE WHEN NOT v_unknown THEN v_tuples::bigint END;
    SELECT (rows_total * coalesce(max(s.null_frac), 0))::bigint INTO rows_never_expire
      FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
      JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                     AND s.attname = v_column
     WHERE c.oid = v_table;
    estimated := true;
END $$;
COMMENT ON FUNCTION pgsweep.rule_figures(pgsweep.expiry_rule) IS
    'Garbage (exact, index-driven) and row counts (exact when small, else estimates) of a rule';
