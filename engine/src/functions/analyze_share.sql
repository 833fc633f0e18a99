-- A run that deleted at least this share of a table's rows (pg_class.reltuples before the run)
-- ANALYZEs it at its end (run_end): 0.1, unless the setting pgsweep.analyze_share says otherwise.
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
