-- The cutoff of a rule as an SQL literal of the column's own type, so the planner sees a
-- constant it can match against the column's index. Written with to_char in ISO 8601 with a
-- numeric offset and the era, which every DateStyle reads back as written (DateStyle's own
-- output may print zone abbreviations, which do not read back uniquely: 'IST' for Asia/Kolkata
-- reads back as Israel time), without setting DateStyle or TimeZone, which costs every call.
-- now() - keep_for is reckoned in UTC (a day is 24 hours, whatever daylight
-- saving the session's zone observes), and a timestamp or date column takes that instant in the
-- rule's value_zone (UTC when unset): neither the session's nor the server's TimeZone moves it.
-- Around a daylight-saving change a wall-clock value has two readings: the cutoff is the first
-- wall-clock time that may be live (pgsweep.wall_clock_cutoff), so a row goes only when every
-- reading of it is past; a date goes once its whole day is before that.
-- A number counts the rule's epoch_unit (seconds when unset). NULL for rules that are not age
-- rules (a condition or orphan rule has no cutoff).
CREATE OR REPLACE FUNCTION pgsweep.cutoff_literal(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    -- timestamp minus interval is calendar arithmetic with no zone: UTC's.
    v_utc     timestamp := (now() AT TIME ZONE 'UTC') - p_rule.keep_for;
    v_instant timestamptz := v_utc AT TIME ZONE 'UTC';
    v_wall    timestamp;
    v_zone    text := coalesce(p_rule.value_zone, 'UTC');
    v_scale   integer := CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
    v_largest numeric := CASE v_type WHEN 'smallint'::regtype THEN 32767
                                     WHEN 'integer'::regtype THEN 2147483647
                                     ELSE 9223372036854775807 END;
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    END IF;
    CASE
        WHEN v_type = 'timestamptz'::regtype THEN
            RETURN format('%L::%s', to_char(v_utc, 'YYYY-MM-DD HH24:MI:SS.US') || '+00 '
                                    || to_char(v_utc, 'AD'), v_type);
        WHEN v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
            v_wall := pgsweep.wall_clock_cutoff(v_instant, v_zone);
            RETURN format('%L::%s', to_char(v_wall, 'YYYY-MM-DD HH24:MI:SS.US ')
                                    || to_char(v_wall, 'AD'), v_type);
        -- Whole units: "ttl < 1000.5" is "ttl < 1001" for an integer ttl, hence ceil.
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            -- Clamped to the type's range (a smallint never reaches 2000 in seconds, an integer
            -- in milliseconds): no value is past the cutoff, and the literal must still cast.
            RETURN format('%s::%s', greatest(least(ceil(extract(epoch FROM v_instant) * v_scale),
                                                   v_largest), -v_largest - 1)::bigint, v_type);
        WHEN v_type IN ('numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
            RETURN format('%s::%s', extract(epoch FROM v_instant) * v_scale, v_type);
        ELSE
            RAISE EXCEPTION 'column "%" of % has type %, which cannot expire',
                p_rule.column_name, p_rule.table_name, v_type
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use a timestamp, date, or a number of epoch seconds or milliseconds.';
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_literal(pgsweep.expiry_rule) IS
    'now() - keep_for as a literal of the column''s type (numbers: in the rule''s epoch unit)';
