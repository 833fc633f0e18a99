-- A run that deleted at least this share of a table's rows (pg_class.reltuples before the run)
-- ANALYZEs it at its end (run_end, with the caller's rights): 0.1, unless the setting
-- pgsweep.analyze_share says otherwise. Kept within (0, 1]: a share of 0 or less would analyze
-- every table a run touched, one above 1 none; such a value means the default.
CREATE OR REPLACE FUNCTION pgsweep.analyze_share()
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN s.share > 0 AND s.share <= 1 THEN s.share ELSE 0.1 END
      FROM (SELECT nullif(current_setting('pgsweep.analyze_share', true), '')::double precision
                       AS share) s
$$;
COMMENT ON FUNCTION pgsweep.analyze_share() IS
    'Share of a table a run must delete to ANALYZE it (setting pgsweep.analyze_share within (0, 1], default 0.1)';
