-- A purge's DELETE (p_delete, built by purge_statement or skip_locked_statement), made whole
-- for the rule, in one statement, so that nothing is lost, duplicated or left dangling between
-- the parts (a rolled-back batch undoes all of them):
--   its dependents (pgsweep.rule_dependent): the rows referencing a row deleted are deleted
--     ('delete') or have their referencing columns set NULL ('set null'), one data-modifying
--     CTE each reading the deleted rows' keys (RETURNING, so only rows really deleted count,
--     never rows the condition matched but a concurrent update saved); one level further, the
--     rows referencing a dependent deleted, the same way;
--   its archive: each row deleted is inserted into archive_to with every column of the table,
--     archived_at (now()) and archived_by (the rule, "table.column"), so nothing is archived
--     that was not deleted.
-- The foreign keys are checked at the end of the statement (or, deferred, when hold_parents
-- made them IMMEDIATE), after every part has run. ROW_COUNT is the rows deleted from the
-- rule's table: the rows archived, or the rows the final SELECT reads from gone. With no
-- archive and no dependent to act on, p_delete itself.
CREATE OR REPLACE FUNCTION pgsweep.archiving_statement(p_rule pgsweep.expiry_rule, p_delete text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dependent record;
    v_returning text;
    v_columns   text;
    v_parts     text[] := '{}'::text[];
    v_source    text;
BEGIN
    -- Most rules neither archive nor have a dependent to act on: answered from the rule's own
    -- rows, without rule_dependents' look-up of each key (a dependent whose key is gone still
    -- takes the test below).
    IF p_rule.archive_to IS NULL
       AND NOT EXISTS (SELECT FROM pgsweep.rule_dependent d
                        WHERE d.table_name = p_rule.table_name AND d.column_name = p_rule.column_name
                          AND d.action IN ('delete', 'set null')) THEN
        RETURN p_delete;
    END IF;
    IF p_rule.archive_to IS NULL
       AND NOT EXISTS (SELECT FROM pgsweep.rule_dependents(p_rule) d
                        WHERE d.action IN ('delete', 'set null')) THEN
        RETURN p_delete;
    END IF;
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_columns
      FROM pg_attribute a
     WHERE a.attrelid = p_rule.table_name AND a.attnum > 0 AND NOT a.attisdropped;
    IF p_rule.archive_to IS NOT NULL THEN
        v_returning := v_columns;
    ELSE
        SELECT string_agg(DISTINCT format('%I', c), ', ') INTO v_returning
          FROM pgsweep.rule_dependents(p_rule) d, unnest(d.referenced_columns) c
         WHERE d.referenced_table = p_rule.table_name AND d.action IN ('delete', 'set null');
    END IF;
    -- Each dependent's CTE is pgsweep_dependent_<n>, n its place in rule_dependents (nearest
    -- level first), so a CTE one level further names only earlier ones.
    FOR v_dependent IN
        SELECT d.* FROM pgsweep.rule_dependents(p_rule) WITH ORDINALITY d
         WHERE d.action IN ('delete', 'set null') ORDER BY d.ordinality
    LOOP
        IF v_dependent.referenced_table = p_rule.table_name THEN
            v_source := format('SELECT %s FROM gone', pgsweep.quoted_names(v_dependent.referenced_columns));
        ELSE
            -- One level further: the keys of the rows that table's 'delete' dependents deleted.
            SELECT string_agg(format('SELECT %s FROM pgsweep_dependent_%s',
                                     pgsweep.quoted_names(v_dependent.referenced_columns), e.ordinality),
                              ' UNION ALL ')
              INTO v_source
              FROM pgsweep.rule_dependents(p_rule) WITH ORDINALITY e
             WHERE e.referencing_table = v_dependent.referenced_table AND e.action = 'delete'
               AND e.referenced_table = p_rule.table_name;
            IF v_source IS NULL THEN
                CONTINUE;   -- nothing deletes from its table: nothing of it to act on
            END IF;
        END IF;
        IF v_dependent.action = 'delete' THEN
            v_parts := v_parts || format(
                'pgsweep_dependent_%s AS (DELETE FROM %s WHERE (%s) IN (%s)%s)',
                v_dependent.ordinality, v_dependent.referencing_table,
                pgsweep.quoted_names(v_dependent.referencing_columns), v_source,
                coalesce(' RETURNING ' || (
                    SELECT string_agg(DISTINCT format('%I', c), ', ')
                      FROM pgsweep.rule_dependents(p_rule) f, unnest(f.referenced_columns) c
                     WHERE f.referenced_table = v_dependent.referencing_table
                       AND f.action IN ('delete', 'set null')), ''));
        ELSE
            v_parts := v_parts || format(
                'pgsweep_dependent_%s AS (UPDATE %s SET %s WHERE (%s) IN (%s))',
                v_dependent.ordinality, v_dependent.referencing_table,
                array_to_string(ARRAY(SELECT format('%I = NULL', c)
                                        FROM unnest(v_dependent.referencing_columns) c), ', '),
                pgsweep.quoted_names(v_dependent.referencing_columns), v_source);
        END IF;
    END LOOP;
    RETURN format('WITH gone AS (%s RETURNING %s)', p_delete, v_returning)
        || CASE WHEN cardinality(v_parts) > 0 THEN ', ' || array_to_string(v_parts, ', ') ELSE '' END
        || CASE WHEN p_rule.archive_to IS NOT NULL THEN
               format(' INSERT INTO %s (%s, archived_at, archived_by) SELECT %s, now(), %L FROM gone',
                      p_rule.archive_to, v_columns, v_columns,
                      format('%s.%s', p_rule.table_name, p_rule.column_name))
           ELSE ' SELECT FROM gone' END;
END $$;
COMMENT ON FUNCTION pgsweep.archiving_statement(pgsweep.expiry_rule, text) IS
    'A purge''s DELETE, with its dependents'' deletes or updates and its archive''s insert, in one statement';
