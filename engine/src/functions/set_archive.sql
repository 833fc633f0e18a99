-- Make a rule move its rows into an archive table as it deletes them (docs/rules.md), or, with
-- p_archive => '' , stop archiving. The archive is p_archive, or <schema>.<table>_archive when
-- NULL; created when missing (the table's columns, then archived_at timestamptz and
-- archived_by text, and an index on archived_at so that the archive can have its own rule:
-- pgsweep.add_rule(archive, 'archived_at', '90 days')); when it exists, checked: every column
-- of the table, same name and type, plus those two, and the same owner as the table (its
-- triggers run with the sweep's rights, as the table's own do). Returns the archive.
CREATE OR REPLACE FUNCTION pgsweep.set_archive(
    p_table regclass, p_column name, p_archive text DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_archive regclass;
    v_name    text;
    v_missing text;
BEGIN
    IF NOT EXISTS (SELECT FROM pgsweep.expiry_rule r
                    WHERE r.table_name = p_table AND r.column_name = p_column) THEN
        RAISE EXCEPTION 'table % has no rule on column "%"', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one first (pgsweep.add_rule).';
    END IF;
    IF p_archive = '' THEN
        UPDATE pgsweep.expiry_rule r SET archive_to = NULL
         WHERE r.table_name = p_table AND r.column_name = p_column;
        RETURN NULL;
    END IF;
    -- A name without a schema is in the table's schema (never in this function's search_path,
    -- which is pg_catalog's); each part is quoted again from what parse_ident read.
    SELECT CASE WHEN p_archive IS NULL THEN format('%I.%I', n.nspname, c.relname || '_archive')
                WHEN cardinality(parse_ident(p_archive)) = 1
                THEN format('%I.%I', n.nspname, (parse_ident(p_archive))[1])
                WHEN cardinality(parse_ident(p_archive)) = 2
                THEN format('%I.%I', (parse_ident(p_archive))[1], (parse_ident(p_archive))[2])
           END INTO v_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'archive name "%" is not [schema.]table', p_archive
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_archive := to_regclass(v_name);
    IF v_archive IS NULL THEN
        /* The table is regclass output, the archive's name is quoted part by part (%I).
         * @plpgsql_check_options: security_warnings = false
         */
        EXECUTE format('CREATE TABLE %s (LIKE %s)', v_name, p_table);
        v_archive := to_regclass(v_name);
        EXECUTE format('ALTER TABLE %s ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),'
                       ' ADD COLUMN archived_by text NOT NULL', v_archive);
        EXECUTE format('CREATE INDEX ON %s (archived_at)', v_archive);
    END IF;
    IF v_archive = p_table THEN
        RAISE EXCEPTION 'a table cannot be its own archive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('%I %s', t.attname, format_type(t.atttypid, t.atttypmod)), ', ')
      INTO v_missing
      FROM (SELECT a.attname, a.atttypid, a.atttypmod FROM pg_attribute a
             WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
            UNION ALL SELECT 'archived_at', 'timestamptz'::regtype, -1
            UNION ALL SELECT 'archived_by', 'text'::regtype, -1) t
     WHERE NOT EXISTS (SELECT FROM pg_attribute b
                        WHERE b.attrelid = v_archive AND b.attname = t.attname
                          AND b.atttypid = t.atttypid AND NOT b.attisdropped
                          -- the same length or precision, or none: never a value cut short
                          AND (b.atttypmod = t.atttypmod OR b.atttypmod = -1));
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'archive % lacks columns of % it must hold: %', v_archive, p_table, v_missing
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF (SELECT c.relowner FROM pg_class c WHERE c.oid = v_archive)
       IS DISTINCT FROM (SELECT c.relowner FROM pg_class c WHERE c.oid = p_table) THEN
        RAISE EXCEPTION 'archive % has another owner than %', v_archive, p_table
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Its triggers would run with the sweep''s rights: give it the table''s owner.';
    END IF;
    UPDATE pgsweep.expiry_rule r SET archive_to = v_archive
     WHERE r.table_name = p_table AND r.column_name = p_column;
    RETURN v_archive;
END $$;
COMMENT ON FUNCTION pgsweep.set_archive(regclass, name, text) IS
    'Make a rule archive the rows it deletes (creating or checking the archive table), or stop';
