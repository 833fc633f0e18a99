-- Every dependent of every rule, and whether its foreign key is still there (problem NULL: it
-- is acted on; a dropped key or table is nothing to act on, and the rule runs without it).
CREATE OR REPLACE VIEW pgsweep.dependents AS
SELECT d.table_name::text AS table_name,
       d.column_name,
       d.referencing_table::text AS referencing_table,
       d.constraint_name,
       d.action,
       c.confrelid::regclass::text AS referenced_table,
       c.condeferred AS deferred,
       CASE WHEN c.oid IS NULL THEN 'the foreign key no longer exists' END AS problem
  FROM pgsweep.rule_dependent d
  LEFT JOIN pg_catalog.pg_constraint c
         ON c.conrelid = d.referencing_table AND c.conname = d.constraint_name
        AND c.contype = 'f' AND c.conparentid = 0;
COMMENT ON VIEW pgsweep.dependents IS
    'Per rule, what its delete does to the rows referencing its garbage, per foreign key';
