-- Where a sweep batch starting at the rows of p_condition ends: the value p_batch_size rows
-- further on in the rule's index (an index-only scan). No row: the batch is the rest.
CREATE OR REPLACE FUNCTION pgsweep.batch_boundary_statement(
    p_table regclass, p_column name, p_condition text, p_batch_size integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        'SELECT b.boundary::text'
        '  FROM (SELECT %1$I AS boundary FROM %2$s WHERE %3$s ORDER BY %1$I'
        '        OFFSET %4$s LIMIT 1) b',
        p_column, p_table, p_condition, p_batch_size)
$$;
COMMENT ON FUNCTION pgsweep.batch_boundary_statement(regclass, name, text, integer) IS
    'The probe that finds where a sweep batch ends (for EXPLAIN)';
