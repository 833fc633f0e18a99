-- Why a rule cannot run now, or NULL when it can: its table or column is gone (dropped, or the
-- column renamed, where no event trigger removed the rule at the time) or the column's type
-- changed to one that cannot expire, or (age rules) to any other type than the one the rule was
-- registered for: timestamptz to timestamp, a number to a timestamp, ... change what a value
-- means, and the rule must be told again (its zone, its unit) rather than guess; or the table
-- it archives into is gone. Every consumer skips such a rule, says so, and goes on with the
-- others; pgsweep verify fails it.
CREATE OR REPLACE FUNCTION pgsweep.rule_problem(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL, not SQL: it keeps its plan from call to call (a SQL function with a SET
-- clause is planned again at every call, and every sweep step asks).
AS $$
BEGIN
    RETURN (SELECT CASE
            WHEN NOT EXISTS (SELECT FROM pg_class c
                              WHERE c.oid = p_rule.table_name AND c.relkind IN ('r', 'p'))
                THEN format('table %s no longer exists', p_rule.table_name::oid)
            WHEN a.atttypid IS NULL
                THEN format('column %I of %s no longer exists', p_rule.column_name, p_rule.table_name)
            WHEN p_rule.kind = 'orphan' AND NOT EXISTS (
                     SELECT FROM pg_attribute pa
                      WHERE pa.attrelid = p_rule.parent_table AND pa.attname = p_rule.parent_key
                        AND pa.attnum > 0 AND NOT pa.attisdropped)
                THEN format('parent key %I of %s no longer exists', p_rule.parent_key,
                            p_rule.parent_table::oid)
            -- A dropped archive leaves its oid behind: every batch would fail on it.
            WHEN p_rule.archive_to IS NOT NULL AND NOT EXISTS (
                     SELECT FROM pg_class c WHERE c.oid = p_rule.archive_to AND c.relkind IN ('r', 'p'))
                THEN format('its archive table %s no longer exists (pgsweep.set_archive(%L, %L, '''')'
                            ' to delete without archiving, or point it at a new archive)',
                            p_rule.archive_to::oid, p_rule.table_name, p_rule.column_name)
            WHEN p_rule.kind = 'age' AND a.atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype,
                                    'smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                                    'numeric'::regtype, 'double precision'::regtype, 'real'::regtype)
                THEN format('column %I of %s has type %s, which cannot expire',
                            p_rule.column_name, p_rule.table_name, a.atttypid::regtype)
            WHEN p_rule.kind = 'age' AND a.atttypid <> p_rule.registered_type
                THEN format('column %I of %s was %s when the rule was registered and is %s now:'
                            ' register the rule again with pgsweep.add_rule(%L, %L, %L%s)',
                            p_rule.column_name, p_rule.table_name, p_rule.registered_type,
                            a.atttypid::regtype, p_rule.table_name::text, p_rule.column_name,
                            p_rule.keep_for,
                            CASE WHEN a.atttypid IN ('timestamp'::regtype, 'date'::regtype)
                                 THEN ', p_value_zone => ''<the zone its values are in>'''
                                 WHEN a.atttypid IN ('timestamptz'::regtype) THEN ''
                                 ELSE ', p_epoch_unit => ''seconds'' or ''milliseconds''' END)
        END
          FROM (SELECT NULL) AS one
          LEFT JOIN pg_attribute a
                 ON a.attrelid = p_rule.table_name AND a.attname = p_rule.column_name
                AND a.attnum > 0 AND NOT a.attisdropped);
END $$;
COMMENT ON FUNCTION pgsweep.rule_problem(pgsweep.expiry_rule) IS
    'Why a rule cannot run (its table or column is gone, retyped or cannot expire), or NULL';
