-- The DELETE of the rows matching p_condition that no other transaction holds (taken first with
-- FOR UPDATE SKIP LOCKED), optionally the first p_limit of them in p_order. A row is named by
-- its table and ctid together: in a partitioned table (or one with inheritance children) two
-- partitions have rows at the same ctid, so a ctid alone would also delete a live row of
-- another partition. The ctid list still drives a TID scan; the pair makes it exact.
CREATE OR REPLACE FUNCTION pgsweep.skip_locked_statement(
    p_table regclass, p_condition text, p_order name DEFAULT NULL, p_limit integer DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        'WITH picked AS MATERIALIZED ('
        'SELECT tableoid AS t, ctid AS c FROM %1$s WHERE %2$s%3$s%4$s FOR UPDATE SKIP LOCKED) '
        'DELETE FROM %1$s WHERE ctid = ANY (ARRAY(SELECT p.c FROM picked p))'
        ' AND (tableoid, ctid) IN (SELECT p.t, p.c FROM picked p)',
        p_table, p_condition,
        CASE WHEN p_order IS NOT NULL THEN format(' ORDER BY %I', p_order) ELSE '' END,
        CASE WHEN p_limit IS NOT NULL THEN format(' LIMIT %s', p_limit) ELSE '' END)
$$;
COMMENT ON FUNCTION pgsweep.skip_locked_statement(regclass, text, name, integer) IS
    'The DELETE of the matching rows no one holds (by table and ctid), optionally the first N';
