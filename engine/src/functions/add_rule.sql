-- Bring a table under the lifecycle: checks the column's type, that an index leads with the
-- column (so every purge is index-driven) and, for a timestamp or date column, the zone its
-- values are in (UTC for a new rule; an update without a zone keeps the rule's); then records
-- (or updates) the rule. A timestamptz or numeric
-- column carries no zone, so giving one is an error rather than a setting that does nothing.
CREATE OR REPLACE FUNCTION pgsweep.add_rule(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0', p_value_zone text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_table, p_column);
    v_zone text;
    v_rule pgsweep.expiry_rule;
BEGIN
    IF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        -- Updating a rule without naming a zone keeps the zone it has.
        SELECT coalesce(p_value_zone, r.value_zone) INTO v_zone FROM pgsweep.expiry_rule r
         WHERE r.table_name = p_table AND r.column_name = p_column;
        v_zone := coalesce(v_zone, p_value_zone, 'UTC');
        -- Zone names only: an abbreviation's meaning depends on the session's
        -- timezone_abbreviations ('IST' is India or Israel).
        IF NOT EXISTS (SELECT FROM pg_timezone_names WHERE name = v_zone) THEN
            RAISE EXCEPTION 'unknown time zone "%"', v_zone
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name one of pg_timezone_names, e.g. UTC or Europe/Berlin.';
        END IF;
    ELSIF p_value_zone IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % has type %, which carries no time zone to declare',
            p_column, p_table, v_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'value_zone is for timestamp (without time zone) and date columns.';
    END IF;
    -- Field by field: the rule's other columns (lag_target, …) stay NULL here and untouched in
    -- the update below.
    v_rule.table_name := p_table;
    v_rule.column_name := p_column;
    v_rule.keep_for := coalesce(p_keep_for, '0');
    v_rule.value_zone := v_zone;
    PERFORM pgsweep.cutoff_literal(v_rule);
    IF NOT EXISTS (
        SELECT FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND a.attname = p_column AND i.indisvalid)
    THEN
        RAISE EXCEPTION 'no valid index on % leads with column "%"', p_table, p_column
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('CREATE INDEX CONCURRENTLY ON %s (%I);', p_table, p_column);
    END IF;
    INSERT INTO pgsweep.expiry_rule (table_name, column_name, keep_for, value_zone)
    VALUES (v_rule.table_name, v_rule.column_name, v_rule.keep_for, v_rule.value_zone)
    ON CONFLICT (table_name, column_name)
    DO UPDATE SET keep_for = excluded.keep_for, value_zone = excluded.value_zone;
END $$;
COMMENT ON FUNCTION pgsweep.add_rule(regclass, name, interval, text) IS
    'Register (or update) an expiry rule after checking its column type, index and zone';
