-- The partitions of a rule's table that hold nothing but garbage: for an age rule without a
-- condition of its own, on a table range-partitioned on the rule's column alone, those whose
-- upper bound is at or before the cutoff (every value they can hold is < upper <= cutoff). Never the DEFAULT partition, nor one bounded by
-- MAXVALUE. Bounds are read from pg_class.relpartbound, deparsed in the settings below and cast
-- back to the column's type. detach_concurrently: DETACH ... CONCURRENTLY can take it (the table
-- has no DEFAULT partition and none half-detached: PostgreSQL forbids it then).
CREATE OR REPLACE FUNCTION pgsweep.expired_partitions(p_rule pgsweep.expiry_rule)
RETURNS TABLE (partition regclass, upper_bound text, detach_pending boolean, detach_concurrently boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET timezone = 'UTC'
AS $$
DECLARE
    v_type    regtype;
    v_cutoff  text;
    v_default boolean;
    v_part    record;
    v_expired boolean;
BEGIN
    -- Only a rule that marks a row by its column's age alone marks every row of such a
    -- partition: never one with a condition of its own, nor another kind of rule. Nor a rule
    -- that archives its rows (archive_to): they must move row by row into its archive (its
    -- expired partitions can be kept whole instead: partition_archive_schema).
    IF p_rule.kind <> 'age' OR p_rule.condition IS NOT NULL OR p_rule.archive_to IS NOT NULL THEN
        RETURN;
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_partitioned_table p
          JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
         WHERE p.partrelid = p_rule.table_name AND p.partstrat = 'r' AND p.partnatts = 1
           AND a.attname = p_rule.column_name)
    THEN
        RETURN;
    END IF;
    v_type := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    v_cutoff := pgsweep.cutoff_literal(p_rule);
    -- A DEFAULT partition forbids a concurrent detach, and so does one already half-detached.
    v_default := EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                          WHERE i.inhparent = p_rule.table_name
                            AND (pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
                                 OR i.inhdetachpending));
    FOR v_part IN
        SELECT c.oid::regclass AS part, i.inhdetachpending AS pending,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM ' TO \((.*)\)$') AS upper,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM '^FOR VALUES FROM \((.*)\) TO ') AS lower
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = p_rule.table_name
         ORDER BY i.inhdetachpending DESC, c.relname
    LOOP
        CONTINUE WHEN v_part.upper IS NULL OR v_part.upper IN ('MAXVALUE', 'MINVALUE');
        -- An epoch number below the floor (before 2000: rule_condition) is never garbage, so a
        -- partition that can hold one is never garbage whole.
        CONTINUE WHEN pgsweep.epoch_scale(p_rule) IS NOT NULL AND CASE
            WHEN v_part.lower IS NULL OR v_part.lower = 'MINVALUE' THEN true
            ELSE btrim(v_part.lower, '''')::numeric < 946684800::numeric * pgsweep.epoch_scale(p_rule) END;
        /* The bound is a constant as the server deparses it (a quoted literal or a number),
         * the cutoff a literal built by cutoff_literal with %L.
         * @plpgsql_check_options: security_warnings = false
         */
        EXECUTE format('SELECT (%s)::%s <= %s', v_part.upper, v_type, v_cutoff) INTO v_expired;
        CONTINUE WHEN NOT v_expired;
        partition := v_part.part;
        upper_bound := v_part.upper;
        detach_pending := v_part.pending;
        detach_concurrently := NOT v_default;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.expired_partitions(pgsweep.expiry_rule) IS
    'Partitions of a rule''s table whose upper bound is at or before the cutoff (never DEFAULT)';
