-- Refuse (naming the index to build) unless a valid index of p_table leads with p_column: every
-- rule's batches walk its column in index order.
CREATE OR REPLACE FUNCTION pgsweep.require_leading_index(p_table regclass, p_column name)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND a.attname = p_column AND i.indisvalid)
    THEN
        RAISE EXCEPTION 'no valid index on % leads with column "%"', p_table, p_column
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('CREATE INDEX CONCURRENTLY ON %s (%I);', p_table, p_column);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.require_leading_index(regclass, name) IS
    'Raise, naming the index to build, unless an index of the table leads with the column';
