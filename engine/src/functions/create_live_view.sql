-- A view of p_table without the rows its rules mark as garbage, so an app reading it never
-- serves an expired row even while the cleanup is behind (docs/rules.md). Named p_view, or
-- <schema>.<table>_live when NULL (pgsweep.live_view_name: a long name is cut and given a
-- hash of the table's name); created or replaced (run it again after changing the table's
-- rules: the view holds their conditions as they were), but never over a relation of that
-- name that is not a live view of p_table this function made. security_invoker: the reader's
-- own rights and row-level security apply, never the creator's. The cutoffs are expressions of
-- now() (rule_condition(..., p_as_of_now => true)), evaluated at each read. Returns the view.
-- p_view is a name as SQL writes it, [schema.]view (parse_ident: "My View" keeps its case and
-- space, my_view is folded to lower case; without a schema, the table's); anything else is
-- refused before any statement runs, and each part is quoted (%I) into the statements.
CREATE OR REPLACE FUNCTION pgsweep.create_live_view(p_table regclass, p_view text DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  text;
    v_marks text;
    v_parts text[];
    v_existing regclass;
BEGIN
    IF p_view IS NOT NULL THEN
        BEGIN
            v_parts := parse_ident(p_view);
        EXCEPTION WHEN invalid_parameter_value THEN
            v_parts := NULL;
        END;
        IF cardinality(v_parts) NOT BETWEEN 1 AND 2 OR v_parts IS NULL THEN
            RAISE EXCEPTION 'pgsweep: % is not a view name ([schema.]name)', quote_literal(p_view)
                USING ERRCODE = 'invalid_name',
                      HINT = 'Double-quote a name with spaces or capitals: "My view".';
        END IF;
    END IF;
    SELECT string_agg(format('(%s)', pgsweep.rule_condition(r, NULL, NULL, true)), ' OR '
                      ORDER BY r.column_name)
      INTO v_marks
      FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND pgsweep.rule_problem(r) IS NULL;
    IF v_marks IS NULL THEN
        RAISE EXCEPTION 'table % has no expiry rule that can run', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    -- A name without a schema goes in the table's (the pinned search_path would say pg_catalog).
    SELECT CASE cardinality(v_parts)
                WHEN 2 THEN format('%I.%I', v_parts[1], v_parts[2])
                WHEN 1 THEN format('%I.%I', n.nspname, v_parts[1])
                ELSE format('%I.%I', n.nspname, pgsweep.live_view_name(c.relname)) END INTO v_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
    -- Replace only a live view of this table made here (its comment says so, and it reads the
    -- table): the app's own view of that name (one that reads the table with a filter of its
    -- own, say), another table's (two long names cut to the same 63 bytes, or a name given
    -- twice), or any other relation is refused, never silently replaced.
    SELECT v.oid INTO v_existing FROM pg_class v
     WHERE v.oid = to_regclass(v_name)
       AND NOT (v.relkind = 'v'
                AND coalesce(obj_description(v.oid, 'pg_class'), '') LIKE '% (pgsweep.create_live_view)'
                AND EXISTS (SELECT FROM pg_rewrite w
                              JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass
                                              AND d.objid = w.oid
                             WHERE w.ev_class = v.oid AND d.refclassid = 'pg_class'::regclass
                               AND d.refobjid = p_table));
    IF v_existing IS NOT NULL THEN
        RAISE EXCEPTION 'pgsweep: % already exists and is not a live view of % made by'
                        ' pgsweep.create_live_view', v_existing, p_table
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Name the view: SELECT pgsweep.create_live_view(table, ''schema.view'').';
    END IF;
    /* Every part is regclass output, %I-quoted (the view's name too, part by part) or built by
     * rule_condition from quoted parts.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS'
                   ' SELECT * FROM %s WHERE (%s) IS NOT TRUE', v_name, p_table, v_marks);
    EXECUTE format('COMMENT ON VIEW %s IS %L', v_name,
                   format('The rows of %s no pgsweep rule marks as garbage (pgsweep.create_live_view)',
                          p_table));
    RETURN to_regclass(v_name);
END $$;
COMMENT ON FUNCTION pgsweep.create_live_view(regclass, text) IS
    'Create (or refresh) a view of a table without the rows its rules mark as garbage';
