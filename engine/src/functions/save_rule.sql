-- Record a checked rule (a keep_for with a negative field refused), replacing the one with its (table, column) if any, with the type its
-- column has now: the type its values are read as (a later retype is a problem: rule_problem).
CREATE OR REPLACE FUNCTION pgsweep.save_rule(p_rule pgsweep.expiry_rule)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Every way a rule is registered comes here (add_rule and the other add_ functions, the
    -- policy files through add_rule): a keep_for with a negative field is refused whatever its
    -- total, which the table's CHECK (keep_for >= '0') alone lets through.
    IF pgsweep.negative_interval_field(p_rule.keep_for) THEN
        RAISE EXCEPTION 'keep_for % has a negative part', quote_literal(p_rule.keep_for::text)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give how long a row is kept past its expiry with no negative field, e.g. ''30 days''.';
    END IF;
    INSERT INTO pgsweep.expiry_rule AS r
           (table_name, column_name, keep_for, value_zone, epoch_unit, kind, condition,
            parent_table, parent_key, child_key, archive_to, registered_type)
    VALUES (p_rule.table_name, p_rule.column_name, p_rule.keep_for, p_rule.value_zone,
            p_rule.epoch_unit, p_rule.kind, p_rule.condition, p_rule.parent_table,
            p_rule.parent_key, p_rule.child_key, p_rule.archive_to,
            pgsweep.column_type(p_rule.table_name, p_rule.column_name))
    ON CONFLICT (table_name, column_name) DO UPDATE
       SET keep_for = excluded.keep_for, value_zone = excluded.value_zone,
           epoch_unit = excluded.epoch_unit, kind = excluded.kind,
           condition = excluded.condition, parent_table = excluded.parent_table,
           parent_key = excluded.parent_key, child_key = excluded.child_key,
           registered_type = excluded.registered_type;
    -- archive_to is the rule's own setting (pgsweep.set_archive): re-registering keeps it.
END $$;
COMMENT ON FUNCTION pgsweep.save_rule(pgsweep.expiry_rule) IS
    'Insert or replace a rule that its add_ function has checked';
