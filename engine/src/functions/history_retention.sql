-- How long pgsweep.run keeps a run (pruned by run_begin): 30 days, unless the setting
-- pgsweep.history_retention says otherwise (ALTER DATABASE … SET pgsweep.history_retention = '90 days').
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
