-- The expiry lag a rule without its own lag_target may reach before verify and health go red:
-- 1 hour, unless the setting pgsweep.default_lag_target says otherwise.
CREATE OR REPLACE FUNCTION pgsweep.default_lag_target()
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('pgsweep.default_lag_target', true), '')::interval,
                    '1 hour')
$$;
COMMENT ON FUNCTION pgsweep.default_lag_target() IS
    'The lag target of a rule without its own (setting pgsweep.default_lag_target, default 1 hour)';
