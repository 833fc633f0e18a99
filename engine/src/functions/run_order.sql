-- The rules of a run (every table's, or p_table's), in the order every driver works them: an
-- orphan rule after every rule of its parent table, so that the parents a run deletes take their
-- orphans with them in the same run (an orphan whose parent is deleted later in the run would
-- wait for the next run); otherwise by table and column, as the dry run counts them. depth is
-- how many orphan rules stand between a rule and a table no orphan rule depends on (a cycle of
-- orphan rules, parent to child and back, is cut at 8 levels: each is still swept once).
CREATE OR REPLACE FUNCTION pgsweep.run_order(p_table regclass DEFAULT NULL)
RETURNS TABLE (table_name regclass, column_name name, depth integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL, not SQL: it keeps its plan from call to call (a SQL function with a SET
-- clause is planned again at every call, and every run and sweep_table call asks).
AS $$
BEGIN
    IF p_table IS NOT NULL THEN
        -- One table without orphan rules (what every sweep_table call asks): all its rules are
        -- at depth 0, in column order, without walking every rule of the database. One query:
        -- nothing found (an orphan rule, or no rule at all) takes the walk below.
        RETURN QUERY
            SELECT r.table_name, r.column_name, 0
              FROM pgsweep.expiry_rule r
             WHERE r.table_name = p_table
               AND NOT EXISTS (SELECT FROM pgsweep.expiry_rule o
                                WHERE o.table_name = p_table AND o.kind = 'orphan')
             ORDER BY r.column_name;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
        WITH RECURSIVE below (table_name, column_name, depth) AS (
            SELECT r.table_name, r.column_name, 0
              FROM pgsweep.expiry_rule r
            UNION ALL
            SELECT child.table_name, child.column_name, b.depth + 1
              FROM below b
              JOIN pgsweep.expiry_rule child
                ON child.kind = 'orphan' AND child.parent_table = b.table_name
             WHERE b.depth < 8)
        SELECT b.table_name, b.column_name, max(b.depth)::integer
          FROM below b
         WHERE p_table IS NULL OR b.table_name = p_table
         GROUP BY b.table_name, b.column_name
         ORDER BY max(b.depth), b.table_name::text, b.column_name;
END $$;
COMMENT ON FUNCTION pgsweep.run_order(regclass) IS
    'The rules a run works, in order: an orphan rule after the rules of its parent table';
