-- The defaults of run history and status, each one constant a session or database setting can
-- override (ALTER DATABASE … SET pgsweep.history_retention = '90 days'):
--   history_retention: how long pgsweep.run keeps a run (pruned by run_begin): 30 days;
--   default_lag_target: the expiry lag a rule without its own lag_target may reach: 1 hour;
--   analyze_share: a run that deleted at least this share of a table's rows (pg_class.reltuples
--     before the run) ANALYZEs it at its end: 0.1;
--   exact_count_limit: rule_status counts a table's rows exactly up to this many rows
--     (reltuples), above it reads the planner's estimates: 100000.
CREATE OR REPLACE FUNCTION pgsweep.history_retention()
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('pgsweep.history_retention', true), '')::interval,
                    '30 days')
$$;
COMMENT ON FUNCTION pgsweep.history_retention() IS
    'How long run history is kept (setting pgsweep.history_retention, default 30 days)';

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

CREATE OR REPLACE FUNCTION pgsweep.analyze_share()
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('pgsweep.analyze_share', true), '')::double precision,
                    0.1)
$$;
COMMENT ON FUNCTION pgsweep.analyze_share() IS
    'Share of a table a run must delete to ANALYZE it (setting pgsweep.analyze_share, default 0.1)';

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
