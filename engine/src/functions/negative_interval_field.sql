-- Whether any field of an interval is negative: its months (years with them), its days or its
-- time part. An interval compares as months * 30 days + days + time, so '1 mon -30 days' is
-- not less than '0' and passed a plain keep_for >= '0' check, yet it means "a month later,
-- then 30 days earlier": 0, 1 or -2 days by the calendar month it is applied in.
CREATE OR REPLACE FUNCTION pgsweep.negative_interval_field(p_value interval)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT extract(year FROM p_value) * 12 + extract(month FROM p_value) < 0
           OR extract(day FROM p_value) < 0
           OR extract(hour FROM p_value) * 3600 + extract(minute FROM p_value) * 60
              + extract(second FROM p_value) < 0
$$;
COMMENT ON FUNCTION pgsweep.negative_interval_field(interval) IS
    'Whether an interval has a negative months, days or time part';
