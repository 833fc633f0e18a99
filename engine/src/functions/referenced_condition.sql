-- "A row of the referencing table points at this row" through the foreign key p_constraint, as
-- a condition on the referenced table's row (its columns unqualified, as in rule_condition).
-- The referencing table's columns are renamed pgsweep_d1, pgsweep_d2, ... in the subquery so
-- that none of them captures a column of the referenced row with the same name.
CREATE OR REPLACE FUNCTION pgsweep.referenced_condition(p_constraint oid)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table    regclass;
    v_aliases  text;
    v_inner    text;
    v_outer    text;
BEGIN
    SELECT c.conrelid INTO v_table FROM pg_constraint c WHERE c.oid = p_constraint;
    WITH cols AS (
        SELECT pa.attnum, format('pgsweep_d%s', row_number() OVER (ORDER BY pa.attnum)) AS alias
          FROM pg_attribute pa
         WHERE pa.attrelid = v_table AND pa.attnum > 0 AND NOT pa.attisdropped)
    SELECT (SELECT string_agg(cols.alias, ', ' ORDER BY cols.attnum) FROM cols),
           string_agg(format('d.%s', cols.alias), ', ' ORDER BY k.i),
           string_agg(format('%I', ra.attname), ', ' ORDER BY k.i)
      INTO v_aliases, v_inner, v_outer
      FROM pg_constraint c
     CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY k (n, rn, i)
      JOIN cols ON cols.attnum = k.n
      JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.rn
     WHERE c.oid = p_constraint;
    RETURN format('EXISTS (SELECT FROM %s AS d (%s) WHERE (%s) = (%s))',
                  v_table, v_aliases, v_inner, v_outer);
END $$;
COMMENT ON FUNCTION pgsweep.referenced_condition(oid) IS
    'A condition on a referenced row: some row references it through this foreign key';
