-- Bring a table under the lifecycle: checks the column's type, that an index leads with the
-- column (so every purge is index-driven) and, for a timestamp or date column, the zone its
-- values are in (UTC for a new rule; an update without a zone keeps the rule's); for a numeric
-- column, the unit of its epoch values (seconds for a new rule; an update without one keeps the
-- rule's), refused when most of the values already there are implausible in that unit
-- (pgsweep.epoch_unit_problem); an optional condition on the table's own columns that a row
-- must also meet (pgsweep.checked_condition). Then records (or updates) the rule. A
-- timestamptz or numeric column carries no zone, and a non-numeric one no unit, so giving one
-- is an error rather than a setting that does nothing.
CREATE OR REPLACE FUNCTION pgsweep.add_rule(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0', p_value_zone text DEFAULT NULL,
    p_epoch_unit text DEFAULT NULL, p_condition text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_table, p_column);
    v_old  pgsweep.expiry_rule;
    v_zone text;
    v_unit text;
    v_rule pgsweep.expiry_rule;
    v_problem text;
BEGIN
    SELECT r.* INTO v_old FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        -- Updating a rule without naming a zone keeps the zone it has.
        v_zone := coalesce(p_value_zone, v_old.value_zone, 'UTC');
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
    IF v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                  'numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
        v_unit := coalesce(p_epoch_unit, v_old.epoch_unit, 'seconds');
        IF v_unit NOT IN ('seconds', 'milliseconds') THEN
            RAISE EXCEPTION 'unknown epoch unit "%"', v_unit
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Say seconds or milliseconds.';
        END IF;
    ELSIF p_epoch_unit IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % has type %, which holds no epoch number to give a unit',
            p_column, p_table, v_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'epoch_unit is for numeric columns (epoch seconds or milliseconds).';
    END IF;
    -- Field by field: the columns not named here (lag_target, …) stay NULL.
    v_rule.table_name := p_table;
    v_rule.column_name := p_column;
    v_rule.keep_for := coalesce(p_keep_for, '0');
    v_rule.value_zone := v_zone;
    v_rule.epoch_unit := v_unit;
    v_rule.kind := 'age';
    v_rule.condition := pgsweep.checked_condition(p_table, p_condition);
    PERFORM pgsweep.cutoff_literal(v_rule);
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    v_problem := pgsweep.epoch_unit_problem(v_rule);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % does not look like epoch %: %', p_column, p_table,
            v_unit, v_problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Declare the unit its values are in: pgsweep.add_rule(%L, %L, %L, '
                                'p_epoch_unit => %L).', p_table, p_column, v_rule.keep_for,
                                CASE v_unit WHEN 'seconds' THEN 'milliseconds' ELSE 'seconds' END);
    END IF;
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_rule(regclass, name, interval, text, text, text) IS
    'Register (or update) an age rule after checking its column type, index, zone, unit and condition';
