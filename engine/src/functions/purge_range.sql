-- One batch of CALL pgsweep.sweep(): the rule's garbage from p_from (the start, when NULL) up to
-- the boundary, deleted in one pass. next_from is where the next batch starts, NULL when the
-- rule has no garbage left. An empty range means every row from p_from to the boundary shares
-- the boundary's value (tokens issued by one statement) or is held: then up to p_batch_size
-- rows of that value go by ctid, skipping held ones. The next batch probes again from the
-- value; once only held rows are left at it, the sweep moves past it.
CREATE OR REPLACE FUNCTION pgsweep.purge_range(
    p_rule pgsweep.expiry_rule, p_from text, p_batch_size integer,
    OUT deleted bigint, OUT next_from text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- next_from is a value of the column as text, read back by the next batch: render it in a form
-- that reads back exactly whatever the caller's settings (see cutoff_literal).
SET datestyle = 'ISO, YMD'
SET extra_float_digits = 3
AS $$
DECLARE
    v_table     regclass := p_rule.table_name;
    v_column    name := p_rule.column_name;
    v_condition text;
    v_type      text;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pgsweep.hold_parents(p_rule) THEN
        deleted := 0;
        RETURN;
    END IF;
    v_condition := pgsweep.rule_condition(p_rule, p_from);
    /* Built by batch_boundary_statement and rule_condition from quoted parts (%I, %L, regclass).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.batch_boundary_statement(v_table, v_column, v_condition, p_batch_size)
       INTO next_from;
    IF next_from IS NULL THEN
        deleted := pgsweep.delete_rows(v_table, v_condition, p_rule);
        RETURN;
    END IF;
    deleted := pgsweep.delete_rows(v_table, pgsweep.rule_condition(p_rule, p_from, next_from), p_rule);
    IF deleted > 0 THEN
        RETURN;
    END IF;
    -- As rule_condition: a char(n) column's bound is cast to bpchar, never to char(1).
    v_type := CASE pgsweep.column_type(v_table, v_column)
                  WHEN 'character'::regtype THEN 'pg_catalog.bpchar'
                  ELSE pgsweep.column_type(v_table, v_column)::text END;
    -- Through execute_delete, as every delete: its short lock wait, row security off.
    deleted := pgsweep.execute_delete(pgsweep.archiving_statement(p_rule,
        pgsweep.skip_locked_statement(
            v_table, format('%s AND %I = %L::%s', v_condition, v_column, next_from, v_type),
            NULL, p_batch_size)));
    IF deleted = 0 THEN
        -- Every row left at this value is held (they wait for the next run): the next value.
        -- (Fewer than a batch but more than none: the next probe finds a range past the value,
        -- or none; moving on already could skip a row whose update committed mid-statement.)
        EXECUTE format('SELECT min(%1$I)::text FROM %2$s WHERE %3$s AND %1$I > %4$L::%5$s',
                       v_column, v_table, v_condition, next_from, v_type)
           INTO next_from;
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.purge_range(pgsweep.expiry_rule, text, integer) IS
    'Delete one sweep batch of a rule in one pass; returns the count and where the next starts';
