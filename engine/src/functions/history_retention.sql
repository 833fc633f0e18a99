-- How long pgsweep.run keeps a run (pruned by run_housekeeping): 30 days, unless the database
-- says otherwise (ALTER DATABASE app SET pgsweep.history_retention = '90 days', or ALTER ROLE
-- ALL SET ...), and never less than a day. Only those stored defaults count, never a session's
-- SET, PGOPTIONS or a role's own ALTER ROLE: pruning runs inside SECURITY DEFINER routines, and
-- a role allowed only to EXECUTE them must not choose how much history they delete.
CREATE OR REPLACE FUNCTION pgsweep.history_retention()
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(
        coalesce((SELECT nullif(substr(c.setting, length('pgsweep.history_retention=') + 1),
                                '')::interval
                    FROM pg_db_role_setting s
                   CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting)
                   WHERE s.setrole = 0
                     AND s.setdatabase IN (0, (SELECT d.oid FROM pg_database d
                                                WHERE d.datname = current_database()))
                     AND c.setting LIKE 'pgsweep.history\_retention=%'
                   -- the database's own default before the one for all databases
                   ORDER BY s.setdatabase DESC LIMIT 1),
                 '30 days'),
        '1 day')
$$;
COMMENT ON FUNCTION pgsweep.history_retention() IS
    'How long run history is kept (ALTER DATABASE ... SET pgsweep.history_retention, default 30 days, at least 1 day)';
