-- Every rule, with what an operator asks first: the column's type, the zone its values are in,
-- and why the rule cannot run, if it cannot (NULL: it runs); since 1.1 (appended) its kind, epoch
-- unit, condition and, for orphans, its parent; since 1.2 (appended) the column type it was
-- registered for. The pgsweep command reads this.
CREATE OR REPLACE VIEW pgsweep.rules AS
SELECT r.table_name::text AS table_name,
       r.column_name,
       r.keep_for,
       r.value_zone,
       a.atttypid::regtype AS column_type,
       pgsweep.rule_problem(r) AS problem,
       r.kind,
       r.epoch_unit,
       r.condition,
       r.parent_table::text AS parent_table,
       r.parent_key,
       r.child_key,
       r.archive_to::text AS archive_to,
       r.registered_type
  FROM pgsweep.expiry_rule r
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = r.table_name AND a.attname = r.column_name
        AND a.attnum > 0 AND NOT a.attisdropped;
COMMENT ON VIEW pgsweep.rules IS
    'Expiry rules with their column type, value zone and problem (NULL: the rule runs)';
