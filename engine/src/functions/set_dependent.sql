-- Say what a rule's delete does to the rows that reference its garbage through the foreign key
-- p_constraint (docs/rules.md, "Dependents"): 'delete' them, 'set null' their referencing
-- columns (both in the same statement as the garbage), or 'keep' the garbage they reference;
-- NULL forgets the key. The key must reference the rule's table, or, one level further, the
-- table of one of the rule's 'delete' dependents (then 'keep' is refused: its rows are deleted
-- because their own parent is). p_referencing_table picks the key when two tables have one of
-- that name. Refused: a key of the rule's table onto itself, 'set null' on a NOT NULL column,
-- and 'set null' and 'delete' on one table (one statement would change a row twice).
CREATE OR REPLACE FUNCTION pgsweep.set_dependent(
    p_table regclass, p_column name, p_constraint name, p_action text,
    p_referencing_table regclass DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule pgsweep.expiry_rule;
    v_key  pg_constraint;
    v_keys integer;
BEGIN
    SELECT r.* INTO v_rule FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no rule on column "%"', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one first (pgsweep.add_rule).';
    END IF;
    IF p_action IS NULL THEN
        DELETE FROM pgsweep.rule_dependent d
         WHERE d.table_name = p_table AND d.column_name = p_column
           AND d.constraint_name = p_constraint
           AND (p_referencing_table IS NULL OR d.referencing_table = p_referencing_table);
        RETURN;
    END IF;
    IF p_action NOT IN ('delete', 'set null', 'keep') THEN
        RAISE EXCEPTION 'unknown dependent action "%"', p_action
            USING ERRCODE = 'invalid_parameter_value', HINT = 'One of: delete, set null, keep.';
    END IF;
    SELECT c.* INTO v_key
      FROM pg_constraint c
     WHERE c.contype = 'f' AND c.conname = p_constraint AND c.conparentid = 0
       AND (p_referencing_table IS NULL OR c.conrelid = p_referencing_table)
       AND (c.confrelid = p_table
            OR c.confrelid IN (SELECT d.referencing_table FROM pgsweep.rule_dependents(v_rule) d
                                WHERE d.action = 'delete' AND d.referenced_table = p_table));
    SELECT count(*) INTO v_keys
      FROM pg_constraint c
     WHERE c.contype = 'f' AND c.conname = p_constraint AND c.conparentid = 0
       AND (p_referencing_table IS NULL OR c.conrelid = p_referencing_table)
       AND (c.confrelid = p_table
            OR c.confrelid IN (SELECT d.referencing_table FROM pgsweep.rule_dependents(v_rule) d
                                WHERE d.action = 'delete' AND d.referenced_table = p_table));
    IF v_key.oid IS NULL THEN
        v_keys := 0;
    END IF;
    IF v_keys = 0 THEN
        RAISE EXCEPTION 'no foreign key "%" references % (or a table its rule''s ''delete'' dependents delete from)',
            p_constraint, p_table
            USING ERRCODE = 'undefined_object',
                  HINT = 'The keys referencing it: SELECT conrelid::regclass, conname FROM pg_constraint WHERE confrelid = '
                         || quote_literal(p_table::text) || '::regclass;';
    ELSIF v_keys > 1 THEN
        RAISE EXCEPTION 'foreign key name "%" is ambiguous: % tables have one', p_constraint, v_keys
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Name its table (p_referencing_table).';
    END IF;
    IF v_key.conrelid = v_key.confrelid OR v_key.conrelid = p_table THEN
        RAISE EXCEPTION 'foreign key "%" of % references its own table: not handled', p_constraint,
            v_key.conrelid::regclass USING ERRCODE = 'feature_not_supported';
    END IF;
    IF v_key.confrelid <> p_table AND p_action = 'keep' THEN
        RAISE EXCEPTION 'foreign key "%" references a dependent that is deleted: ''keep'' cannot keep it',
            p_constraint USING ERRCODE = 'invalid_parameter_value',
                               HINT = 'Use delete or set null, or keep the dependent itself.';
    END IF;
    IF p_action = 'set null' AND EXISTS (
           SELECT FROM pg_attribute a
            WHERE a.attrelid = v_key.conrelid AND a.attnum = ANY (v_key.conkey) AND a.attnotnull) THEN
        RAISE EXCEPTION 'foreign key "%" of %: a referencing column is NOT NULL, it cannot be set null',
            p_constraint, v_key.conrelid::regclass USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM pgsweep.rule_dependent d
                WHERE d.table_name = p_table AND d.column_name = p_column
                  AND d.referencing_table = v_key.conrelid AND d.constraint_name <> p_constraint
                  AND d.action IN ('delete', 'set null') AND p_action IN ('delete', 'set null')
                  AND d.action <> p_action) THEN
        RAISE EXCEPTION 'table % already has a dependent of this rule with the other action',
            v_key.conrelid::regclass
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'One statement would both delete and update a row of it.';
    END IF;
    INSERT INTO pgsweep.rule_dependent AS d
           (table_name, column_name, referencing_table, constraint_name, action)
    VALUES (p_table, p_column, v_key.conrelid, p_constraint, p_action)
    ON CONFLICT (table_name, column_name, referencing_table, constraint_name)
    DO UPDATE SET action = EXCLUDED.action;
END $$;
COMMENT ON FUNCTION pgsweep.set_dependent(regclass, name, name, text, regclass) IS
    'What a rule''s delete does to the rows referencing its garbage through a foreign key (NULL: forget)';
