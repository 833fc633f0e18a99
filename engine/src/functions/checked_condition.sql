-- A rule's condition, checked and returned in the form the engine stores and runs: deparsed by
-- the server from its parse tree (one expression, columns unqualified, every function and type
-- outside pg_catalog schema-qualified). Refused unless provably safe to re-evaluate at delete
-- time, with the rights of whoever runs the sweep:
--   * it parses as a CHECK constraint on a copy of the table's columns: one boolean expression
--     over those columns only, no subquery, aggregate or window function;
--   * every function it calls (operators' functions included) is a pg_catalog function marked
--     immutable or stable; every operator is pg_catalog's;
--   * every type it names or reads (constants, casts, columns) is pg_catalog's or an enum, so
--     no user-written input, output or domain-check function runs;
--   * no whole-row reference, no row comparison, no ";".
-- The copy is a temporary table dropped before returning; the condition text is parsed with
-- the caller's rights (this function is not SECURITY DEFINER).
CREATE OR REPLACE FUNCTION pgsweep.checked_condition(p_table regclass, p_condition text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_copy text := format('pgsweep_condition_%s', p_table::oid);
    v_tree text;
    v_expr text;
    v_bad  text;
    v_styles text[] := ARRAY[current_setting('datestyle'), current_setting('intervalstyle'),
                             current_setting('timezone')];
BEGIN
    IF p_condition IS NULL THEN
        RETURN NULL;
    END IF;
    IF strpos(p_condition, ';') > 0 THEN
        RAISE EXCEPTION 'a rule''s condition is one SQL expression and may not contain ";"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'In a string literal, write chr(59) for ";".';
    END IF;
    /* The table is regclass output, the copy's name quoted with %I; the condition is parsed
     * here on purpose, with the caller's rights, and only its deparsed form is kept.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('CREATE TEMP TABLE %I (LIKE %s)', v_copy, p_table);
    BEGIN
        EXECUTE format('ALTER TABLE pg_temp.%I ADD CONSTRAINT rule_condition CHECK (%s)',
                       v_copy, p_condition);
        -- Parsed above in the caller's DateStyle, IntervalStyle and TimeZone (what the caller
        -- meant by '05/01/2026'); written back in ISO 8601, postgres intervals and explicit UTC
        -- offsets, which every session reads back as the same values whatever its own styles.
        -- (Only for this statement: the caller's styles are put back at once.)
        PERFORM set_config('datestyle', 'ISO, YMD', true), set_config('intervalstyle', 'postgres', true),
                set_config('timezone', 'UTC', true);
        SELECT c.conbin::text, pg_get_expr(c.conbin, c.conrelid) INTO STRICT v_tree, v_expr
          FROM pg_constraint c
         WHERE c.conrelid = format('pg_temp.%I', v_copy)::regclass;
        PERFORM set_config('datestyle', v_styles[1], true), set_config('intervalstyle', v_styles[2], true),
                set_config('timezone', v_styles[3], true);
    EXCEPTION WHEN OTHERS THEN
        EXECUTE format('DROP TABLE pg_temp.%I', v_copy);
        RAISE EXCEPTION 'condition of a rule on %: %', p_table, SQLERRM
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A condition is one boolean expression over the table''s own columns,'
                         ' e.g. status = ''suspended'' or used_at IS NOT NULL.';
    END;
    EXECUTE format('DROP TABLE pg_temp.%I', v_copy);
    v_bad := substring(v_tree FROM '\{(SUBLINK|AGGREF|WINDOWFUNC|PARAM|NEXTVALUEEXPR|ROWCOMPAREEXPR'
                                   '|COERCETODOMAIN|CURRENTOFEXPR|GROUPINGFUNC)');
    IF v_bad IS NOT NULL OR v_tree ~ ':varattno 0 ' THEN
        RAISE EXCEPTION 'condition of a rule on % uses what a rule may not: %', p_table,
            coalesce(lower(v_bad), 'a whole-row reference')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Stable is not enough: table_to_xml and its siblings are stable pg_catalog functions that
    -- run a query on any relation (a view's functions included) with the sweeping role's
    -- rights; they, and anything else that runs SQL it is handed, are refused by name.
    SELECT string_agg(DISTINCT format('%s (%s)', p.oid::regprocedure,
                                      CASE WHEN p.pronamespace <> 'pg_catalog'::regnamespace
                                           THEN 'not a pg_catalog function'
                                           WHEN p.provolatile = 'v' THEN 'volatile'
                                           ELSE 'it runs a query' END),
                      ', ')
      INTO v_bad
      FROM (SELECT m[1]::oid AS f
              FROM regexp_matches(v_tree, ':(?:funcid|opfuncid|hashfuncid|negfuncid) (\d+)', 'g') m
            UNION
            SELECT o.oprcode::oid FROM regexp_matches(v_tree, ':opno (\d+)', 'g') m
              JOIN pg_operator o ON o.oid = m[1]::oid) used
      JOIN pg_proc p ON p.oid = used.f
     WHERE p.pronamespace <> 'pg_catalog'::regnamespace OR p.provolatile = 'v' OR p.prokind <> 'f'
        OR p.proname ~ '^(table|schema|database|query|cursor)_to_xml';
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % calls functions a sweep may not run: %',
            p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only immutable or stable pg_catalog functions and operators are allowed.';
    END IF;
    SELECT string_agg(DISTINCT o.oid::regoperator::text, ', ') INTO v_bad
      FROM regexp_matches(v_tree, ':opno (\d+)', 'g') m
      JOIN pg_operator o ON o.oid = m[1]::oid
     WHERE o.oprnamespace <> 'pg_catalog'::regnamespace;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % uses operators outside pg_catalog: %',
            p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(DISTINCT t.oid::regtype::text, ', ') INTO v_bad
      FROM regexp_matches(v_tree, ':[a-z_]*(?:type|typeid) (\d+)', 'g') m
      JOIN pg_type t ON t.oid = m[1]::oid
     WHERE t.typnamespace <> 'pg_catalog'::regnamespace AND t.typtype <> 'e';
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % uses types outside pg_catalog: %', p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Their input, output or check functions would run with the sweep''s rights.';
    END IF;
    RETURN v_expr;
END $$;
COMMENT ON FUNCTION pgsweep.checked_condition(regclass, text) IS
    'A rule condition checked as safe to re-run (pg_catalog immutable/stable only), deparsed';
