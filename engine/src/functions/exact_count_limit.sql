-- rule_status counts a table's rows exactly up to this many rows (reltuples); above it, it
-- reads the planner's estimates: 100000, unless the setting pgsweep.exact_count_limit says otherwise.
CREATE OR REPLACE FUNCTION pgsweep.exact_count_limit()
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('pgsweep.exact_count_limit', true), '')::bigint,
                    100000)
$$;
COMMENT ON FUNCTION pgsweep.exact_count_limit() IS
    'Tables up to this many rows are counted exactly by rule_status (setting, default 100000)';
