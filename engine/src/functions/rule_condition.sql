-- The garbage of one rule as an SQL condition, within [p_from, p_before) of its column when
-- given. Bounds are text (a batch hands its end to the next), read back as the column's type.
--   age:       column < cutoff; for an epoch number also column >= the floor (2000-01-01 in the
--              rule's unit: see pgsweep.epoch_unit_problem);
--   condition: the condition alone;
--   orphan:    the key is not NULL and no parent row has it;
-- and the rule's condition, if any, and (1.2) no referencing row of a 'keep' dependent. Outside age rules the column may be NULL in garbage rows:
-- the last range of a sweep (a start, no end) includes them, as the probe sorts them last.
-- The parent's columns are renamed in the orphan's subquery, so that no parent column captures
-- a child column of the same name in the key: for a key column the planner makes it an
-- anti-join; a key expression probes the parent's index row by row.
-- p_as_of_now: the cutoff as an expression of now() (cutoff_expression) rather than a literal,
-- for a condition kept and evaluated later (a view that hides expired rows).
CREATE OR REPLACE FUNCTION pgsweep.rule_condition(
    p_rule pgsweep.expiry_rule, p_from text DEFAULT NULL, p_before text DEFAULT NULL,
    p_as_of_now boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_column name := p_rule.column_name;
    -- The bounds are cast to the column's type; a char(n) column's regtype reads "character",
    -- which as a cast is char(1) and would cut each bound to its first letter.
    v_regtype regtype := pgsweep.column_type(p_rule.table_name, v_column);
    v_type   text := CASE v_regtype WHEN 'character'::regtype THEN 'pg_catalog.bpchar'
                                    ELSE v_regtype::text END;
    v_scale  integer;
    v_key    text := coalesce(p_rule.child_key, format('%I', v_column));
    v_parts  text[] := '{}'::text[];
    v_aliases text;
    v_parent_key text;
BEGIN
    IF p_rule.kind = 'orphan' THEN
        -- The parent's columns are renamed pgsweep_p1, pgsweep_p2, ... in the subquery, so that
        -- no parent column captures a child column of the same name in the key; the planner
        -- still turns NOT EXISTS into an anti-join.
        SELECT string_agg(format('pgsweep_p%s', a.n), ', ' ORDER BY a.n),
               max(format('pgsweep_p%s', a.n)) FILTER (WHERE a.attname = p_rule.parent_key)
          INTO v_aliases, v_parent_key
          FROM (SELECT pa.attname, row_number() OVER (ORDER BY pa.attnum) AS n
                  FROM pg_attribute pa
                 WHERE pa.attrelid = p_rule.parent_table AND pa.attnum > 0
                   AND NOT pa.attisdropped) a;
        IF p_rule.child_key IS NULL THEN
            v_parts := v_parts || format(
                '%1$s IS NOT NULL AND NOT EXISTS (SELECT FROM %2$s AS p (%3$s) WHERE p.%4$s = %1$s)',
                v_key, p_rule.parent_table, v_aliases, v_parent_key);
        ELSE
            -- A key expression is computed once per child, then probes the parent's index.
            v_parts := v_parts || format(
                '(%1$s) IS NOT NULL AND NOT EXISTS (SELECT FROM (SELECT %1$s AS k) c'
                ' JOIN %2$s AS p (%3$s) ON p.%4$s = c.k)',
                v_key, p_rule.parent_table, v_aliases, v_parent_key);
        END IF;
    ELSIF p_rule.kind = 'age' THEN
        -- Separate statements: the executor checks the right to run every function an
        -- expression names, even one a CASE never reaches.
        IF p_as_of_now THEN
            v_parts := v_parts || format('%I < %s', v_column, pgsweep.cutoff_expression(p_rule));
        ELSE
            v_parts := v_parts || format('%I < %s', v_column, pgsweep.cutoff_literal(p_rule));
        END IF;
        -- A time column holds no epoch number (epoch_scale would say NULL): not asked again.
        IF v_regtype NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
            v_scale := pgsweep.epoch_scale(p_rule);
        END IF;
        IF v_scale IS NOT NULL THEN
            v_parts := v_parts || format('%I >= %s', v_column, 946684800::bigint * v_scale);
        END IF;
    END IF;
    IF p_rule.condition IS NOT NULL THEN
        v_parts := v_parts || format('(%s)', p_rule.condition);
    END IF;
    -- 'keep' dependents (pgsweep.set_dependent): garbage that a row of theirs references stays,
    -- so counts, the dry run and the delete agree. Not in a kept condition (a live view): a
    -- kept row is still expired for a reader, and the view reads the rule's table alone.
    IF NOT p_as_of_now AND EXISTS (SELECT FROM pgsweep.rule_dependent d
                                    WHERE d.table_name = p_rule.table_name
                                      AND d.column_name = p_rule.column_name
                                      AND d.action = 'keep') THEN
        v_parts := v_parts || ARRAY(
            SELECT format('NOT %s', pgsweep.referenced_condition(d.constraint_oid))
              FROM pgsweep.rule_dependents(p_rule) WITH ORDINALITY d
             WHERE d.action = 'keep' AND d.referenced_table = p_rule.table_name
             ORDER BY d.ordinality);
    END IF;
    -- NULLs of the walked column can be garbage only outside age rules, in a column that allows
    -- them, and (orphans) when the key is an expression rather than the column itself.
    -- (Nested, so that the whole rule's condition, p_from NULL, asks the catalog nothing here.)
    IF p_from IS NOT NULL THEN
        IF p_before IS NULL AND p_rule.kind <> 'age'
           AND NOT (p_rule.kind = 'orphan' AND p_rule.child_key IS NULL)
           AND NOT (SELECT a.attnotnull FROM pg_attribute a
                     WHERE a.attrelid = p_rule.table_name AND a.attname = v_column) THEN
            v_parts := v_parts || format('(%I >= %L::%s OR %I IS NULL)', v_column, p_from, v_type,
                                         v_column);
        ELSE
            v_parts := v_parts || format('%I >= %L::%s', v_column, p_from, v_type);
        END IF;
    END IF;
    IF p_before IS NOT NULL THEN
        v_parts := v_parts || format('%I < %L::%s', v_column, p_before, v_type);
    END IF;
    RETURN array_to_string(v_parts, ' AND ');
END $$;
COMMENT ON FUNCTION pgsweep.rule_condition(pgsweep.expiry_rule, text, text, boolean) IS
    'The rows a rule marks as garbage, optionally within [from, before), as an SQL condition';
