-- 0007_scheduled_cleanup: the nightly cleanup as a pg_cron job, and questions a psql user can ask.
--   * pg_cron job `cleanup-expired-tokens`, `0 2 * * *`, `SELECT cleanup_all_expired_tokens();`
--     (the runbook's job), and `pgsweep-prune-cron-history`, `30 3 * * *`, which keeps
--     cron.job_run_details to 14 days (pg_cron never prunes it);
--   * both only when pg_cron is usable from this database. Otherwise the upgrade still succeeds,
--     registers nothing and says why (NOTICE): `pgsweep schedule` covers the case where the
--     app's database is not cron.database_name (README, "Scheduling with pg_cron");
--   * pgsweep.scheduled_job: the jobs this file created, so the rollback removes only those;
--   * pgsweep.garbage_counts(): what the cleanup would delete now, per rule, index-driven;
--   * pgsweep.pg_cron_unusable_reason(): why pg_cron cannot schedule from here (NULL: it can).
-- It does not CREATE EXTENSION pg_cron: loading pg_cron and choosing its database is a
-- server-level decision (shared_preload_libraries, cron.database_name, a superuser).
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0007_scheduled_cleanup.sql
-- Alembic runs this same file for revision 0007. Safe to run again (e.g. after CREATE EXTENSION
-- pg_cron, to register the jobs that an earlier run could not).
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

-- One row per pg_cron job this revision created (jobs that already existed are left alone and
-- not recorded), so the rollback unschedules exactly these.
CREATE TABLE IF NOT EXISTS pgsweep.scheduled_job (
    jobname      text        PRIMARY KEY,
    jobid        bigint      NOT NULL,
    scheduled_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pgsweep.scheduled_job IS
    'pg_cron jobs created by revision 0007 (its rollback unschedules exactly these)';

-- How many rows each rule would delete right now. Rules of a table are counted in order, each
-- row once: rule i counts rows matching it and none of the rules before it, so the per-table sum
-- is exactly what sweep_table would delete in this transaction (barring rows others lock), and
-- every count is a range scan of rule i's own index (the earlier rules are only a filter).
CREATE OR REPLACE FUNCTION pgsweep.garbage_counts(p_table regclass DEFAULT NULL)
RETURNS TABLE (table_name regclass, column_name name, garbage bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule    record;
    v_table   regclass;
    v_match   text;
    v_earlier text := '';
BEGIN
    /* Identifiers are quoted with %I or are regclass output; the cutoff is a literal built by
     * cutoff_literal with %L. plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    FOR v_rule IN
        SELECT r.table_name, r.column_name, r.keep_for FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name = p_table
         ORDER BY r.table_name::text, r.column_name
    LOOP
        IF v_table IS DISTINCT FROM v_rule.table_name THEN
            v_table := v_rule.table_name;
            v_earlier := '';
        END IF;
        v_match := format('%I < %s', v_rule.column_name,
                          pgsweep.cutoff_literal(v_rule.table_name, v_rule.column_name, v_rule.keep_for));
        EXECUTE format('SELECT count(*) FROM %s WHERE %s%s', v_rule.table_name, v_match, v_earlier)
           INTO garbage;
        table_name := v_rule.table_name;
        column_name := v_rule.column_name;
        RETURN NEXT;
        v_earlier := v_earlier || format(' AND (%s) IS NOT TRUE', v_match);
    END LOOP;
    IF p_table IS NOT NULL AND v_table IS NULL THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.garbage_counts(regclass) IS
    'Rows each expiry rule would delete now (each row counted once per table), index-driven';

-- NULL when cron.schedule() can be called from this database; otherwise the reason.
CREATE OR REPLACE FUNCTION pgsweep.pg_cron_unusable_reason()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cron_database text := current_setting('cron.database_name', true);
BEGIN
    IF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron') THEN
        RETURN 'pg_cron is not installed on this server';
    END IF;
    -- The setting exists only once the library is loaded (shared_preload_libraries).
    IF v_cron_database IS NULL OR v_cron_database = '' THEN
        RETURN 'pg_cron is not loaded (it must be in shared_preload_libraries)';
    END IF;
    IF v_cron_database <> current_database() THEN
        RETURN format('this database (%s) is not cron.database_name (%s)',
                      current_database(), v_cron_database);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN 'the pg_cron extension is not created in this database (CREATE EXTENSION pg_cron)';
    END IF;
    IF NOT has_schema_privilege('cron', 'USAGE')
       OR NOT has_function_privilege('cron.schedule(text, text, text)', 'EXECUTE') THEN
        RETURN format('role %s may not use cron.schedule()', current_user);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.pg_cron_unusable_reason() IS
    'Why pg_cron cannot schedule jobs from this database, or NULL when it can';

REVOKE ALL ON TABLE pgsweep.scheduled_job FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgsweep.garbage_counts(regclass),
                           pgsweep.pg_cron_unusable_reason() FROM PUBLIC;

-- The jobs. A job of the same name already in cron.job for this database (made by hand from the
-- runbook, or by `pgsweep schedule`) is left exactly as it is and not recorded.
DO $$
DECLARE
    v_reason text := pgsweep.pg_cron_unusable_reason();
    v_job    record;
    v_jobid  bigint;
BEGIN
    IF v_reason IS NOT NULL THEN
        RAISE NOTICE 'pgsweep: no pg_cron job registered: %', v_reason
            USING HINT = 'Schedule it with `pgsweep schedule` (README, "Scheduling with pg_cron"), '
                         'or run `pgsweep run --every 1h` where there is no pg_cron.';
        RETURN;
    END IF;
    FOR v_job IN
        SELECT j.name, j.schedule, j.command FROM (VALUES
            ('cleanup-expired-tokens', '0 2 * * *', 'SELECT cleanup_all_expired_tokens();'),
            ('pgsweep-prune-cron-history', '30 3 * * *',
             'DELETE FROM cron.job_run_details WHERE end_time < now() - interval ''14 days''')
        ) AS j (name, schedule, command)
    LOOP
        SELECT c.jobid INTO v_jobid FROM cron.job c
         WHERE c.jobname = v_job.name AND c.database = current_database()
         ORDER BY c.jobid LIMIT 1;
        IF v_jobid IS NULL THEN
            v_jobid := cron.schedule(v_job.name, v_job.schedule, v_job.command);
            INSERT INTO pgsweep.scheduled_job (jobname, jobid) VALUES (v_job.name, v_jobid)
            ON CONFLICT (jobname) DO UPDATE SET jobid = excluded.jobid, scheduled_at = now();
            RAISE NOTICE 'pgsweep: scheduled pg_cron job % (jobid %): % %',
                v_job.name, v_jobid, v_job.schedule, v_job.command;
        ELSIF EXISTS (SELECT FROM pgsweep.scheduled_job s
                       WHERE s.jobname = v_job.name AND s.jobid = v_jobid) THEN
            RAISE NOTICE 'pgsweep: pg_cron job % (jobid %) already scheduled', v_job.name, v_jobid;
        ELSE
            RAISE NOTICE 'pgsweep: pg_cron job % (jobid %) already exists; left as it is',
                v_job.name, v_jobid;
        END IF;
    END LOOP;
END $$;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0007' WHERE version_num = '0006';
    END IF;
END $$;

COMMIT;
